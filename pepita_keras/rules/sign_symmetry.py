"""Sign-symmetric feedback: uSF, brSF and frSF on any functional network.

Liao, Leibo & Poggio, "How Important Is Weight Symmetry in Backpropagation?",
AAAI 2016 (https://arxiv.org/abs/1510.05067); the three variants as biotorch
names them (Sanfiz & Akrout, 2021). The error travels back through a matrix
with the *signs* of the forward kernel `W_l` and a magnitude of its own
(`feedback_paths` shows where it replaces `W_l`):

    uSF  (uniform):                       B_l = r_l · sign(W_l)
    frSF (fixed random magnitude):        B_l = |M_l| ⊙ sign(W_l),  M_l drawn once
    brSF (batchwise random magnitude):    B_l = |M_t| ⊙ sign(W_l),  M_t redrawn every step

with `sign` of the *current* `W_l` at every step, `r_l` the RMS of `W_l` when
converted and `M ~ U(−√3·r_l, +√3·r_l)`. The scale `r_l` is our choice: the
raw `sign(W)` of the paper has entries of magnitude 1, far above a trained
kernel's, and explodes the backward signal in deep nets; Xiao, Chen, Liao &
Poggio (2018) and biotorch scale it by the initialisation's standard
deviation, which `r_l` is for a freshly initialised kernel, whatever its kind.
Biases and normalisation parameters are backpropagated exactly.
"""

import math

import keras
import numpy as np
from keras import ops

from pepita_keras import ops as backend_ops
from pepita_keras.feedback_paths import FeedbackWeightsModel, GraphBackprop, feedback_kernels
from pepita_keras.feedback_paths import kernel_rms
from pepita_keras.registry import register_rule


@register_rule("usf", label="uSF", order=10)
class UniformSignFeedback(GraphBackprop):
    """uSF: `B_l = r_l · sign(W_l)` (see the module docstring).

    Args:
        network: a built functional or Sequential `keras.Model` of
            `graph.SUPPORTED_LAYERS` ending in a softmax.
        seed: optional integer seeding the dropout masks.
        **kwargs: passed to `keras.Model`.

    Example:

    ```python
    model = pepita_keras.convert(network, "usf", seed=0)
    ```
    """

    applies_weight_regularizers = False

    def __init__(self, network, seed=None, **kwargs):
        super().__init__(network, seed=seed, **kwargs)
        # r_l, fixed at conversion and saved with the model.
        self.feedback_magnitudes = {}
        for layer in self.graph.parameterised:
            for variable in feedback_kernels(layer):
                self.feedback_magnitudes[id(variable)] = self.add_weight(
                    name=f"magnitude_{variable.path.replace('/', '_')}", shape=(),
                    dtype=variable.dtype,
                    # A NumPy float64: Keras's Constant casts a Python float through float32.
                    initializer=keras.initializers.Constant(np.float64(kernel_rms(variable))),
                    trainable=False)

    def backward_values(self, layer, step_seed):
        del step_seed
        return [ops.sign(v) * ops.cast(self.feedback_magnitudes[id(v)], v.dtype)
                for v in feedback_kernels(layer)]


@register_rule("frsf", label="frSF", order=11)
class FixedRandomSignFeedback(FeedbackWeightsModel):
    """frSF: `B_l = |M_l| ⊙ sign(W_l)`, `M_l` fixed (see the module docstring).

    Args:
        network: as `UniformSignFeedback`.
        feedback_scale: multiplies the limit of `M_l`'s draw (1.0 default).
        seed: optional integer seeding `M_l` and the dropout masks.
        **kwargs: passed to `keras.Model`.
    """

    applies_weight_regularizers = False

    def backward_values(self, layer, step_seed):
        del step_seed
        return [ops.abs(magnitude) * ops.sign(v)
                for v, magnitude in zip(feedback_kernels(layer), self.feedback_of(layer))]


@register_rule("brsf", label="brSF", order=12)
class BatchRandomSignFeedback(UniformSignFeedback):
    """brSF: `B_l = |M_t| ⊙ sign(W_l)`, `M_t` redrawn every step (see the module docstring).

    The draw of step t comes from the rule's step seed (saved with the model,
    so a resumed run draws what an uninterrupted one would).

    Args:
        network, seed, **kwargs: as `UniformSignFeedback`.
    """

    def feedback_step_seed(self):
        return self._step_seed()

    def backward_values(self, layer, step_seed):
        values = []
        for variable in feedback_kernels(layer):
            index = self.graph.parameterised.index(layer) * 16 + len(values)
            limit = math.sqrt(3.0) * ops.cast(self.feedback_magnitudes[id(variable)], "float32")
            uniform = backend_ops.stateless_uniform(
                tuple(variable.shape), backend_ops.fold_seed(step_seed, 100_000 + index),
                "float32")
            magnitude = ops.abs((2.0 * uniform - 1.0) * limit)
            values.append(ops.cast(magnitude, variable.dtype) * ops.sign(variable))
        return values
