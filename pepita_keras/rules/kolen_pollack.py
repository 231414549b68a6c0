"""Kolen–Pollack (KP) on any functional network: feedback weights that learn what the kernels learn.

Kolen & Pollack, "Backpropagation without weight transport", IEEE ICNN 1994;
Akrout, Wilson, Humphreys, Lillicrap & Tweed, "Deep Learning without Weight
Transport", NeurIPS 2019 (https://arxiv.org/abs/1904.05391); as in bioflax.

The error travels back through `B_l` (kernel-shaped, where backprop would use
`W_l`: `feedback_paths`), exactly as in feedback alignment, but `B_l` is
trained too: both get the same local update (in Keras's layout `B_l` is stored
like `W_l`, so Akrout's `ΔB = ΔWᵀ` is the same tensor) and the same decay,

    G_{W_l} = ∂f_l(h_{l-1}; θ_l)/∂W_l ᵀ δ_l + λ W_l
    G_{B_l} = ∂f_l(h_{l-1}; θ_l)/∂W_l ᵀ δ_l + λ B_l

handed to the same optimizer. With plain SGD at rate η, `W − B` shrinks by
`(1 − ηλ)` every step, so `B` converges to `W` (backprop's weights) from any
start; with momentum the same holds for the optimizer's running averages.
Biases and normalisation parameters are backpropagated exactly and decayed
too (`λ` applies to every parameter the rule updates, as a weight decay).
"""

from keras import ops

from pepita_keras.feedback_paths import FeedbackWeightsModel
from pepita_keras.registry import register_rule


@register_rule("kp", label="KP", order=13, defaults={"decay": 1e-3})
class KolenPollack(FeedbackWeightsModel):
    """Kolen–Pollack learning (see the module docstring).

    Args:
        network: a built functional or Sequential `keras.Model` of
            `graph.SUPPORTED_LAYERS` ending in a softmax.
        decay: `λ`, the decay shared by `W` and `B` (what makes them converge);
            must be positive.
        feedback_scale: multiplies the limit of `B`'s initial draw.
        seed: optional integer seeding `B` and the dropout masks.
        **kwargs: passed to `keras.Model`.

    Example:

    ```python
    model = pepita_keras.convert(network, "kp", decay=1e-3, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), metrics=["accuracy"])
    ```
    """

    applies_weight_regularizers = False
    feedback_trainable = True

    def __init__(self, network, decay=1e-3, feedback_scale=1.0, seed=None, **kwargs):
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not decay > 0:
            raise ValueError(f"decay must be a positive number (Kolen–Pollack's λ). Received: "
                             f"decay={decay!r}.")
        super().__init__(network, feedback_scale=feedback_scale, seed=seed, **kwargs)
        self.decay = float(decay)

    def backward_values(self, layer, step_seed):
        del step_seed
        return self.feedback_of(layer)

    def extra_updates(self, variables, gradients):
        updates = {}
        for variable, gradient in zip(variables, gradients):
            decayed = gradient + self.decay * ops.cast(variable, gradient.dtype)
            updates[id(variable)] = decayed
            feedback = self.feedback_variables.get(id(variable))
            if feedback is not None:
                updates[id(feedback)] = gradient + self.decay * ops.cast(feedback, gradient.dtype)
        return updates

    def get_config(self):
        config = super().get_config()
        config.update(decay=self.decay)
        return config
