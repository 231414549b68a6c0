"""The paper's two architectures, as plain `keras.Sequential` networks.

Both follow the official PEPITA code: no biases,
inputs in [0, 1] without normalisation, ReLU hidden units, softmax output,
He-uniform initialisation by default (the official FC code; the official
conv script keeps PyTorch's default U(±1/√fan_in): `kernel_initializer=
"torch_default"`).
The activations can be changed (`hidden_activation`, `output_activation`),
e.g. for the DRTP baseline, whose official code defaults to tanh hidden
units and a sigmoid output trained with a binary cross-entropy
(https://github.com/ChFrenkel/DirectRandomTargetProjection, `main.py`
arguments `--hidden-act`, `--conv-act`, `--output-act`, `--loss`).
"""

import keras

# Activations the paper's networks accept: the hidden ones have the
# derivative the error-propagating rules need (backward.py), the output ones
# define the rules' output error e = y − onehot(t) (softmax with categorical
# cross-entropy, sigmoid with binary cross-entropy summed over classes).
HIDDEN_ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear")
OUTPUT_ACTIVATIONS = ("softmax", "sigmoid")


# Weight initialisations: the official FC code's He-uniform U(±√(6/fan_in)),
# and PyTorch's default for Linear/Conv2d, U(±1/√fan_in) (kaiming_uniform_ with
# a=√5), which the official conv script keeps (its --w_init is never applied).
KERNEL_INITIALIZERS = ("he_uniform", "torch_default", "glorot_uniform")


def _initializer(kind, seed, offset):
    seed = None if seed is None else seed + offset
    if kind == "torch_default":
        # limit = √(3·scale/fan_in) = 1/√fan_in.
        return keras.initializers.VarianceScaling(
            scale=1.0 / 3.0, mode="fan_in", distribution="uniform", seed=seed)
    if kind == "glorot_uniform":  # Keras's Dense default (the keras-io Forward-Forward net)
        return keras.initializers.GlorotUniform(seed=seed)
    return keras.initializers.HeUniform(seed=seed)


def _check_initializer(kernel_initializer):
    if kernel_initializer not in KERNEL_INITIALIZERS:
        raise ValueError(
            f"kernel_initializer must be one of {KERNEL_INITIALIZERS}. "
            f"Received: kernel_initializer={kernel_initializer!r}."
        )


def _check_activations(hidden_activation, output_activation):
    if hidden_activation not in HIDDEN_ACTIVATIONS:
        raise ValueError(
            f"hidden_activation must be one of {HIDDEN_ACTIVATIONS}. "
            f"Received: hidden_activation={hidden_activation!r}."
        )
    if output_activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(
            f"output_activation must be one of {OUTPUT_ACTIVATIONS}. "
            f"Received: output_activation={output_activation!r}."
        )


def paper_fc(
    input_shape=(28, 28, 1),
    num_classes=10,
    hidden_units=(1024,),
    dropout=0.1,
    use_bias=False,
    seed=None,
    name="paper_fc",
    hidden_activation="relu",
    output_activation="softmax",
    kernel_initializer="he_uniform",
):
    """Fully connected network of the PEPITA paper.

    `input → Flatten → [Dense(units, relu) → Dropout]×k → Dense(classes, softmax)`;
    the paper uses one hidden layer of 1024 units and dropout 0.1
    (784 → 1024 → 10 on MNIST, 3072 → 1024 → 10/100 on CIFAR).

    Args:
        input_shape: image or vector shape, e.g. (28, 28, 1) or (784,).
        num_classes: number of output classes; None builds the hidden
            layers only, without an output layer (for `ForwardForward`,
            which classifies by goodness).
        hidden_units: widths of the hidden layers.
        dropout: dropout rate after each hidden layer (0 disables it).
        use_bias: whether Dense layers have biases (paper: False).
        seed: optional integer seed for the weight initialisers.
        name: network name.
        hidden_activation: activation of the hidden layers, one of
            `HIDDEN_ACTIVATIONS` (paper: "relu"; DRTP code default: "tanh").
        output_activation: "softmax" (paper) or "sigmoid" (DRTP code
            default, trained with a binary cross-entropy; only
            `DirectFeedbackAlignment` and `DRTP` accept it).
        kernel_initializer: `"he_uniform"` (official FC code) or
            `"torch_default"` (U(±1/√fan_in), the official conv script).

    Returns:
        A built `keras.Sequential`.

    Example:

    >>> net = paper_fc((28, 28, 1), 10, seed=0)
    >>> net.count_params()
    813056
    """
    _check_activations(hidden_activation, output_activation)
    _check_initializer(kernel_initializer)
    layers = [keras.Input(shape=tuple(input_shape)), keras.layers.Flatten()]
    for index, units in enumerate(hidden_units):
        layers.append(
            keras.layers.Dense(
                units,
                activation=hidden_activation,
                use_bias=use_bias,
                kernel_initializer=_initializer(kernel_initializer, seed, index),
                name=f"hidden_{index + 1}",
            )
        )
        if dropout:
            layers.append(keras.layers.Dropout(dropout, name=f"dropout_{index + 1}"))
    if num_classes is not None:
        layers.append(
            keras.layers.Dense(
                num_classes,
                activation=output_activation,
                use_bias=use_bias,
                kernel_initializer=_initializer(kernel_initializer, seed, len(hidden_units)),
                name="output",
            )
        )
    return keras.Sequential(layers, name=name)


def paper_conv(
    input_shape=(28, 28, 1),
    num_classes=10,
    filters=32,
    kernel_size=5,
    pool_size=2,
    use_bias=False,
    seed=None,
    name="paper_conv",
    hidden_activation="relu",
    output_activation="softmax",
    kernel_initializer="he_uniform",
):
    """Convolutional network of the PEPITA paper.

    `Conv2D(32, 5×5, valid, relu) → MaxPooling2D(2) → Flatten →
    Dense(classes, softmax)`.

    Args:
        input_shape: image shape, (28, 28, 1) or (32, 32, 3).
        num_classes: number of output classes.
        filters: convolution filters (paper: 32).
        kernel_size: convolution kernel size (paper: 5).
        pool_size: max-pooling size (paper: 2).
        use_bias: whether layers have biases (paper: False).
        seed: optional integer seed for the weight initialisers.
        name: network name.
        hidden_activation: activation of the convolution, one of
            `HIDDEN_ACTIVATIONS` (paper: "relu"; DRTP code default: "tanh").
        output_activation: "softmax" (paper) or "sigmoid" (DRTP code
            default; only `DirectFeedbackAlignment` and `DRTP` accept it).
        kernel_initializer: `"he_uniform"` (official FC code) or
            `"torch_default"` (U(±1/√fan_in), the official conv script).

    Returns:
        A built `keras.Sequential`.
    """
    _check_activations(hidden_activation, output_activation)
    _check_initializer(kernel_initializer)
    return keras.Sequential(
        [
            keras.Input(shape=tuple(input_shape)),
            keras.layers.Conv2D(
                filters,
                kernel_size,
                padding="valid",
                activation=hidden_activation,
                use_bias=use_bias,
                kernel_initializer=_initializer(kernel_initializer, seed, 0),
                name="conv",
            ),
            keras.layers.MaxPooling2D(pool_size, name="pool"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(
                num_classes,
                activation=output_activation,
                use_bias=use_bias,
                kernel_initializer=_initializer(kernel_initializer, seed, 1),
                name="output",
            ),
        ],
        name=name,
    )
