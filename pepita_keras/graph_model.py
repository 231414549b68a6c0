"""`GraphRuleModel`: the rule base for any functional network (`pepita_keras.convert`).

The chain rules (`core.LearningRuleModel` with `blocks`) compute each layer's
update by hand for Dense/Conv2D. A graph rule instead states its update as the
gradient of a *surrogate* objective whose value is irrelevant and whose
gradient with respect to each parameterised layer's weights is the rule's
update, with `ops.stop_gradient` cutting every path the rule does not use:

    G_θ = ∂/∂θ  Σ_l  ⟨ sg(δ_l), f_l(sg(h_{l-1}); θ_l) ⟩ / B

for a local rule (δ_l the rule's signal at layer l's output, `h_{l-1}` what it
received), and the loss itself, with feedback paths substituted, for the
autodiff family (BP, FA, sign-symmetry, Kolen–Pollack). For a Dense layer
`f(h; W, b) = h W + b` this is exactly `G_W = h_{l-1}ᵀ δ_l / B`,
`G_b = mean_b δ_l`: the chain rules' updates. For every other layer kind
(convolutions, normalisation scales and offsets, attention projections) it
is the same statement — the layer's own vector-Jacobian product of `δ_l` —
so one definition covers them all.

Everything else (validation, dropout masks shared by all passes of a step,
optimizer, distribution and loss scaling, metrics, saving) is the base's.
BatchNormalization's moving statistics move once per step, from the pass the
rule names (`graph.update_moving_statistics`).
"""

import keras
from keras import ops

from pepita_keras import graph, validation
from pepita_keras import ops as backend_ops
from pepita_keras.core import LearningRuleModel

class GraphRuleModel(LearningRuleModel):
    """Base of the rules on any functional network (see the module docstring).

    Subclasses implement `graph_updates`.

    Args:
        network: a built functional or Sequential `keras.Model` made of
            `graph.SUPPORTED_LAYERS`, ending in a softmax.
        seed: optional integer seeding the rule's random state.
        **kwargs: passed to `keras.Model`.
    """

    def _read_network(self, network):
        self.blocks = ()
        self.graph = graph.GraphNetwork(network, type(self).__name__)
        validation.check_network_regularizers(
            type(self).__name__, self.graph.layers, network, self.applies_weight_regularizers)
        return bool(self.graph.dropout_positions)

    # ------------------------------------------------------------------
    # What a graph rule implements.
    # ------------------------------------------------------------------
    def graph_updates(self, x, targets, sample_weight=None, masks=None):
        """The rule's step: `(updates, predictions, BatchNormalization statistics)`.

        Args:
            x, targets, sample_weight, masks: as `updates_and_predictions`.

        Returns:
            `(updates aligned with self.trainable_variables, clean prediction,
            [(layer, batch mean, batch variance)])`.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------
    # The base's hooks.
    # ------------------------------------------------------------------
    def updates_and_predictions(self, x, targets, sample_weight=None, masks=None):
        updates, predictions, _ = self.graph_updates(x, targets, sample_weight, masks)
        return updates, predictions

    def learning_step(self, x, targets, sample_weight=None, masks=None):
        updates, predictions, statistics = self.graph_updates(x, targets, sample_weight, masks)
        self.apply_updates(updates)
        graph.update_moving_statistics(statistics)
        return predictions

    def _select_trainable(self, updates):
        return list(updates)  # graph updates are already aligned with trainable_variables

    # ------------------------------------------------------------------
    # Tools.
    # ------------------------------------------------------------------
    @property
    def rule_dtype(self):
        """Where errors and targets are computed: the variables' dtype, at least float32."""
        return keras.backend.result_type(self.variable_dtype, "float32")

    def aligned_updates(self, gradients, variables, extra=None):
        """`gradients` of `variables` (plus `extra`: `{id(variable): update}`) in
        `self.trainable_variables` order; a variable nothing reached gets zeros."""
        found = {id(variable): gradient for variable, gradient in zip(variables, gradients)}
        found.update(extra or {})
        updates = []
        for variable in self.trainable_variables:
            update = found.get(id(variable))
            if update is None:
                update = ops.zeros(variable.shape, variable.dtype)
            updates.append(ops.cast(update, variable.dtype))
        return updates

    def local_call(self, statistics=None):
        """A `layer_call` that stops the gradient at each parameterised layer's input."""
        def call(layer, args, kwargs):
            return graph.GraphNetwork.call_layer(
                layer, graph.stop_gradients(args), graph.stop_gradients(kwargs), True, statistics)
        return call

    def surrogate_gradients(self, objective):
        """Gradients of `objective() -> (value, aux)` w.r.t. the network's trainable variables.

        Returns:
            `(variables, gradients, aux)`.
        """
        variables = list(self.network.trainable_variables)
        _, aux, gradients = backend_ops.value_and_gradients(objective, variables)
        gradients = [ops.zeros(v.shape, v.dtype) if g is None else g
                     for v, g in zip(variables, gradients)]
        return variables, gradients, aux


def weighted_errors(signal, sample_weight):
    """`signal` (B, …) with each example multiplied by its weight (unchanged without)."""
    if sample_weight is None:
        return signal
    weight = ops.cast(sample_weight, signal.dtype)
    return signal * ops.reshape(weight, (-1,) + (1,) * (len(signal.shape) - 1))


def batch_size(tensor, dtype="float32"):
    """B as a scalar, at least 1 (an empty replica shard gives 0 updates, not NaN)."""
    return ops.cast(ops.maximum(ops.shape(tensor)[0], 1), dtype)


def pairing(signal, output):
    """`⟨sg(signal), output⟩ / B`: the surrogate whose gradient is `output`'s VJP of `signal`.

    Computed in at least float32 (float16 outputs under mixed precision are widened).
    """
    dtype = keras.backend.result_type(signal.dtype, output.dtype, "float32")
    signal = ops.stop_gradient(ops.cast(signal, dtype))
    return ops.sum(signal * ops.cast(output, dtype)) / batch_size(output, dtype)
