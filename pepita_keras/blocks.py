"""Walking a Sequential-style Keras network as a chain of learnable blocks.

Every rule in this package learns layer by layer, so it needs the network as
an explicit chain rather than a black-box `call`. This module turns a
`keras.Sequential` (or a functional model that is a plain chain) into a tuple of
`Block`s:

    pre-layers (pooling, flatten, dropout) -> learnable layer -> post-layers
                                              (Dense/Conv2D)    (activation,
                                                                 ReLU, dropout)

A block's *input* is what reaches its learnable layer; its *output* is the
learnable layer's activation after the element-wise post-layers. Those are
exactly the `h_{l-1}` and `h_l` of the PEPITA equations. Pooling and flatten
sit between one block's output and the next block's input and just carry
activations through.
"""

import dataclasses

import keras

LEARNABLE_LAYERS = (keras.layers.Dense, keras.layers.Conv2D)
ELEMENTWISE_LAYERS = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.Dropout,
)
CARRY_LAYERS = (
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.Flatten,
    keras.layers.Dropout,
)
# Allowed only as the network's last layer: the rules need the derivative of
# hidden activations (FA, DFA, DRTP), which a softmax layer does not offer
# element-wise.
OUTPUT_LAYERS = (keras.layers.Softmax,)
SUPPORTED_LAYERS = LEARNABLE_LAYERS + ELEMENTWISE_LAYERS + CARRY_LAYERS + OUTPUT_LAYERS


def _supported_names():
    names = sorted({cls.__name__ for cls in SUPPORTED_LAYERS} | {"InputLayer"})
    return ", ".join(names)


@dataclasses.dataclass(frozen=True)
class Block:
    """One learnable layer with the parameter-free layers around it.

    Args:
        pre: layers applied to the previous block's output before `layer`
            (pooling, flatten, dropout).
        layer: the learnable `Dense` or `Conv2D` layer.
        post: element-wise layers applied after `layer` (activation, ReLU,
            dropout); their output is the block's activation `h_l`.
    """

    pre: tuple
    layer: keras.layers.Layer
    post: tuple

    @property
    def variables(self):
        """The block's trainable variables in Keras order: kernel, bias."""
        layer = self.layer
        return [layer.kernel] + ([layer.bias] if layer.use_bias else [])


def chain_layers(network):
    """Returns the layers of a Sequential-style network, in call order.

    Args:
        network: a `keras.Sequential`, or a functional `keras.Model` whose
            layers form a single chain from one input to one output.

    Returns:
        A list of layers, without the `InputLayer`.

    Raises:
        ValueError: if `network` is not a single-input single-output chain or
            has no known input shape.
    """
    if not isinstance(network, keras.Model):
        raise ValueError(
            "Expected `network` to be a keras.Sequential or functional "
            f"keras.Model. Received: network={network!r} of type "
            f"{type(network).__name__}."
        )
    try:
        inputs = network.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ValueError(
            f"The network {network.name!r} has no known input shape. Start "
            "it with `keras.Input(shape=...)` (e.g. "
            "`keras.Sequential([keras.Input((784,)), ...])`)."
        )
    if len(inputs) != 1 or len(network.outputs) != 1:
        raise ValueError(
            "Local learning rules need a single-input, single-output chain "
            f"of layers; network {network.name!r} has {len(inputs)} inputs "
            f"and {len(network.outputs)} outputs."
        )
    layers = [
        layer
        for layer in network.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    if not isinstance(network, keras.Sequential):
        # A functional model: check every layer consumes its predecessor.
        previous = inputs[0]
        for layer in layers:
            if len(layer._inbound_nodes) != 1 or layer.input is not previous:
                raise ValueError(
                    f"Layer {layer.name!r} of network {network.name!r} does "
                    "not simply consume the previous layer's output; only "
                    "plain chains (Sequential-style networks) are supported."
                )
            previous = layer.output
    return layers


def _check_layer(layer, network_name):
    if not isinstance(layer, SUPPORTED_LAYERS):
        raise ValueError(
            f"Layer {layer.name!r} of type {type(layer).__name__} in network "
            f"{network_name!r} is not supported by local learning rules. "
            f"Supported layers: {_supported_names()}."
        )
    if isinstance(layer, keras.layers.Conv2D):
        if layer.data_format != "channels_last" or layer.groups != 1:
            raise ValueError(
                f"Conv2D layer {layer.name!r} must use "
                "data_format='channels_last' and groups=1. Received: "
                f"data_format={layer.data_format!r}, groups={layer.groups}."
            )
    if isinstance(layer, keras.layers.Dense) and len(layer.input.shape) != 2:
        raise ValueError(
            f"Dense layer {layer.name!r} receives an input of shape "
            f"{layer.input.shape}; local rules need a flat (batch, features) "
            "input. Add a keras.layers.Flatten() before it."
        )
    if isinstance(layer, keras.layers.Softmax):
        rank = len(layer.output.shape)
        if layer.axis not in (-1, rank - 1):
            raise ValueError(
                f"Softmax layer {layer.name!r} in network {network_name!r} "
                f"uses axis={layer.axis!r}; the output softmax must be over "
                "the classes, the last axis. Use keras.layers.Softmax()."
            )
    if isinstance(layer, keras.layers.Dropout) and layer.noise_shape:
        raise ValueError(
            f"Dropout layer {layer.name!r} uses noise_shape="
            f"{layer.noise_shape}; only element-wise dropout is supported."
        )


def network_blocks(network):
    """Splits a Sequential-style network into learnable `Block`s.

    Args:
        network: a built Sequential-style `keras.Model` (see `chain_layers`).

    Returns:
        A tuple of `Block`s, one per `Dense`/`Conv2D` layer, in call order.

    Raises:
        ValueError: naming the offending layer when the network holds an
            unsupported layer, has no learnable layer, or ends in anything
            but a learnable layer followed by element-wise layers.

    Example:

    >>> net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
    ...                         keras.layers.Activation("softmax")])
    >>> [b.layer.name for b in network_blocks(net)]  # doctest: +SKIP
    ['dense']

    A `keras.layers.Softmax()` is accepted as the last layer only (it is
    then the last block's output activation).
    """
    blocks = []
    pending = []  # parameter-free layers waiting for the next learnable layer
    current = None
    layers = chain_layers(network)
    for position, layer in enumerate(layers):
        _check_layer(layer, network.name)
        if isinstance(layer, OUTPUT_LAYERS) and position != len(layers) - 1:
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) of network "
                f"{network.name!r} is followed by {layers[position + 1].name!r}; "
                f"{type(layer).__name__} is supported only as the network's "
                "last layer (the output). Inside the network use "
                "Activation('relu'), 'tanh', 'sigmoid' or 'linear'."
            )
        if isinstance(layer, LEARNABLE_LAYERS):
            if current is not None:
                blocks.append(current)
            current = Block(pre=tuple(pending), layer=layer, post=())
            pending = []
        elif (
            current is not None
            and not pending
            and isinstance(layer, ELEMENTWISE_LAYERS + OUTPUT_LAYERS)
        ):
            current = dataclasses.replace(current, post=current.post + (layer,))
        else:
            pending.append(layer)
    if current is None:
        raise ValueError(
            f"Network {network.name!r} has no Dense or Conv2D layer to learn."
        )
    if pending:
        raise ValueError(
            f"Network {network.name!r} ends with {pending[0].name!r} "
            f"({type(pending[0]).__name__}) after its last learnable layer; "
            "the output must come from a Dense/Conv2D layer followed only by "
            "activation or dropout layers."
        )
    blocks.append(current)
    return tuple(blocks)


def output_activation_name(block):
    """Name of the last activation applied in `block` (e.g. "softmax").

    An `Activation` layer gives its function's name, a `ReLU` layer
    `"relu"`, a `Softmax` layer `"softmax"`; otherwise the learnable layer's
    own activation (`"linear"` for none: logits).
    """
    name = getattr(block.layer.activation, "__name__", None)
    for layer in block.post:
        if isinstance(layer, keras.layers.Activation):
            name = getattr(layer.activation, "__name__", None)
        elif isinstance(layer, keras.layers.ReLU):
            name = "relu"
        elif isinstance(layer, keras.layers.Softmax):
            name = "softmax"
    return name
