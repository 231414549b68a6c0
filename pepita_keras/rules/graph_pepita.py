"""PEPITA on any functional network (`pepita_keras.convert(network, "pepita")`).

Dellaferrera & Kreiman, ICML 2022. The paper's rule, applied to every
parameterised layer of a graph with the same two passes:

1. clean pass       u_l = unit output of layer l (see `graph`),  e = y − onehot(t)
2. modulation       x_mod = x + F e                              (F: (prod(input shape), C))
3. modulated pass   u_l^mod, h_{l-1}^mod (what layer l received), e_mod = y_mod − onehot(t)
4. updates (what the optimizer subtracts)
       hidden layer l:  G_l = ∂a_l(sg(h_{l-1}^mod); θ_l)/∂θ_l ᵀ (u_l − u_l^mod) ⊙ w / B
       output layer L:  G_L = ∂z(sg(h_{L-1}^mod); θ_L)/∂θ_L ᵀ e_* ⊙ w / B

where `a_l` is the layer's own affine output (its `activation=` argument
taken as the identity: the paper's update has no activation derivative), `z`
the softmax's input, `e_* = e_mod` (`last_layer_error="modulated"`, the
official code, default) or `e` (`"clean"`), `w` the sample weights. For a
Dense layer this is `G_l = (h_{l-1}^mod)ᵀ (h_l − h_l^mod) / B`, the paper's
equation, and on the paper's chains the updates equal `pepita_keras.PEPITA`'s
up to float rounding (tested). For the other kinds it is the same statement —
the layer's vector-Jacobian product of its own output difference at its own
modulated input:

- Conv1D/2D, Depthwise/SeparableConv2D, EinsumDense: their local correlations;
- BatchNormalization / LayerNormalization / GroupNormalization: the scale gets
  `Σ (u − u^mod) ⊙ x̂^mod`, the offset `Σ (u − u^mod)` (over batch and the
  normalised positions, / B), with `x̂^mod` the modulated pass's normalised input;
- MultiHeadAttention: every projection (query, key, value, output) gets its
  VJP through the attention of the modulated pass.

Choices that are ours (the paper's nets have no such layers): a unit ends
where its output is shared, so inside a residual block `relu(x + f(x))` the
difference is taken at `f`'s last layer, before the Add; output layers are the
parameterised layers that reach the softmax through parameter-free layers
only. BatchNormalization uses batch statistics in both passes and moves its
moving statistics once, from the clean pass. `F ~ U(±s·√(6/d))`, `s =
feedback_scale`, drawn as the chain rule draws it (same seed, same F).
"""

import math

import keras
from keras import ops

from pepita_keras import graph as graph_lib
from pepita_keras.feedback import add_feedback_matrix
from pepita_keras.graph_model import GraphRuleModel, pairing, weighted_errors

LAST_LAYER_ERRORS = ("modulated", "clean")


@keras.saving.register_keras_serializable(package="pepita_keras")
class GraphPEPITA(GraphRuleModel):
    """PEPITA on a functional network (see the module docstring).

    Args:
        network: a built functional or Sequential `keras.Model` of
            `graph.SUPPORTED_LAYERS` ending in a softmax, with float inputs.
        feedback_scale: `s` in `F ~ U(±s·√(6/d))` (0.05, the paper's).
        last_layer_error: `"modulated"` (default) or `"clean"`.
        seed: optional integer seeding F and the dropout masks.
        **kwargs: passed to `keras.Model`.

    Example:

    ```python
    model = pepita_keras.convert(vit, "pepita", feedback_scale=0.05, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=3)
    ```
    """

    def __init__(self, network, feedback_scale=0.05, last_layer_error="modulated", seed=None,
                 **kwargs):
        super().__init__(network, seed=seed, **kwargs)
        if last_layer_error not in LAST_LAYER_ERRORS:
            raise ValueError(f"last_layer_error must be one of {LAST_LAYER_ERRORS}. Received: "
                             f"last_layer_error={last_layer_error!r}.")
        self.feedback_scale = feedback_scale
        self.last_layer_error = last_layer_error
        fan_in = math.prod(self.input_spec_shape)
        self.feedback_matrix = add_feedback_matrix(
            self, "feedback_matrix", (fan_in, self.num_classes), fan_in, feedback_scale, seed)

    def modulate(self, x, error):
        """`x + F e`, reshaped to x's shape."""
        projected = ops.matmul(error, ops.transpose(self.feedback_matrix))
        return x + ops.cast(ops.reshape(projected, ops.shape(x)), x.dtype)

    def graph_updates(self, x, targets, sample_weight=None, masks=None):
        graph = self.graph
        targets = ops.cast(targets, self.feedback_matrix.dtype)
        statistics = []
        clean = graph.run(x, True, masks, lambda layer, args, kwargs: graph.call_layer(
            layer, args, kwargs, True, statistics))
        error = ops.cast(clean.prediction, targets.dtype) - targets
        x_mod = self.modulate(x, error)
        outputs = set(graph.output_layers)
        last = graph.layers[-1]

        def affine(layer, run):
            args, kwargs = run.inputs[layer.name]
            with graph_lib.without_activation(layer):
                return graph.call_layer(layer, graph_lib.stop_gradients(args),
                                        graph_lib.stop_gradients(kwargs), True)

        def objective():
            run = graph.run(x_mod, True, masks, self.local_call())
            prediction = ops.cast(run.prediction, targets.dtype)
            output_error = prediction - targets if self.last_layer_error == "modulated" \
                else error
            output_error = weighted_errors(ops.stop_gradient(output_error), sample_weight)
            # The softmax input as a function of the output layers' weights.
            logits = run.logits if run.logits is not None else affine(last, run)
            total = pairing(output_error, logits)
            for layer in graph.parameterised:
                if layer.name in outputs:
                    continue
                difference = ops.cast(clean.units[layer.name], targets.dtype) - ops.cast(
                    run.units[layer.name], targets.dtype)
                total = total + pairing(weighted_errors(difference, sample_weight),
                                        affine(layer, run))
            return total, run.prediction

        variables, gradients, _ = self.surrogate_gradients(objective)
        return self.aligned_updates(gradients, variables), clean.prediction, statistics

    def get_config(self):
        config = super().get_config()
        config.update(feedback_scale=self.feedback_scale, last_layer_error=self.last_layer_error)
        return config
