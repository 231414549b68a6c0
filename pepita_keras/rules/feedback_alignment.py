"""Feedback Alignment (FA): backpropagation through fixed random matrices.

Lillicrap, Cownden, Tweed & Akerman, "Random synaptic feedback weights
support error backpropagation for deep learning", Nature Communications 7,
13276 (2016), https://doi.org/10.1038/ncomms13276.

With blocks `a_l = W_l * h_{l-1} + b_l`, `h_l = σ_l(a_l)` (then the step's
dropout mask `m_l`) and softmax output `y`, one step computes

    delta_L     = e = y − onehot(t)                 (softmax + cross-entropy)
    g_{l-1}     = delta_l B_lᵀ                      (Dense; B_l in W_l's (in, out)
                                                     layout, so B_lᵀ stands where
                                                     backprop has W_lᵀ)
                = conv2d_backprop_input(B_l, delta_l)  (Conv2D: B_l kernel-shaped)
    g_{l-1}     ← back through the parameter-free layers between the blocks
                  (Flatten: reshape; Dropout: × mask; MaxPooling2D: routed to
                  each window's arg-max, the local gradient of the pooling op)
    delta_{l-1} = g_{l-1} ⊙ σ'_{l-1}(a_{l-1}) ⊙ m_{l-1}
    G_l         = h_{l-1}ᵀ delta_l / B  (Conv2D: patch correlation / B)

and the optimizer applies `w ← w − lr·G` (G is FA's stand-in for ∂L/∂W).
With every `B_l` equal to `W_l` this is exactly backpropagation.

The first block has no `B` (nothing is sent below it). Each `B_l` is a
non-trainable weight drawn `U(−s·sqrt(6/fan_in), +s·sqrt(6/fan_in))` with
`fan_in = prod(kernel_shape[:-1])`: for `s = 1` the distribution of the
He-uniform kernel it stands in for (`torch.nn.init.kaiming_uniform_`, as in
the FA wrapper of the official DRTP code).
"""

import math

import keras
from keras import ops

from pepita_keras import backward
from pepita_keras.core import LearningRuleModel, local_updates
from pepita_keras.feedback import (
    AlignmentPair,
    add_feedback_matrix,
    check_feedback_scale,
    feedback_seed,
)
from pepita_keras.registry import register_rule


@register_rule("fa", label="FA", order=1)
class FeedbackAlignment(LearningRuleModel):
    """Trains a network with Feedback Alignment through `model.fit`.

    Args:
        network: a built Sequential-style `keras.Model` ending in softmax
            (Dense, Conv2D, MaxPooling2D, AveragePooling2D, Flatten,
            Dropout, Activation/ReLU; hidden activations linear, relu, tanh
            or sigmoid).
        feedback_scale: `s` in `B_l ~ U(−s·sqrt(6/fan_in), s·sqrt(6/fan_in))`;
            1.0 (default) draws B_l like a He-uniform forward kernel.
        seed: optional integer seeding the feedback matrices (the one of
            block i, counted from 0, uses `seed + i`) and the dropout masks.
        **kwargs: passed to `keras.Model`.

    Attributes:
        feedback_matrices: list of the non-trainable `B_l`, aligned with
            `blocks[1:]`, each of its layer's kernel shape.

    Example:

    ```python
    network = pepita_keras.paper_networks.paper_fc(seed=0)
    model = pepita_keras.FeedbackAlignment(network, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=2)
    ```
    """

    def __init__(self, network, feedback_scale=1.0, seed=None, **kwargs):
        super().__init__(network, seed=seed, **kwargs)
        backward.check_error_network(self.blocks, network.name, type(self).__name__)
        self.feedback_scale = check_feedback_scale(feedback_scale)
        self.feedback_matrices = []
        for index, block in enumerate(self.blocks[1:], start=1):
            shape = tuple(block.layer.kernel.shape)
            self.feedback_matrices.append(
                add_feedback_matrix(
                    self,
                    f"feedback_{block.layer.name}",
                    shape,
                    fan_in=math.prod(shape[:-1]),
                    scale=self.feedback_scale,
                    seed=feedback_seed(seed, index),
                )
            )

    def updates_and_predictions(self, x, targets, sample_weight=None, masks=None):
        forward = self.forward(x, masks)
        error = ops.cast(forward.prediction, "float32") - ops.cast(targets, "float32")
        deltas = [error]
        delta = error
        for index in range(len(self.blocks) - 1, 0, -1):
            block, below = self.blocks[index], self.blocks[index - 1]
            signal = backward.feedback_through_layer(
                block.layer,
                self.feedback_matrices[index - 1],
                delta,
                forward.inputs[index],
            )
            signal = backward.carry_backward(
                block.pre, forward.outputs[index - 1], signal, masks
            )
            delta = signal * backward.block_derivative(
                below, forward.inputs[index - 1], masks, forward.outputs[index - 1]
            )
            deltas.insert(0, delta)
        updates = local_updates(self.blocks, forward.inputs, deltas, sample_weight)
        return updates, forward.prediction

    def feedback_alignment_pairs(self):
        """`B_l` against the forward kernel `W_l` it replaces, per block l ≥ 2."""
        return [
            AlignmentPair(f"B_{index}", matrix, block.layer.kernel)
            for index, (matrix, block) in enumerate(
                zip(self.feedback_matrices, self.blocks[1:]), start=2
            )
        ]

    def get_config(self):
        config = super().get_config()
        config.update(feedback_scale=self.feedback_scale)
        return config
