"""The few backend-specific operations the learning rules need.

Everything else in the package is written with `keras.ops`. The pieces that
`keras.ops` lacks (stateless dropout masks, replica information, the
convolution kernel correlation, tape-free local VJPs, ordering hints) live
in `pepita_keras.tf_ops` (TensorFlow) and `pepita_keras.jax_ops` (JAX), with
the same names, signatures and maths; this module re-exports the set that
matches `keras.backend.backend()`. Only the TensorFlow set imports
TensorFlow, so `KERAS_BACKEND=jax` runs without it installed.

Functions: `replica_info`, `fold_seed`, `dropout_mask`, `stateless_normal`,
`conv2d_kernel_correlation`, `conv2d_input_correlation`, `local_vjp`,
`value_and_gradients`, `check_finite`, `assert_labels_in_range`, `after`,
`run_if`.
"""

import keras

BACKEND = keras.backend.backend()

if BACKEND == "jax":
    from pepita_keras.jax_ops import *  # noqa: F401,F403
elif BACKEND == "tensorflow":
    from pepita_keras.tf_ops import *  # noqa: F401,F403
else:
    raise ImportError(
        f"pepita_keras runs on the Keras backends 'tensorflow' and 'jax'; "
        f"KERAS_BACKEND is {BACKEND!r}. Set KERAS_BACKEND=tensorflow or jax "
        f"before importing keras."
    )
