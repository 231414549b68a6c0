"""Direct Feedback Alignment (DFA): the output error sent straight to each layer.

Nøkland, "Direct Feedback Alignment Provides Learning in Deep Neural
Networks", NeurIPS 2016, https://arxiv.org/abs/1609.01596.

With blocks `a_l = W_l * h_{l-1} + b_l`, `h_l = σ_l(a_l)` (then the step's
dropout mask `m_l`) and softmax output `y`, one step computes

    e       = y − onehot(t)
    delta_L = e
    delta_l = reshape(e D_l, shape(h_l)) ⊙ σ'_l(a_l) ⊙ m_l     (l < L)
    G_l     = h_{l-1}ᵀ delta_l / B  (Conv2D: patch correlation / B)

with a fixed random `D_l` of shape `(C, prod(shape(h_l)))` (so conv hidden
layers work: the projection is reshaped to the feature map). The optimizer
applies `w ← w − lr·G`.

Closed form (tested): for one hidden layer, `D_1 = W_2ᵀ` makes DFA equal to
backpropagation, since then `e D_1 = e W_2ᵀ` is the backpropagated signal.

Each `D_l` is a non-trainable weight drawn
`U(−s·sqrt(6/n_l), +s·sqrt(6/n_l))`, `n_l = prod(shape(h_l))`: for `s = 1`
`torch.nn.init.kaiming_uniform_` on a `(C, n_l)` tensor, as in the official
DFA/DRTP code (https://github.com/ChFrenkel/DirectRandomTargetProjection),
i.e. the scale of a He-uniform `(n_l, C)` output kernel.

Output layer: a softmax trained with the categorical cross-entropy, or a
sigmoid trained with the binary cross-entropy summed over the C outputs (the
official DFA/DRTP code's default, `--output-act sigmoid --loss BCE`). Both
have the same output error `e = y − onehot(t)` w.r.t. the output layer's
pre-activation, so the equations above hold unchanged; only `y` differs.
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
    forward_kernel_product,
)
from pepita_keras.registry import register_rule

# Output activations whose cross-entropy gradient w.r.t. the pre-activation
# is e = y − onehot(t): softmax (categorical CE), sigmoid (binary CE summed
# over the classes).
OUTPUT_ACTIVATIONS = ("softmax", "sigmoid")


@register_rule("dfa", label="DFA", order=2)
class DirectFeedbackAlignment(LearningRuleModel):
    """Trains a network with Direct Feedback Alignment through `model.fit`.

    Args:
        network: a built Sequential-style `keras.Model` ending in a softmax
            or a sigmoid (see module doc) (Dense, Conv2D, MaxPooling2D,
            AveragePooling2D, Flatten, Dropout, Activation/ReLU; hidden
            activations linear, relu, tanh or sigmoid).
        feedback_scale: `s` in `D_l ~ U(−s·sqrt(6/n_l), s·sqrt(6/n_l))`.
            Defaults to 1.0.
        seed: optional integer seeding the feedback matrices (the one of
            block i, counted from 0, uses `seed + i`) and the dropout masks.
        **kwargs: passed to `keras.Model`.

    Attributes:
        feedback_matrices: list of the non-trainable `D_l`, aligned with
            `blocks[:-1]`, each of shape `(num_classes, prod(shape(h_l)))`.
        output_activation: "softmax" or "sigmoid", the network's output.

    Example:

    ```python
    network = pepita_keras.paper_networks.paper_fc(seed=0)
    model = pepita_keras.DirectFeedbackAlignment(network, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=2)
    ```
    """

    def __init__(self, network, feedback_scale=1.0, seed=None, **kwargs):
        super().__init__(network, seed=seed, **kwargs)
        self.output_activation = backward.check_error_network(
            self.blocks, network.name, type(self).__name__, OUTPUT_ACTIVATIONS
        )
        self.feedback_scale = check_feedback_scale(feedback_scale)
        self.feedback_matrices = []
        self.hidden_shapes = []
        for index, block in enumerate(self.blocks[:-1]):
            shape = tuple(block.layer.output.shape[1:])
            size = math.prod(shape)
            self.hidden_shapes.append(shape)
            self.feedback_matrices.append(
                add_feedback_matrix(
                    self,
                    f"direct_feedback_{block.layer.name}",
                    (self.num_classes, size),
                    fan_in=size,
                    scale=self.feedback_scale,
                    seed=feedback_seed(seed, index),
                )
            )

    def projected_signal(self, error, targets):
        """What `D_l` projects to the hidden layers: DFA sends the error `e`."""
        del targets
        return error

    def updates_and_predictions(self, x, targets, sample_weight=None, masks=None):
        forward = self.forward(x, masks)
        targets = ops.cast(targets, "float32")
        error = ops.cast(forward.prediction, "float32") - targets
        signal = self.projected_signal(error, targets)
        deltas = []
        for block, layer_input, layer_output, feedback, shape in zip(
            self.blocks[:-1],
            forward.inputs,
            forward.outputs,
            self.feedback_matrices,
            self.hidden_shapes,
        ):
            projected = ops.matmul(signal, ops.cast(feedback, "float32"))
            projected = ops.reshape(projected, (-1,) + shape)
            derivative = backward.block_derivative(
                block, layer_input, masks, layer_output
            )
            deltas.append(projected * derivative)
        deltas.append(error)
        updates = local_updates(self.blocks, forward.inputs, deltas, sample_weight)
        return updates, forward.prediction

    def feedback_alignment_pairs(self):
        """`D_l` against `(W_{l+1}⋯W_L)ᵀ`, backprop's map for a linear net.

        Only for hidden layers followed by a chain of Dense layers (the
        product is undefined through pooling/Conv2D; those are skipped).
        """
        pairs = []
        for index, matrix in enumerate(self.feedback_matrices):
            product = forward_kernel_product(self.blocks, start=index + 1)
            if product is not None:
                pairs.append(
                    AlignmentPair(f"D_{index + 1}", matrix, ops.transpose(product))
                )
        return pairs

    def get_config(self):
        config = super().get_config()
        config.update(feedback_scale=self.feedback_scale)
        return config
