"""Backward-pass pieces shared by the error-propagating rules (FA, DFA, DRTP).

Feedback Alignment, Direct Feedback Alignment and DRTP all build, for each
hidden block, a signal `delta_l` at the block's pre-activation `a_l`
(`h_l = σ_l(a_l)`, then dropout) and hand it to `core.local_updates`, which
turns it into `G_l = h_{l-1}^T delta_l / B`. What they share, and what lives
here once:

- `check_error_network`: their output error `e = y − onehot(t)` is the
  cross-entropy gradient w.r.t. the output pre-activation only for a
  softmax (categorical) or sigmoid (binary) output, and every hidden
  activation needs a derivative.
- `block_derivative`: the diagonal Jacobian `∂h_l/∂a_l` of a block's
  element-wise chain (its activation, any Activation/ReLU layers and the
  step's shared dropout masks). A signal that arrives at `h_l` times this
  factor is the signal at `a_l`; a dropped unit therefore gets no update, and
  a kept one is scaled by `1/(1−rate)` exactly as its activation was.
- `carry_backward`: moves a signal from a block's input back to the previous
  block's output through the parameter-free layers between them (Flatten:
  reshape; Dropout: the shared mask; pooling: the local vector-Jacobian
  product of the pooling op alone, which for MaxPooling2D routes the signal
  to the arg-max positions). Nothing is ever differentiated through the
  network.

The fixed random feedback matrices themselves are drawn in
`pepita_keras.feedback` (`add_feedback_matrix`, `feedback_seed`).

Supported activations: linear, relu, tanh, sigmoid (and `keras.layers.ReLU`
with its `max_value`/`negative_slope`/`threshold`), plus softmax as the
output activation. Anything else raises a `ValueError` when the rule is
built.
"""

import keras
from keras import ops

from pepita_keras import ops as backend_ops
from pepita_keras.blocks import output_activation_name


def _relu_derivative(z):
    return ops.cast(z > 0, z.dtype)


def _tanh_derivative(z):
    return 1.0 - ops.square(ops.tanh(z))


def _sigmoid_derivative(z):
    s = ops.sigmoid(z)
    return s * (1.0 - s)


# name -> (function, derivative), both of the pre-activation z.
ACTIVATION_DERIVATIVES = {
    "linear": (lambda z: z, ops.ones_like),
    "relu": (ops.relu, _relu_derivative),
    "tanh": (ops.tanh, _tanh_derivative),
    "sigmoid": (ops.sigmoid, _sigmoid_derivative),
}


def _activation_name(activation):
    if activation is None:
        return "linear"
    return getattr(activation, "__name__", repr(activation))


def _relu_layer_functions(layer):
    """`keras.layers.ReLU` with its threshold / slope / cap parameters."""
    threshold = float(layer.threshold)
    slope = float(layer.negative_slope)
    cap = None if layer.max_value is None else float(layer.max_value)

    def derivative(z):
        below = ops.cast(z < threshold, z.dtype)
        above = 1.0 - below
        if cap is not None:
            above = above * ops.cast(z < cap, z.dtype)
        return above + slope * below

    return layer, derivative


def _elementwise_steps(block):
    """A block's element-wise chain as `(kind, name, layer or activation)`."""
    steps = []
    name = _activation_name(block.layer.activation)
    steps.append(("activation", name, block.layer.activation))
    for layer in block.post:
        if isinstance(layer, keras.layers.Dropout):
            steps.append(("dropout", layer.name, layer))
        elif isinstance(layer, keras.layers.ReLU):
            steps.append(("relu_layer", layer.name, layer))
        else:
            steps.append(("activation", _activation_name(layer.activation), layer))
    return steps


def check_hidden_activations(blocks, network_name, rule_name):
    """Raises a ValueError if a hidden block's activation has no derivative.

    Args:
        blocks: the network's `Block`s; all but the last are checked.
        network_name: for the error message.
        rule_name: for the error message.
    """
    for block in blocks[:-1]:
        for kind, name, _ in _elementwise_steps(block):
            if kind == "activation" and name not in ACTIVATION_DERIVATIVES:
                raise ValueError(
                    f"{rule_name} needs the derivative of every hidden "
                    f"activation; block {block.layer.name!r} of network "
                    f"{network_name!r} uses activation {name!r}. Supported: "
                    f"{', '.join(sorted(ACTIVATION_DERIVATIVES))} "
                    "(and keras.layers.ReLU)."
                )


# Output activations whose cross-entropy gradient w.r.t. the pre-activation
# is e = y − onehot(t), with the loss that makes it so.
OUTPUT_ERROR_LOSSES = {
    "softmax": "a softmax output (categorical cross-entropy)",
    "sigmoid": "a sigmoid output (binary cross-entropy)",
}


def check_error_network(blocks, network_name, rule_name, output_activations=("softmax",)):
    """Checks a network for a rule that propagates the output error `e`.

    Args:
        blocks: the network's `Block`s.
        network_name: for the error message.
        rule_name: for the error message.
        output_activations: the output activations the rule accepts, keys
            of `OUTPUT_ERROR_LOSSES` (FA: softmax; DFA, DRTP: softmax or
            sigmoid).

    Returns:
        The name of the network's output activation.

    Raises:
        ValueError: if the output activation is not one of
            `output_activations` (then `e` is not the cross-entropy
            gradient), or a hidden activation has no derivative here.
    """
    activation = output_activation_name(blocks[-1])
    if activation not in output_activations:
        losses = " or ".join(OUTPUT_ERROR_LOSSES[name] for name in output_activations)
        names = " or ".join(repr(name) for name in output_activations)
        raise ValueError(
            f"{rule_name}'s output error e = y − onehot(t) is the "
            f"cross-entropy gradient of {losses}; network {network_name!r} "
            f"ends with activation {activation!r}. Use activation={names} on "
            "the last layer."
        )
    check_hidden_activations(blocks, network_name, rule_name)
    return activation


def pre_activation(layer, layer_input):
    """`a = W * h_in + b` of a Dense/Conv2D layer, without its activation.

    Computed in the layer's compute dtype, as in its forward call, so the
    derivative sees the same pre-activation signs.
    """
    dtype = layer.compute_dtype
    layer_input = ops.cast(layer_input, dtype)
    kernel = ops.cast(layer.kernel, dtype)
    if isinstance(layer, keras.layers.Dense):
        outputs = ops.matmul(layer_input, kernel)
    else:
        outputs = layer.convolution_op(layer_input, kernel)
    if layer.use_bias:
        outputs = outputs + ops.cast(layer.bias, dtype)
    return outputs


def _dropout_mask(layer, masks):
    if masks is None or layer.rate == 0:
        return None
    return masks.masks.get(layer.name)


def _is_plain_relu(layer):
    return (
        float(layer.threshold) == 0.0
        and float(layer.negative_slope) == 0.0
        and layer.max_value is None
    )


def _piecewise_linear_chain(steps):
    """True when the chain is only relu/linear activations and dropout."""
    for kind, name, obj in steps:
        if kind == "activation" and name not in ("relu", "linear"):
            return False
        if kind == "relu_layer" and not _is_plain_relu(obj):
            return False
    return True


def _derivative_from_output(steps, block_output, masks):
    # h = relu(a)·m (or a·m): ∂h/∂a = m where h > 0, else 0 (or m if linear).
    factor = None
    for kind, _, obj in steps:
        if kind == "dropout":
            mask = _dropout_mask(obj, masks)
            if mask is not None:
                mask = ops.cast(mask, "float32")
                factor = mask if factor is None else factor * mask
    if any(kind == "relu_layer" or name == "relu" for kind, name, _ in steps):
        positive = ops.cast(ops.cast(block_output, "float32") > 0, "float32")
        factor = positive if factor is None else factor * positive
    if factor is None:
        return ops.ones_like(ops.cast(block_output, "float32"))
    return factor


def block_derivative(block, layer_input, masks=None, block_output=None):
    """The diagonal Jacobian `∂h_l/∂a_l` of a block's element-wise chain.

    The product of the derivatives of every activation in the block with the
    dropout masks that `forward` applied in this step. For relu/linear
    chains it is read off the block's output (`relu(a)·m > 0` exactly where
    `a > 0` and the unit was kept); otherwise the pre-activation is
    recomputed from the block's input (one extra matmul/convolution; no
    tape).

    Args:
        block: a hidden `Block`.
        layer_input: the input its layer received in the forward pass.
        masks: the step's `DropoutMasks` (already drawn by `forward`), or
            None.
        block_output: optional, the block's output `h_l` from the same
            forward pass (enables the relu/linear shortcut).

    Returns:
        A float32 tensor shaped like the block's output.
    """
    steps = _elementwise_steps(block)
    if block_output is not None and _piecewise_linear_chain(steps):
        return _derivative_from_output(steps, block_output, masks)
    z = ops.cast(pre_activation(block.layer, layer_input), "float32")
    factor = None
    for index, (kind, name, obj) in enumerate(steps):
        last = index == len(steps) - 1
        if kind == "dropout":
            mask = _dropout_mask(obj, masks)
            if mask is None:
                continue
            mask = ops.cast(mask, "float32")
            derivative, z = mask, z * mask
        elif kind == "relu_layer":
            function, derivative_fn = _relu_layer_functions(obj)
            derivative = derivative_fn(z)
            z = None if last else ops.cast(function(z), "float32")
        else:
            function, derivative_fn = ACTIVATION_DERIVATIVES[name]
            derivative = derivative_fn(z)
            z = None if last else function(z)
        factor = derivative if factor is None else factor * derivative
    if factor is None:
        return ops.ones_like(z)
    return factor


def carry_backward(layers, layer_output, signal, masks=None):
    """Moves `signal` back through the parameter-free layers `layers`.

    Args:
        layers: the `pre` layers of a block (pooling, Flatten, Dropout), in
            call order.
        layer_output: what entered `layers[0]` in the forward pass (the
            previous block's output `h_{l-1}`).
        signal: a tensor shaped like the output of `layers[-1]`.
        masks: the step's `DropoutMasks`, or None.

    Returns:
        The signal shaped like `layer_output`.
    """
    # Recompute the intermediate values the pooling layers need.
    values = [layer_output]
    for layer in layers[:-1]:
        values.append(_apply(layer, values[-1], masks))
    for layer, value in zip(reversed(layers), reversed(values)):
        if isinstance(layer, keras.layers.Flatten):
            signal = ops.reshape(signal, ops.shape(value))
        elif isinstance(layer, keras.layers.Dropout):
            mask = _dropout_mask(layer, masks)
            if mask is not None:
                signal = signal * ops.cast(mask, signal.dtype)
        else:
            signal = backend_ops.local_vjp(
                layer, ops.cast(value, signal.dtype), signal
            )
    return signal


def _apply(layer, value, masks):
    if isinstance(layer, keras.layers.Dropout):
        mask = _dropout_mask(layer, masks)
        return value if mask is None else value * mask
    return layer(value)


def feedback_through_layer(layer, feedback, signal, layer_input):
    """`signal · Bᵀ`: a signal at a layer's output sent to its input by B.

    `feedback` has the layer kernel's shape; with `feedback = layer.kernel`
    this is exactly the backpropagated gradient.

    Args:
        layer: the Dense or Conv2D layer.
        feedback: kernel-shaped fixed matrix (Dense: (in, out); Conv2D:
            (kh, kw, in, out), used by the transposed convolution).
        signal: shaped like the layer's output.
        layer_input: the layer's input in this step (for its shape).

    Returns:
        A float32 tensor shaped like the layer's input.
    """
    signal = ops.cast(signal, "float32")
    feedback = ops.cast(feedback, "float32")
    if isinstance(layer, keras.layers.Dense):
        return ops.matmul(signal, ops.transpose(feedback))
    return backend_ops.conv2d_input_correlation(layer, feedback, layer_input, signal)
