"""Every rule's TensorFlow `train_step` compiles with XLA and computes the same step.

On a GPU, Keras's `jit_compile="auto"` turns XLA on, so the TensorFlow path
must stay XLA-ready: no ops without an XLA kernel, no Python-side effects
that tracing drops, dropout masks shared by every pass of a step. Each case
trains a few steps with `jit_compile=True` and with `False` from the same
weights, feedback matrices and seeds; every variable and log must agree
within float32 rounding.

TensorFlow's stateless random kernels give other bits under XLA than
without it for the same seed (measured on TF 2.21 CPU: `stateless_fold_in`
of a runtime seed, `stateless_uniform` even with `alg="philox"`; TF only
promises equal draws across its CPU/GPU kernels), so those comparisons swap
the three random primitives (`ops.fold_seed`, `ops.dropout_mask`,
`ops.stateless_normal`) for integer-hash versions that are bit-identical
under both. `test_xla_dropout_masks_are_shared_by_both_passes` runs the real
draws under XLA.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import pepita_keras
from pepita_keras import paper_networks
from pepita_keras import ops as backend_ops

pytestmark = pytest.mark.slow  # two graph builds per case, one of them XLA


def _hash_uniform(shape, seed):
    """Values in [0, 1) from integer ops only: the same with and without XLA."""
    seed = tf.math.floormod(tf.cast(seed, "int64"), 10007)
    index = tf.range(tf.reduce_prod(shape), dtype="int64")
    mixed = tf.math.floormod(index * 7919 + seed[0] * 104729 + seed[1] * 15485863, 1000003)
    return tf.reshape(tf.cast(mixed % 997, "float32") / 997.0, shape)


def _hash_fold_seed(seed, value):
    seed = tf.cast(seed, "int64")
    value = tf.cast(value, "int64")
    return tf.stack([tf.math.floormod(seed[0] * 31 + value * 7 + 1, 2147483647),
                     tf.math.floormod(seed[1] * 17 + value + 3, 2147483647)])


def _hash_dropout_mask(shape, rate, seed, dtype):
    keep = _hash_uniform(shape, seed) >= rate
    return tf.cast(keep, dtype) / tf.cast(1.0 - rate, dtype)


def _hash_normal(shape, stddev, seed, dtype):
    seed = tf.stack([tf.cast(tf.convert_to_tensor(s), "int64") for s in seed])
    return tf.cast(stddev * 3.4641 * (_hash_uniform(shape, seed) - 0.5), dtype)


@pytest.fixture
def xla_invariant_draws(monkeypatch):
    monkeypatch.setattr(backend_ops, "fold_seed", _hash_fold_seed)
    monkeypatch.setattr(backend_ops, "dropout_mask", _hash_dropout_mask)
    monkeypatch.setattr(backend_ops, "stateless_normal", _hash_normal)


RULES = ("PEPITA", "MEMPEPITA", "Backprop", "FeedbackAlignment",
         "DirectFeedbackAlignment", "DRTP")
# PEPITA options whose graphs differ: two optimizer steps per batch,
# normalisation, and feedback mirroring's conditional update of F (tf.cond).
VARIANTS = {
    "time_local_hebbian": {"update_form": "hebbian", "time_local": True},
    "normalized_minus": {"normalize_activations": True, "modulation_sign": -1},
    "mirroring": {"feedback_mirroring": {"learning_rate": 0.1, "noise_std": 0.1,
                                         "batch_size": 8, "period": 2}},
}
CASES = ([(rule, "fc", {}) for rule in RULES] + [(rule, "conv", {}) for rule in RULES]
         + [("PEPITA", "fc", kwargs) for kwargs in VARIANTS.values()])
IDS = ([f"{rule}-fc" for rule in RULES] + [f"{rule}-conv" for rule in RULES]
       + [f"PEPITA-{name}" for name in VARIANTS])


def network(architecture):
    if architecture == "fc":  # dropout on: both steps must draw the same masks
        return paper_networks.paper_fc((8, 8, 1), 4, hidden_units=(16, 12), dropout=0.2,
                                       use_bias=True, seed=0)
    return paper_networks.paper_conv((8, 8, 1), 4, filters=3, kernel_size=3, use_bias=True, seed=0)


def train(rule, architecture, kwargs, jit_compile, x, y):
    keras.utils.set_random_seed(0)  # also Keras's own Dropout seed generators (unused)
    model = getattr(pepita_keras, rule)(network(architecture), seed=0, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  metrics=["accuracy"], jit_compile=jit_compile)
    initial = [np.array(v) for v in model.trainable_variables]
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)  # 6 steps
    assert model.jit_compile is jit_compile
    return model, initial, history.history


@pytest.mark.usefixtures("xla_invariant_draws")
@pytest.mark.parametrize("rule, architecture, kwargs", CASES, ids=IDS)
def test_xla_train_step_matches_default(rule, architecture, kwargs):
    rng = np.random.default_rng(0)
    x = rng.random((24, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 4, 24).astype("int32")
    plain, initial, plain_logs = train(rule, architecture, kwargs, False, x, y)
    xla, xla_initial, xla_logs = train(rule, architecture, kwargs, True, x, y)
    for a, b in zip(initial, xla_initial):
        np.testing.assert_array_equal(a, b)  # same starting point
    assert len(plain.variables) == len(xla.variables)
    for before, after in zip(initial, plain.trainable_variables):
        assert not np.allclose(before, np.array(after))  # the steps did something
    # Every variable: weights, feedback matrices (mirroring moves F), seed state.
    for a, b in zip(plain.variables, xla.variables):
        assert a.name == b.name
        np.testing.assert_allclose(np.array(b), np.array(a), rtol=2e-4, atol=2e-6,
                                   err_msg=a.path)
    for key in plain_logs:
        np.testing.assert_allclose(xla_logs[key], plain_logs[key], rtol=1e-4, err_msg=key)


@pytest.mark.parametrize("rule", ["PEPITA", "MEMPEPITA"])
def test_xla_dropout_masks_are_shared_by_both_passes(rule):
    """With F = 0 the modulated pass repeats the clean one: hidden updates are
    exactly 0 if, and only if, both passes saw the same (real, XLA) masks."""
    rng = np.random.default_rng(1)
    x = rng.random((16, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 4, 16).astype("int32")
    net = paper_networks.paper_fc((8, 8, 1), 4, hidden_units=(16, 12), dropout=0.3,
                                  use_bias=True, seed=0)
    model = getattr(pepita_keras, rule)(net, seed=0)
    model.feedback_matrix.assign(np.zeros(model.feedback_matrix.shape, "float32"))
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), jit_compile=True)
    before = {v.path: np.array(v) for v in net.trainable_variables}
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert model.jit_compile is True
    for variable in net.trainable_variables:
        changed = not np.array_equal(before[variable.path], np.array(variable))
        assert changed == variable.path.startswith("paper_fc/output"), variable.path
