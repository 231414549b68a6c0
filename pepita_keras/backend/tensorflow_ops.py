"""TensorFlow implementations of the backend-specific operations.

Imported by `pepita_keras.ops` under `KERAS_BACKEND=tensorflow` only, so
the JAX path never imports TensorFlow. `pepita_keras.backend.jax_ops` has the same
names, signatures and maths.
"""

import tensorflow as tf  # noqa: E402


def replica_info():
    """Returns `(num_replicas_in_sync, replica_id)` for the current context.

    Outside any `tf.distribute` strategy this is `(1, 0)`.
    """
    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context: behave like one replica
        return tf.distribute.get_strategy().num_replicas_in_sync, 0
    return context.num_replicas_in_sync, context.replica_id_in_sync_group


def fold_seed(seed, value):
    """Derives an independent stateless seed from `seed` and an integer."""
    seed = tf.cast(seed, "int64")
    return tf.random.experimental.stateless_fold_in(seed, tf.cast(value, "int64"))


def dropout_mask(shape, rate, seed, dtype):
    """Inverted-dropout mask: 0 with probability `rate`, else 1/(1-rate).

    Args:
        shape: shape of the activation to mask.
        rate: drop probability in [0, 1).
        seed: stateless seed, an integer tensor of shape (2,).
        dtype: dtype of the mask.

    Returns:
        A tensor of `shape`, the same draw for the same seed.
    """
    keep = tf.random.stateless_uniform(shape, seed=seed) >= rate
    return tf.cast(keep, dtype) / tf.cast(1.0 - rate, dtype)


def conv2d_kernel_correlation(layer, inputs, delta):
    """Correlates input patches with an output-shaped signal, summed over batch.

    For a `Conv2D` layer this is sum_b sum_(i,j) patch_b(i,j) ⊗ delta_b(i,j),
    the kernel-shaped (kh, kw, in, out) analogue of `inputs^T @ delta` for a
    dense layer. It uses only the layer's own input and the given signal:
    nothing is differentiated through the network.

    Args:
        layer: a `keras.layers.Conv2D` (channels_last, groups=1).
        inputs: the layer's input, shape (batch, H, W, in).
        delta: a signal shaped like the layer's output (batch, H', W', out).

    Returns:
        A tensor with the layer's kernel shape.
    """
    # As the dilated kernel with zeros between its taps (see
    # conv2d_input_correlation): correlate at dilation 1, keep every rate-th tap.
    kh, kw, channels_in, channels_out = layer.kernel.shape
    rate_h, rate_w = layer.dilation_rate
    spread = tf.compat.v1.nn.conv2d_backprop_filter(
        inputs,
        filter_sizes=[(kh - 1) * rate_h + 1, (kw - 1) * rate_w + 1, channels_in, channels_out],
        out_backprop=delta,
        strides=[1, *layer.strides, 1],
        padding=layer.padding.upper(),
        data_format="NHWC",
    )
    return spread[::rate_h, ::rate_w]


def check_finite(x, message):
    """Returns `x`, raising InvalidArgumentError(`message`) on NaN/Inf."""
    return tf.debugging.check_numerics(x, message)


def assert_labels_in_range(labels, num_classes):
    """Raises InvalidArgumentError when an integer label is outside [0, C)."""
    tf.debugging.assert_non_negative(
        labels, message=f"Labels must lie in [0, {num_classes}); found a negative label."
    )
    tf.debugging.assert_less(
        labels,
        tf.cast(num_classes, labels.dtype),
        message=f"Labels must lie in [0, {num_classes}); found a label >= {num_classes}.",
    )


def conv2d_input_correlation(layer, kernel, layer_input, delta):
    """Sends an output-shaped signal to a Conv2D layer's input through `kernel`.

    The transposed convolution (`conv2d_backprop_input`) of `delta` with a
    kernel-shaped tensor: with `kernel = layer.kernel` it is the gradient
    w.r.t. the layer input; Feedback Alignment passes its fixed random `B`.

    Args:
        layer: the `keras.layers.Conv2D` (for strides, padding, dilation).
        kernel: a tensor of the layer kernel's shape (kh, kw, in, out).
        layer_input: the layer's input in this step (only its shape is used).
        delta: a signal shaped like the layer's output.

    Returns:
        A tensor shaped like `layer_input`.
    """
    # Some CPU builds of TensorFlow (e.g. without oneDNN on AMD) refuse
    # dilation > 1 in Conv2DBackpropInput; a dilated kernel is the same
    # convolution as the kernel with zeros between its taps, dilation 1.
    return tf.compat.v1.nn.conv2d_backprop_input(
        tf.shape(layer_input),
        filter=_dilated_kernel(kernel, layer.dilation_rate),
        out_backprop=delta,
        strides=[1, *layer.strides, 1],
        padding=layer.padding.upper(),
        data_format="NHWC",
    )


def _dilated_kernel(kernel, dilation_rate):
    """`kernel` (kh, kw, in, out) with `rate − 1` zeros between taps along each axis."""
    rate_h, rate_w = dilation_rate
    if (rate_h, rate_w) == (1, 1):
        return kernel
    kh, kw, channels_in, channels_out = kernel.shape
    spread = tf.reshape(kernel, [kh, 1, kw, 1, channels_in, channels_out])
    spread = tf.pad(spread, [[0, 0], [0, rate_h - 1], [0, 0], [0, rate_w - 1], [0, 0], [0, 0]])
    spread = tf.reshape(spread, [kh * rate_h, kw * rate_w, channels_in, channels_out])
    return spread[: (kh - 1) * rate_h + 1, : (kw - 1) * rate_w + 1]


def local_vjp(layer, inputs, cotangent):
    """Vector-Jacobian product of one parameter-free layer (e.g. pooling).

    Only `layer(inputs)` is recorded, never the network: for MaxPooling2D
    this routes `cotangent` to the arg-max position of each window, for
    AveragePooling2D it spreads it evenly.
    """
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs)
    return tape.gradient(outputs, inputs, output_gradients=cotangent)


def value_and_gradients(fn, variables):
    """Runs `fn() -> (value, aux)` under a tape; returns `(value, aux, grads)`.

    Only `Backprop` differentiates (its loss, through its own forward pass).
    """
    with tf.GradientTape() as tape:
        value, aux = fn()
    return value, aux, tape.gradient(value, variables)


def after(tensors, dependencies):
    """Returns `tensors` unchanged, but computed only after `dependencies`.

    Inside a `tf.function` the executor may run independent ops in any
    order, and Grappler merges identical subgraphs. MEMPEPITA's recomputed
    clean pass is identical to its first pass and independent of each
    layer's update: without this ordering it could be merged with the first
    pass or scheduled ahead, keeping every activation alive again. Eager
    execution already runs in program order (no-op there).
    """
    dependencies = [d for d in tf.nest.flatten(dependencies) if d is not None]
    with tf.control_dependencies(dependencies):
        return tf.nest.map_structure(tf.identity, tensors)


def stateless_uniform(shape, seed, dtype):
    """`U[0, 1)` draw, the same for the same stateless seed (an integer tensor of shape (2,))."""
    return tf.random.stateless_uniform(shape, seed=seed, dtype=dtype)


def stateless_normal(shape, stddev, seed, dtype):
    """`N(0, stddev²)` draw, the same for the same stateless seed.

    Args:
        shape: shape of the draw.
        stddev: standard deviation.
        seed: a pair of integers (scalars or variables) forming the seed.
        dtype: dtype of the draw.
    """
    # tf.stack, not keras.ops.stack: the latter fails on variable reads
    # inside tf.cond branches (as in scheduled feedback mirroring).
    seed = tf.stack([tf.cast(tf.convert_to_tensor(s), "int64") for s in seed])
    return tf.random.stateless_normal(shape, seed=seed, stddev=stddev, dtype=dtype)


def run_if(condition, fn):
    """Runs `fn()` for its side effects (variable updates) where `condition`."""

    def run():
        fn()
        return tf.constant(True)

    tf.cond(condition, run, lambda: tf.constant(False))
