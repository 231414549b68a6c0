"""JAX implementations of the backend-specific operations.

With `KERAS_BACKEND=jax`, `pepita_keras.ops` exports these instead of the
`pepita_keras.backend.tensorflow_ops` ones (same names, same signatures, same maths);
nothing here imports TensorFlow. Differences that follow from JAX itself:

- randomness (dropout masks, normal draws) comes from `jax.random` keyed by
  the same (2,) stateless seeds: the same seed gives the same draw on JAX,
  but not the draw TensorFlow gives;
- value checks (`check_finite`, `assert_labels_in_range`) can only raise on
  concrete arrays (eager calls such as `compute_updates`); inside a jitted
  `fit` step they are no-ops, as JAX cannot raise from compiled code;
- there is no replica context: Keras's JAX trainer shards the global batch
  under `jit`, so the step already sees the whole batch (`(1, 0)`).
"""

import jax
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from keras.src.backend.common.stateless_scope import (  # noqa: E402
    StatelessScope,
    get_stateless_scope,
    in_stateless_scope,
)


def replica_info():
    """`(num_replicas_in_sync, replica_id)`: always `(1, 0)` under JAX."""
    return 1, 0


def _key(seed):
    """A threefry key from a (2,) integer seed (any integer dtype)."""
    seed = jnp.asarray(seed).astype(jnp.uint32)
    return jax.random.wrap_key_data(seed, impl="threefry2x32")


def fold_seed(seed, value):
    """Derives an independent stateless seed (uint32, shape (2,))."""
    return jax.random.key_data(jax.random.fold_in(_key(seed), value))


def dropout_mask(shape, rate, seed, dtype):
    """Inverted-dropout mask: 0 with probability `rate`, else 1/(1-rate)."""
    keep = jax.random.uniform(_key(seed), tuple(shape)) >= rate
    return keep.astype(dtype) / jnp.asarray(1.0 - rate, dtype)


def stateless_uniform(shape, seed, dtype):
    """`U[0, 1)` draw, the same for the same stateless seed (2,)."""
    return jax.random.uniform(_key(seed), tuple(shape)).astype(dtype)


def stateless_normal(shape, stddev, seed, dtype):
    """`N(0, stddev²)` draw, the same for the same stateless seed (2,)."""
    return (stddev * jax.random.normal(_key(seed), tuple(shape))).astype(dtype)


def _conv(layer, inputs, kernel):
    return jax.lax.conv_general_dilated(
        inputs,
        kernel,
        window_strides=tuple(layer.strides),
        padding=layer.padding.upper(),
        rhs_dilation=tuple(layer.dilation_rate),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )


def conv2d_kernel_correlation(layer, inputs, delta):
    """Σ_b Σ_(i,j) patch_b(i,j) ⊗ delta_b(i,j), kernel-shaped.

    The transpose of the convolution with respect to its kernel: the VJP of
    this one convolution op at `inputs` (linear in the kernel, so the kernel
    value it is taken at does not matter: zeros).
    """
    zeros = jnp.zeros(tuple(layer.kernel.shape), delta.dtype)
    _, vjp = jax.vjp(lambda kernel: _conv(layer, inputs.astype(delta.dtype), kernel), zeros)
    return vjp(delta)[0]


def conv2d_input_correlation(layer, kernel, layer_input, delta):
    """Transposed convolution of `delta` with `kernel`, shaped like the input."""
    zeros = jnp.zeros(layer_input.shape, delta.dtype)
    _, vjp = jax.vjp(lambda x: _conv(layer, x, kernel.astype(delta.dtype)), zeros)
    return vjp(delta)[0]


def local_vjp(layer, inputs, cotangent):
    """Vector-Jacobian product of one parameter-free layer (e.g. pooling)."""
    _, vjp = jax.vjp(layer, inputs)
    return vjp(cotangent)[0]


def _is_concrete(x):
    return not isinstance(x, jax.core.Tracer)


def check_finite(x, message):
    """Returns `x`; raises ValueError(`message`) on NaN/Inf when not traced."""
    if _is_concrete(x) and not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError(message)
    return x


def assert_labels_in_range(labels, num_classes):
    """Raises ValueError on a label outside [0, C) when not traced."""
    if not _is_concrete(labels):
        return
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels.min() if labels.min() < 0 else labels.max()
        raise ValueError(
            f"Labels must lie in [0, {num_classes}); found label {bad}."
        )


class _RecordingScope(StatelessScope):
    """A StatelessScope that sees its parent's values and lists its updates."""

    def __init__(self, overrides=()):
        super().__init__()
        parent = get_stateless_scope()
        if parent is not None:
            self.state_mapping = dict(parent.state_mapping)
        self.updated = {}
        for variable, value in overrides:
            self.state_mapping[id(variable)] = value

    def add_update(self, update):
        super().add_update(update)
        self.updated[id(update[0])] = update[0]


def value_and_gradients(fn, variables):
    """`(value, aux, grads)` of `fn() -> (value, aux)` w.r.t. `variables`."""
    variables = list(variables)

    def wrapped(values):
        with _RecordingScope(zip(variables, values)):
            return fn()

    values = [jnp.asarray(v.value) for v in variables]
    (value, aux), grads = jax.value_and_grad(wrapped, has_aux=True)(values)
    return value, aux, grads


def after(tensors, dependencies):
    """Returns `tensors`: JAX programs are functional, order is data flow."""
    del dependencies
    return tensors


def run_if(condition, fn):
    """Runs `fn()` for its variable updates where `condition` holds.

    Eagerly this is a Python `if`. Inside a stateless (traced) step, `fn`
    runs in a child scope and each variable it assigns becomes
    `where(condition, new, old)`: the same result as a conditional update.
    """
    if not in_stateless_scope():
        if bool(condition):
            fn()
        return
    parent = get_stateless_scope()
    with _RecordingScope() as scope:
        fn()
    for variable in scope.updated.values():
        old = parent.get_current_value(variable)
        if old is None:
            old = variable.value
        new = scope.get_current_value(variable)
        parent.add_update((variable, jnp.where(condition, new, old)))
