"""Any functional Keras network as a graph of layers a learning rule can walk.

The paper's rules were written for chains (`pepita_keras.blocks`). The graph
rules (`pepita_keras.convert`) need less: a single-input, single-output
functional (or Sequential) network, each layer called once, built from the
layers in `SUPPORTED_LAYERS`, and ending in a softmax. `GraphNetwork.run`
executes it node by node (Keras's own `_run_through_graph`), and lets a rule:

- replace how each *parameterised* layer is called (`layer_call`): a feedback
  path for FA, a stopped input for local rules, substituted weights;
- apply the step's shared dropout masks (`core.DropoutMasks`);
- read every parameterised layer's input and its *unit output*.

A parameterised layer's **unit** is the layer followed by the element-wise
layers that only it feeds, in a row (Activation, ReLU, Dropout): the
`h_l` of the paper's equations, e.g. `Dense → Activation("relu") → Dropout`.
Where a layer's output is shared (a residual branch point) the unit ends at
the layer itself. **Output layers** are the parameterised layers whose output
reaches the softmax without passing through another parameterised layer.

BatchNormalization in training mode is computed here from the batch moments
without touching its moving statistics (`batch_norm_training`); the statistics
of a step are returned, and the rule updates them once, from its clean pass.
"""

import contextlib
import dataclasses

import keras
from keras import ops

PARAMETERISED_LAYERS = (
    keras.layers.Dense,
    keras.layers.EinsumDense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.MultiHeadAttention,
)
ELEMENTWISE_LAYERS = (keras.layers.Activation, keras.layers.ReLU, keras.layers.Dropout)
PARAMETER_FREE_LAYERS = ELEMENTWISE_LAYERS + (
    keras.layers.Add,
    keras.layers.Concatenate,
    keras.layers.Multiply,
    keras.layers.Reshape,
    keras.layers.Flatten,
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.Softmax,
)
SUPPORTED_LAYERS = PARAMETERISED_LAYERS + PARAMETER_FREE_LAYERS


def supported_names():
    """The supported layer class names, sorted, for messages and docs."""
    return ", ".join(sorted({cls.__name__ for cls in SUPPORTED_LAYERS} | {"InputLayer"}))


@dataclasses.dataclass
class GraphPass:
    """What one `GraphNetwork.run` recorded.

    Args:
        prediction: the network output.
        inputs: `{layer name: (args, kwargs)}` each parameterised layer was called with.
        outputs: `{layer name: output}` of each parameterised layer itself.
        units: `{layer name: unit output}` (see the module docstring).
        statistics: `[(BatchNormalization layer, mean, variance)]` of the batch.
        logits: the input of the final softmax layer, or None when the softmax
            is the last parameterised layer's own activation.
    """

    prediction: object
    inputs: dict
    outputs: dict
    units: dict
    statistics: list
    logits: object = None


def _functional(network):
    if isinstance(network, keras.Sequential):
        network._maybe_rebuild()
        return network._functional
    return network


def _is_softmax(layer):
    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) == "softmax"


class GraphNetwork:
    """A functional network prepared for the graph rules.

    Args:
        network: a built `keras.Model` (functional or Sequential) with one
            input and one output, every layer called once, made of
            `SUPPORTED_LAYERS`, ending in a softmax.
        rule_name: for messages.

    Raises:
        ValueError: naming the first unsupported layer and the supported list,
            or what else is wrong with the network.
    """

    def __init__(self, network, rule_name="this rule"):
        if not isinstance(network, keras.Model):
            raise ValueError(
                f"{rule_name} converts a keras.Model (functional or Sequential). Received: "
                f"{network!r} of type {type(network).__name__}.")
        try:
            inputs, outputs = network.inputs, network.outputs
        except (AttributeError, ValueError):
            inputs = outputs = None
        if not inputs:
            raise ValueError(
                f"The network {network.name!r} has no known input shape; build it from "
                "`keras.Input(shape=...)`.")
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(
                f"{rule_name} needs a single-input, single-output network; {network.name!r} has "
                f"{len(inputs)} inputs and {len(outputs)} outputs.")
        self.network = network
        self.functional = _functional(network)
        self.layers = self._ordered_layers()
        for layer in self.layers:
            self._check_layer(layer, rule_name)
        last = self.layers[-1]
        if not _is_softmax(last):
            raise ValueError(
                f"The network {network.name!r} must end in a softmax (the rules' error is "
                f"softmax output − one-hot target); its last layer {last.name!r} "
                f"({type(last).__name__}) is not one. Add keras.layers.Softmax().")
        self.parameterised = [layer for layer in self.layers
                              if isinstance(layer, PARAMETERISED_LAYERS)]
        if not self.parameterised:
            raise ValueError(f"The network {network.name!r} has no layer with weights to learn.")
        self.dropout_positions = {
            layer.name: index for index, layer in enumerate(
                layer for layer in self.layers if isinstance(layer, keras.layers.Dropout))}
        self.unit_tails = self._unit_tails()
        by_name = {layer.name: layer for layer in self.layers}
        # Parameterised layer name → the layer whose output ends its unit.
        self.unit_layers = {name: by_name[tail] for tail, name in self.unit_tails.items()}
        self.output_layers = self._output_layers()

    # ------------------------------------------------------------------
    # Structure.
    # ------------------------------------------------------------------
    def _ordered_layers(self):
        """Layers in execution order (Keras's nodes by decreasing depth), without inputs.

        Also keeps each layer's node of this graph (`self.nodes`); a layer
        with two nodes here (a shared layer) is refused by `_check_layer`.
        """
        layers, self.nodes, self.calls = [], {}, {}
        for depth in sorted(self.functional._nodes_by_depth, reverse=True):
            for node in self.functional._nodes_by_depth[depth]:
                if node.is_input or node.operation is None:
                    continue
                layer = node.operation
                self.calls[layer.name] = self.calls.get(layer.name, 0) + 1
                if layer.name not in self.nodes:
                    layers.append(layer)
                    self.nodes[layer.name] = node
        return layers

    def _parents(self, layer):
        return [parent.operation for parent in self.nodes[layer.name].parent_nodes
                if parent.operation is not None and not parent.is_input]

    def _check_layer(self, layer, rule_name):
        network = self.network.name
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(
                f"Operation {layer.name!r} ({type(layer).__name__}) of network {network!r} is a "
                f"keras.ops call on a symbolic tensor, not a layer; {rule_name} walks layers. "
                f"Express it with layers. Supported layers: {supported_names()}.")
        if not isinstance(layer, SUPPORTED_LAYERS):
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) of network {network!r} is not "
                f"supported by {rule_name}. Supported layers: {supported_names()}.")
        if self.calls[layer.name] != 1:
            raise ValueError(
                f"Layer {layer.name!r} of network {network!r} is called "
                f"{self.calls[layer.name]} times; the graph rules need each layer called "
                "once (shared weights have no single input and output to learn from).")
        if isinstance(layer, keras.layers.BatchNormalization) and layer.renorm:
            raise ValueError(
                f"BatchNormalization layer {layer.name!r} uses renorm=True, which the graph "
                "rules do not support; use renorm=False.")
        if isinstance(layer, keras.layers.MultiHeadAttention) and layer.dropout:
            raise ValueError(
                f"MultiHeadAttention layer {layer.name!r} uses dropout={layer.dropout}; its "
                "internal dropout cannot share the step's masks. Use dropout=0.0 and a "
                "keras.layers.Dropout after it.")
        if isinstance(layer, keras.layers.Dropout) and layer.noise_shape:
            raise ValueError(
                f"Dropout layer {layer.name!r} uses noise_shape={layer.noise_shape}; only "
                "element-wise dropout is supported.")

    def _consumers(self):
        consumers = {}
        for layer in self.layers:
            for parent in self._parents(layer):
                consumers.setdefault(parent.name, []).append(layer)
        return consumers

    def _unit_tails(self):
        """`{layer name whose output ends a unit: parameterised layer name}`."""
        consumers = self._consumers()
        tails = {}
        for layer in self.parameterised:
            tail = layer
            while True:
                following = consumers.get(tail.name, [])
                if len(following) != 1 or not isinstance(following[0], ELEMENTWISE_LAYERS):
                    break
                tail = following[0]
            tails[tail.name] = layer.name
        return tails

    def _output_layers(self):
        """Parameterised layers that reach the output through parameter-free layers only."""
        parameterised = {layer.name for layer in self.parameterised}
        found, seen = [], set()
        stack = [self.layers[-1]]
        while stack:
            layer = stack.pop()
            if layer.name in seen:
                continue
            seen.add(layer.name)
            if layer.name in parameterised:
                found.append(layer.name)
                continue
            stack.extend(self._parents(layer))
        return [layer.name for layer in self.parameterised if layer.name in found]

    # ------------------------------------------------------------------
    # Running it.
    # ------------------------------------------------------------------
    def run(self, x, training=False, masks=None, layer_call=None):
        """Runs the network on `x`, node by node.

        Args:
            x: the input batch.
            training: training mode (BatchNormalization uses batch moments).
            masks: a `core.DropoutMasks` (training) or None (no dropout).
            layer_call: optional `fn(layer, args, kwargs) -> output` replacing
                how each parameterised layer is called (`call_layer` is the
                default).

        Returns:
            A `GraphPass`.
        """
        record = GraphPass(None, {}, {}, {}, [])

        def call_fn(layer, *args, **kwargs):
            if isinstance(layer, keras.layers.Dropout):
                output = args[0] if masks is None else masks(
                    layer, self.dropout_positions[layer.name], args[0])
            elif isinstance(layer, PARAMETERISED_LAYERS):
                record.inputs[layer.name] = (args, kwargs)
                if layer_call is None:
                    output = self.call_layer(layer, args, kwargs, training, record.statistics)
                else:
                    output = layer_call(layer, args, kwargs)
                record.outputs[layer.name] = output
            else:
                if layer is self.layers[-1]:
                    record.logits = args[0]
                output = layer(*args, **kwargs)
            if layer.name in self.unit_tails:
                record.units[self.unit_tails[layer.name]] = output
            return output

        record.prediction = self.functional._run_through_graph(
            [x], operation_fn=lambda operation: operation, call_fn=call_fn)
        return record

    @staticmethod
    def call_layer(layer, args, kwargs, training=False, statistics=None, values=None):
        """Calls a parameterised layer without changing any of its variables.

        Args:
            layer: the layer.
            args, kwargs: its call arguments.
            training: training mode.
            statistics: a list receiving `(layer, mean, variance)` for a
                BatchNormalization layer in training mode.
            values: optional replacement values of `layer.trainable_variables`
                (same order); the call is then stateless.

        Returns:
            The layer's output.
        """
        if isinstance(layer, keras.layers.BatchNormalization) and training and layer.trainable:
            output, mean, variance = batch_norm_training(layer, args[0], values)
            if statistics is not None:
                statistics.append((layer, mean, variance))
            return output
        if layer._call_has_training_arg:
            kwargs = dict(kwargs, training=training)
        if values is None:
            return layer(*args, **kwargs)
        output, _ = layer.stateless_call(
            list(values), [v.value for v in layer.non_trainable_variables], *args, **kwargs)
        return output


@contextlib.contextmanager
def without_activation(layer):
    """Within the block, `layer`'s own `activation=` argument is the identity.

    The local rules' updates do not pass through the derivative of a layer's
    activation (PEPITA: `G_l = h_{l-1}ᵀ (h_l − h_l^mod)`), so they take the
    vector-Jacobian product of the layer's affine part.
    """
    activation = getattr(layer, "activation", None)
    if activation is None or activation is keras.activations.linear:
        yield
        return
    layer.activation = keras.activations.linear
    try:
        yield
    finally:
        layer.activation = activation


def batch_norm_training(layer, inputs, values=None):
    """A BatchNormalization layer's training-mode output, its moving statistics untouched.

    The same operations as `keras.layers.BatchNormalization.call` with
    `training=True` (float32 moments, `ops.batch_normalization`).

    Returns:
        `(output, batch mean, batch variance)`.
    """
    compute_dtype = keras.backend.result_type(inputs.dtype, "float32")
    inputs = ops.cast(inputs, compute_dtype)
    weights = dict(zip([id(v) for v in layer.trainable_variables], values or ()))

    def value(variable):
        return ops.cast(weights.get(id(variable), variable), compute_dtype)

    gamma = value(layer.gamma) if layer.scale else None
    beta = value(layer.beta) if layer.center else None
    mean, variance = ops.moments(inputs, axes=layer._reduction_axes,
                                 synchronized=layer.synchronized)
    outputs = ops.batch_normalization(x=inputs, mean=mean, variance=variance, axis=layer.axis,
                                      offset=beta, scale=gamma, epsilon=layer.epsilon)
    return ops.cast(outputs, layer.compute_dtype), mean, variance


def update_moving_statistics(statistics):
    """Moves each BatchNormalization layer's statistics as Keras's training call would."""
    for layer, mean, variance in statistics:
        momentum = layer.momentum
        layer.moving_mean.assign(
            ops.cast(layer.moving_mean, mean.dtype) * momentum + mean * (1.0 - momentum))
        layer.moving_variance.assign(
            ops.cast(layer.moving_variance, variance.dtype) * momentum
            + variance * (1.0 - momentum))


def stop_gradients(structure):
    """`structure` with `ops.stop_gradient` applied to every tensor in it."""
    return keras.tree.map_structure(
        lambda item: ops.stop_gradient(item) if keras.ops.is_tensor(item) else item, structure)
