"""Backprop: the network trained by ordinary cross-entropy gradients.

The reference every other rule is compared with. The updates are the
gradients of the same loss Keras's `compile(loss="categorical_crossentropy")`
minimises,

    L = (1/B) Σ_b w_b · CE(t_b, y_b),     G = ∂L/∂θ,

computed by differentiating `forward` with the backend's automatic
differentiation (`pepita_keras.ops.value_and_gradients`: a `tf.GradientTape`
on TensorFlow, `jax.value_and_grad` on JAX), so a training step uses the
step's dropout masks like every other rule; `w_b = 1` without
`sample_weight`. Weight regularizers of the network's layers
(`kernel_regularizer`, `bias_regularizer`) add their penalties `Σ R(θ)` to
`L`, as Keras adds `model.losses`. `Backprop(network).fit(...)` therefore
takes the same steps as
`network.compile(optimizer, "categorical_crossentropy"); network.fit(...)`
(up to Keras's own dropout draws), while configs, the CLI, callbacks and
metrics treat it like any other rule of the package. The logged `loss` stays
the clean-pass cross-entropy (without the penalties), as for every rule.

The network must end in a softmax, as for the other rules: `loss`, the
metrics and `predict` read its output as class probabilities, and a network
ending in logits or `log_softmax` would be trained on a cross-entropy of
clipped non-probabilities (silently, to chance accuracy).
"""

import keras
from keras import ops

from pepita_keras import ops as backend_ops
from pepita_keras.core import LearningRuleModel
from pepita_keras.blocks import output_activation_name
from pepita_keras.registry import register_rule


@register_rule("bp", label="BP", order=0)
class Backprop(LearningRuleModel):
    """Trains a network with backpropagation of the categorical cross-entropy.

    Args:
        network: a built Sequential-style `keras.Model` (same layer set as
            the other rules) ending in a softmax (activation or
            `keras.layers.Softmax()`). Its layers' `kernel_regularizer` /
            `bias_regularizer` are applied.
        seed: optional integer seeding the dropout masks.
        **kwargs: passed to `keras.Model`.

    Raises:
        ValueError: if the network does not end in a softmax (e.g. logits
            or `log_softmax`).

    Example:

    ```python
    network = pepita_keras.paper_networks.paper_fc(seed=0)
    model = pepita_keras.Backprop(network, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=2)
    ```
    """

    applies_weight_regularizers = True

    def __init__(self, network, seed=None, **kwargs):
        super().__init__(network, seed=seed, **kwargs)
        activation = output_activation_name(self.blocks[-1])
        if activation != "softmax":
            raise ValueError(
                "Backprop minimises the categorical cross-entropy of class "
                "probabilities, and its `loss`, metrics and predictions read "
                f"the network output as such; network {network.name!r} ends "
                f"with activation {activation!r} (logits or log-probabilities "
                "would train silently to chance). Use activation='softmax' "
                "on the last layer, or end with keras.layers.Softmax()."
            )

    def regularization_penalty(self):
        """`Σ R(θ)` over the trainable block variables with a regularizer.

        What Keras adds to the loss from `model.losses` for weight
        regularizers; None when no variable has one.
        """
        penalties = [
            ops.cast(variable.regularizer(variable), "float32")
            for block in self.blocks
            if block.layer.trainable
            for variable in block.variables
            if getattr(variable, "regularizer", None) is not None
        ]
        return ops.sum(ops.stack(penalties)) if penalties else None

    def updates_and_predictions(self, x, targets, sample_weight=None, masks=None):
        variables = [v for block in self.blocks for v in block.variables]
        optimizer = getattr(self, "optimizer", None)
        loss_scale = None
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            # Differentiate the scaled loss, as Keras does, so small float16
            # gradients do not underflow; the base class re-applies the scale.
            loss_scale = ops.cast(optimizer.scale_loss(1.0), "float32")

        def scaled_loss():
            forward = self.forward(x, masks)
            prediction = ops.cast(forward.prediction, "float32")
            loss = keras.losses.categorical_crossentropy(
                ops.cast(targets, "float32"), prediction
            )
            if sample_weight is not None:
                loss = loss * ops.cast(sample_weight, "float32")
            # Keras's "sum_over_batch_size": divide by B, not by Σ w.
            loss = ops.mean(loss)
            penalty = self.regularization_penalty()
            if penalty is not None:
                loss = loss + penalty
            if loss_scale is not None:
                loss = loss * loss_scale
            return loss, forward.prediction

        _, prediction, gradients = backend_ops.value_and_gradients(
            scaled_loss, variables
        )
        if loss_scale is not None:
            gradients = [g / ops.cast(loss_scale, g.dtype) for g in gradients]
        return gradients, prediction
