"""The few backend-specific operations the learning rules need.

Everything else in the package is written with `keras.ops`. The pieces that
`keras.ops` lacks (stateless dropout masks, replica information, the
convolution kernel correlation, tape-free local VJPs, ordering hints) live
in `pepita_keras.backend.tensorflow_ops` (TensorFlow) and `pepita_keras.backend.jax_ops` (JAX), with
the same names, signatures and maths; this module re-exports the set that
matches `keras.backend.backend()`. Only the TensorFlow set imports
TensorFlow, so `KERAS_BACKEND=jax` runs without it installed.

The functions are listed once, in `OPERATIONS`; both backend modules define
each of them (tests/test_ops.py checks it).
"""

import importlib

import keras

OPERATIONS = (
    "after",
    "assert_labels_in_range",
    "check_finite",
    "conv2d_input_correlation",
    "conv2d_kernel_correlation",
    "dropout_mask",
    "fold_seed",
    "local_vjp",
    "replica_info",
    "run_if",
    "stateless_normal",
    "stateless_uniform",
    "value_and_gradients",
)
__all__ = list(OPERATIONS)

BACKEND = keras.backend.backend()
_MODULES = {"jax": "pepita_keras.backend.jax_ops",
            "tensorflow": "pepita_keras.backend.tensorflow_ops"}

if BACKEND not in _MODULES:
    raise ImportError(
        f"pepita_keras runs on the Keras backends 'tensorflow' and 'jax'; "
        f"KERAS_BACKEND is {BACKEND!r}. Set KERAS_BACKEND=tensorflow or jax "
        f"before importing keras."
    )

_implementation = importlib.import_module(_MODULES[BACKEND])
globals().update({name: getattr(_implementation, name) for name in OPERATIONS})
