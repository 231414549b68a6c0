"""Feedback Alignment on any functional network (`pepita_keras.convert(network, "fa")`).

Lillicrap, Cownden, Tweed & Akerman, Nature Communications 7, 13276 (2016).

The error travels back through a fixed random matrix `B_l` of each kernel's
shape wherever backprop would use the kernel `W_l` (`feedback_paths`):

    g_{l-1} = ∂f_l(h; B_l)/∂h ᵀ δ_l      (Dense: δ_l B_lᵀ; Conv: the transposed
                                          convolution with B_l; attention: every
                                          projection's B)
    G_l     = ∂f_l(h_{l-1}; θ_l)/∂θ_l ᵀ δ_l

`B_l ~ U(−√3·s·r_l, +√3·s·r_l)`, `r_l` the RMS of `W_l` when converted (`s` =
`feedback_scale`), fixed for good. Biases and normalisation parameters are
backpropagated exactly. On the paper's chains `pepita_keras.FeedbackAlignment`
(hand-written backward pass, the paper's cells) is used instead.
"""

import keras

from pepita_keras.feedback_paths import FeedbackWeightsModel


@keras.saving.register_keras_serializable(package="pepita_keras")
class GraphFeedbackAlignment(FeedbackWeightsModel):
    """Feedback Alignment on a functional network (see the module docstring).

    Args:
        network: a built functional or Sequential `keras.Model` of
            `graph.SUPPORTED_LAYERS` ending in a softmax.
        feedback_scale: `s` above (1.0: `B` with its kernel's scale).
        seed: optional integer seeding `B` and the dropout masks.
        **kwargs: passed to `keras.Model`.

    Example:

    ```python
    model = pepita_keras.convert(resnet, "fa", seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), metrics=["accuracy"])
    ```
    """

    applies_weight_regularizers = False

    def backward_values(self, layer, step_seed):
        del step_seed
        return self.feedback_of(layer)
