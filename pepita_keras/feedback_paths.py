"""Backpropagation with substituted feedback weights, on any functional network.

The autodiff family — backprop, feedback alignment, sign-symmetry,
Kolen–Pollack — differ only in the weights the error travels back through.
`GraphBackprop` differentiates the cross-entropy

    L = (1/B) Σ_b w_b · CE(t_b, y_b)

through the network with Keras's automatic differentiation. Its subclasses
give, per parameterised layer `f(h; θ)`, *backward weights* `θ̃` that replace
every kernel (`feedback_kernels`) in the path to the layer's input, while the
layer's own weights still receive `∂L/∂θ` at the signal that arrived:

    y = sg(f(sg(h); θ)) + [f(h; sg(θ̃)) − sg(f(h; sg(θ̃)))] + [f(sg(h); θ) − sg(f(sg(h); θ))]

Its value is exactly `f(h; θ)` (both brackets are `v − v = 0`); its gradient
with respect to `h` is `f(·; θ̃)`'s, with respect to `θ` is `f(·; θ)`'s at the
received signal. For a Dense layer that is `g_{l-1} = δ_l B_lᵀ`, the FA
equation, with `B_l = θ̃`; for a convolution it is the transposed convolution
with `θ̃`; for attention, every projection's. Vectors (biases, normalisation
scales and offsets) keep their own values in the backward path, as in
biotorch, which converts only Linear and Conv layers; normalisation layers
are backpropagated exactly. Activations, pooling, Add, Concatenate and the
like are differentiated as they are.

Example:

```python
model = pepita_keras.convert(network, "bp")   # equals Keras's own gradients
```
"""

import contextlib
import math

import keras
from keras import ops

from pepita_keras import graph
from pepita_keras.graph_model import GraphRuleModel


def feedback_kernels(layer):
    """The weights of `layer` a feedback path replaces: its trainable kernels.

    Keras names them `kernel` (Dense, EinsumDense, convolutions, each attention
    projection), `depthwise_kernel` and `pointwise_kernel` (SeparableConv2D).
    """
    return [variable for variable in layer.trainable_variables
            if variable.name.endswith("kernel")]


def fans(shape):
    """`(fan_in, fan_out)` of a kernel shape, as Keras's initializers count them."""
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def kernel_rms(variable):
    """The root mean square of a kernel's current values (Glorot's std if it is all zeros)."""
    values = keras.ops.convert_to_numpy(variable)
    rms = float((values.astype("float64") ** 2).mean() ** 0.5)
    if rms > 0:
        return rms
    fan_in, fan_out = fans(tuple(variable.shape))
    return math.sqrt(2.0 / (fan_in + fan_out))


def feedback_path(local, feedback):
    """`local`'s value, `local`'s gradient for the weights, `feedback`'s for the input.

    `local` is the layer computed from its stopped input, `feedback` from its
    input with the stopped feedback weights; both brackets of the module
    docstring's sum are exactly zero in value.
    """
    # Under mixed precision the feedback weights are float32 values, not autocast variables.
    feedback = ops.cast(feedback, local.dtype)
    return (ops.stop_gradient(local) + (feedback - ops.stop_gradient(feedback))
            + (local - ops.stop_gradient(local)))


def _cast_floats(structure, dtype):
    """`structure` with its floating tensors cast to `dtype`."""
    def cast(item):
        if keras.ops.is_tensor(item) and "float" in str(item.dtype):
            return ops.cast(item, dtype)
        return item
    return keras.tree.map_structure(cast, structure)


# MultiHeadAttention's linear maps: a feedback path replaces each, the attention
# between them is differentiated at its forward values.
_ATTENTION_PROJECTIONS = ("_query_dense", "_key_dense", "_value_dense", "_output_dense")


@contextlib.contextmanager
def _feedback_projections(layer, replaced):
    """Within the block, each projection of attention `layer` runs `feedback_path`."""
    patched = []
    for attribute in _ATTENTION_PROJECTIONS:
        projection = getattr(layer, attribute)
        original = projection.call

        def call(inputs, training=None, projection=projection, original=original):
            del training
            local = original(ops.stop_gradient(inputs))
            kernel = ops.stop_gradient(ops.cast(replaced.get(id(projection.kernel),
                                                             projection.kernel), inputs.dtype))
            return feedback_path(local, ops.einsum(projection.equation, inputs, kernel))

        object.__setattr__(projection, "call", call)  # Keras's __call__ looks up self.call
        patched.append(projection)
    try:
        yield
    finally:
        for projection in patched:
            object.__delattr__(projection, "call")


@keras.saving.register_keras_serializable(package="pepita_keras")
class GraphBackprop(GraphRuleModel):
    """Backpropagation on any functional network (the reference the others compare with).

    `pepita_keras.convert(network, "bp")` for a network outside the paper's
    chains. The updates are Keras's own gradients of the categorical
    cross-entropy of the softmax output (plus the layers' weight
    regularizers), with the step's dropout masks.

    Args:
        network: a built functional or Sequential `keras.Model` of
            `graph.SUPPORTED_LAYERS` ending in a softmax.
        seed: optional integer seeding the dropout masks (and a subclass's
            feedback weights).
        **kwargs: passed to `keras.Model`.
    """

    applies_weight_regularizers = True

    def backward_values(self, layer, step_seed):
        """Values standing for `feedback_kernels(layer)` in the backward path; None: their own.

        Args:
            layer: a parameterised layer.
            step_seed: this step's seed (rules that redraw per batch use it).
        """
        del layer, step_seed
        return None

    def extra_updates(self, variables, gradients):
        """`{id(variable): update}` for the rule's own trainable variables (none here)."""
        del variables, gradients
        return {}

    def _layer_call(self, step_seed, statistics):
        def call(layer, args, kwargs):
            substitutes = self.backward_values(layer, step_seed)
            if substitutes is None:
                return graph.GraphNetwork.call_layer(layer, args, kwargs, True, statistics)
            replaced = dict(zip([id(v) for v in feedback_kernels(layer)], substitutes))
            if isinstance(layer, keras.layers.MultiHeadAttention):
                with _feedback_projections(layer, replaced):
                    return graph.GraphNetwork.call_layer(layer, args, kwargs, True, statistics)
            # The linear map gets the feedback path; the layer's own activation is then
            # applied to its true pre-activation (its derivative at the forward values).
            with graph.without_activation(layer):
                local = graph.GraphNetwork.call_layer(
                    layer, graph.stop_gradients(args), graph.stop_gradients(kwargs), True,
                    statistics)
                values = [ops.stop_gradient(replaced.get(id(v), v.value))
                          for v in layer.trainable_variables]
                # A stateless call does not autocast: under mixed precision the feedback path
                # runs in the variables' dtype (its value is never used, only its gradient).
                wide = layer.variable_dtype
                feedback = graph.GraphNetwork.call_layer(
                    layer, _cast_floats(args, wide), _cast_floats(kwargs, wide), True, None,
                    values)
            output = feedback_path(local, feedback)
            activation = getattr(layer, "activation", None)
            if activation is None or activation is keras.activations.linear:
                return output
            return activation(output)
        return call

    def graph_updates(self, x, targets, sample_weight=None, masks=None):
        step_seed = masks.seed if masks is not None else self.feedback_step_seed()
        dtype = self.rule_dtype
        optimizer = getattr(self, "optimizer", None)
        loss_scale = None
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            loss_scale = ops.cast(optimizer.scale_loss(1.0), dtype)

        def objective():
            statistics = []
            run = self.graph.run(x, True, masks, self._layer_call(step_seed, statistics))
            loss = keras.losses.categorical_crossentropy(
                ops.cast(targets, dtype), ops.cast(run.prediction, dtype))
            if sample_weight is not None:
                loss = loss * ops.cast(sample_weight, dtype)
            loss = ops.mean(loss)
            penalties = [ops.cast(p, dtype) for p in self.network.losses]
            if penalties:
                loss = loss + ops.sum(ops.stack(penalties))
            if loss_scale is not None:
                loss = loss * loss_scale
            return loss, (run.prediction, statistics)

        variables, gradients, (prediction, statistics) = self.surrogate_gradients(objective)
        if loss_scale is not None:
            gradients = [g / ops.cast(loss_scale, g.dtype) for g in gradients]
        updates = self.aligned_updates(gradients, variables,
                                       self.extra_updates(variables, gradients))
        return updates, prediction, statistics

    def feedback_step_seed(self):
        """A fresh seed for this step when no dropout mask needs one (brSF redraws with it)."""
        return None


class FeedbackWeightsModel(GraphBackprop):
    """`GraphBackprop` with one feedback variable per kernel (FA, frSF, Kolen–Pollack).

    Each kernel `W` of every parameterised layer gets a variable `M` of its
    shape, drawn `U(−√3·r, +√3·r)` with `r` the root mean square of `W` when
    the rule is built (so `M` has `W`'s scale whatever the layer kind: a
    He-uniform `W` gives `M` its distribution, as the chain FA's default).

    Args:
        network, seed, **kwargs: as `GraphBackprop`.
        feedback_scale: multiplies the limit of `M`'s draw.
    """

    feedback_trainable = False

    def __init__(self, network, feedback_scale=1.0, seed=None, **kwargs):
        super().__init__(network, seed=seed, **kwargs)
        from pepita_keras.feedback import check_feedback_scale

        self.feedback_scale = check_feedback_scale(feedback_scale)
        self.feedback_variables = {}
        index = 0
        for layer in self.graph.parameterised:
            for variable in feedback_kernels(layer):
                limit = self.feedback_scale * math.sqrt(3.0) * kernel_rms(variable)
                name = f"feedback_{variable.path.replace('/', '_')}"
                self.feedback_variables[id(variable)] = self.add_weight(
                    name=name, shape=tuple(variable.shape), dtype=variable.dtype,
                    initializer=keras.initializers.RandomUniform(
                        -limit, limit, seed=None if seed is None else seed + index),
                    trainable=self.feedback_trainable)
                index += 1

    def feedback_of(self, layer):
        """The feedback variables of `layer`'s kernels, in `feedback_kernels` order."""
        return [self.feedback_variables[id(v)] for v in feedback_kernels(layer)]

    def feedback_alignment_pairs(self):
        from pepita_keras.feedback import AlignmentPair

        return [AlignmentPair(f"B_{variable.path}", self.feedback_variables[id(variable)],
                              variable)
                for layer in self.graph.parameterised for variable in feedback_kernels(layer)]

    def get_config(self):
        config = super().get_config()
        config.update(feedback_scale=self.feedback_scale)
        return config
