"""PEPITA: Present the Error to Perturb the Input To modulate Activity.

Dellaferrera & Kreiman, "Error-driven Input Modulation: Solving the Credit
Assignment Problem without a Backward Pass", ICML 2022
(https://proceedings.mlr.press/v162/dellaferrera22a.html; official code
https://github.com/GiorgiaD/PEPITA).

Per batch of size B, with `h_0 = x` and softmax output:

1. clean pass      h_l = σ_l(W_l h_{l-1}),     e = y − onehot(t)
2. modulation      x_mod = x + F e             (F: (prod(input_shape), C))
3. modulated pass  h_l^mod = σ_l(W_l h_{l-1}^mod),  e_mod = y_mod − onehot(t)
4. updates (Keras (in, out) layout; what the optimizer gets as "gradient")
       hidden:  G_l = (h_{l-1}^mod)^T (h_l − h_l^mod) / B
       last:    G_L = (h_{L-1}^mod)^T e_* / B
   with e_* = e_mod (`last_layer_error="modulated"`, the official tutorial
   code that reaches 52.58% on CIFAR-10) or e (`"clean"`, Algorithm 1 of the
   paper and the ICLR-2024 code). Biases get the batch mean of the same
   difference. With `keras.optimizers.SGD(lr, momentum=0.9)` this is exactly
   the official `v ← 0.9 v + η ΔW / B, w ← w + v` (ΔW = −B·G).

Dropout uses one mask per step shared by both passes, and the masked
activations enter the updates. Conv2D kernels get the correlation of
`h_{l-1}^mod` patches with `h_l − h_l^mod` (divided by B once). The official
convolutional script flips the sign of the conv update and divides by the
batch size twice; we do neither, so the conv rule is the same local rule as
the dense one. No gradient tape is involved anywhere.
"""

import math

import keras
from keras import ops

from pepita_keras.core import LocalLearningModel, local_updates
from pepita_keras.feedback import add_feedback_weight, uniform_feedback_initializer
from pepita_keras.network import output_activation_name

LAST_LAYER_ERRORS = ("modulated", "clean")


@keras.saving.register_keras_serializable(package="pepita_keras")
class PEPITA(LocalLearningModel):
    """Trains a feed-forward network with PEPITA through `model.fit`.

    Args:
        network: a built Sequential-style `keras.Model` ending in softmax
            (Dense, Conv2D, MaxPooling2D, AveragePooling2D, Flatten,
            Dropout, Activation/ReLU).
        feedback_scale: `s` in `F ~ U(−s·sqrt(6/d), s·sqrt(6/d))`,
            `d = prod(input_shape)`. Defaults to 0.05 (paper).
        last_layer_error: `"modulated"` (default, official code) or
            `"clean"` (paper's Algorithm 1): which error trains the last layer.
        seed: optional integer seeding F and the dropout masks.
        **kwargs: passed to `keras.Model`.

    Example:

    ```python
    network = pepita_keras.models.paper_fc(input_shape=(28, 28, 1), num_classes=10)
    model = pepita_keras.PEPITA(network, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=2)
    ```
    """

    def __init__(
        self,
        network,
        feedback_scale=0.05,
        last_layer_error="modulated",
        seed=None,
        **kwargs,
    ):
        super().__init__(network, seed=seed, **kwargs)
        if last_layer_error not in LAST_LAYER_ERRORS:
            raise ValueError(
                f"last_layer_error must be one of {LAST_LAYER_ERRORS}. "
                f"Received: last_layer_error={last_layer_error!r}."
            )
        activation = output_activation_name(self.blocks[-1])
        if activation != "softmax":
            raise ValueError(
                "PEPITA's error e = y − onehot(t) needs a softmax output; "
                f"network {network.name!r} ends with activation "
                f"{activation!r}. Use activation='softmax' on the last layer."
            )
        self.feedback_scale = feedback_scale
        self.last_layer_error = last_layer_error
        fan_in = math.prod(self.input_spec_shape)
        self.feedback_matrix = add_feedback_weight(
            self,
            "feedback_matrix",
            (fan_in, self.num_classes),
            uniform_feedback_initializer(fan_in, feedback_scale, seed),
        )

    def modulate(self, x, error):
        """`x + F e`, reshaped to the input's shape."""
        error = ops.cast(error, self.feedback_matrix.dtype)
        projected = ops.matmul(error, ops.transpose(self.feedback_matrix))
        return x + ops.cast(ops.reshape(projected, ops.shape(x)), x.dtype)

    def updates_and_predictions(self, x, targets, sample_weight=None, masks=None):
        clean = self.forward(x, masks)
        error = ops.cast(clean.prediction, "float32") - targets
        modulated = self.forward(self.modulate(x, error), masks)
        deltas = [
            h - h_mod for h, h_mod in zip(clean.outputs[:-1], modulated.outputs[:-1])
        ]
        if self.last_layer_error == "modulated":
            deltas.append(ops.cast(modulated.prediction, "float32") - targets)
        else:
            deltas.append(error)
        updates = local_updates(self.blocks, modulated.inputs, deltas, sample_weight)
        return updates, clean.prediction

    def get_config(self):
        config = super().get_config()
        config.update(
            feedback_scale=self.feedback_scale,
            last_layer_error=self.last_layer_error,
        )
        return config
