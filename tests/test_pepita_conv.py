"""PEPITA's `conv_update="official"` against the official convolutional script.

Expectations come from tests/reference/pepita_numpy.py, which restates the
official script's loops (`compute_delta_w_conv`: for every output position
the batch mean of (h − h_mod) ⊗ input window, summed and divided by the
number of positions; applied as v ← 0.9 v + η ΔW / B, w ← w + v), never from
what pepita_keras returns.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import pepita_keras
from tests.reference import pepita_numpy as ref

RTOL = 1e-6


def _net(channels=1, filters=4, use_bias=False, seed=1):
    # 8×8 input, 5×5 kernel: 4×4 = 16 output positions, pooled to 2×2.
    return pepita_keras.paper_networks.paper_conv(
        input_shape=(8, 8, channels), num_classes=3, filters=filters,
        kernel_size=5, use_bias=use_bias, seed=seed,
    )


def _batch(rng, batch, channels=1, classes=3):
    x = rng.uniform(0, 1, size=(batch, 8, 8, channels)).astype("float32")
    y = rng.integers(0, classes, size=batch)
    return x, y, np.eye(classes)[y]


def _weights(network):
    return [v.numpy().astype("float64") for v in network.trainable_variables]


def _official_model(network, rule=pepita_keras.PEPITA, **kwargs):
    kwargs = dict(feedback_scale=2.0, last_layer_error="clean", seed=2, **kwargs)
    return rule(network, conv_update="official", **kwargs)


@pytest.mark.parametrize("rule", [pepita_keras.PEPITA, pepita_keras.MEMPEPITA])
@pytest.mark.parametrize("channels", [1, 2])
def test_official_conv_updates_match_the_official_script(float64, rng, rule, channels):
    network = _net(channels)
    model = _official_model(network, rule)
    x, y, onehot = _batch(rng, 5, channels)
    deltas = ref.official_conv_net_delta_ws(
        x.astype("float64"), onehot, *_weights(network),
        model.feedback_matrix.numpy().astype("float64"),
    )
    # The optimizer subtracts G; the script adds η ΔW / B: G = −ΔW / B.
    expected = [-d / 5 for d in deltas]
    updates = model.compute_updates(x, y)
    assert len(updates) == len(expected) == 2
    for got, want in zip(updates, expected):
        assert np.abs(want).max() > 0
        np.testing.assert_allclose(got.numpy(), want, rtol=RTOL, atol=1e-15)


def test_official_conv_training_matches_the_official_momentum_loop(float64, rng):
    network = _net()
    model = _official_model(network)
    eta, batch_size, steps = 0.5, 6, 4
    model.compile(optimizer=keras.optimizers.SGD(eta, momentum=0.9))
    x, y, onehot = _batch(rng, batch_size * steps)
    initial = _weights(network)
    expected = ref.official_conv_net_training(
        x.astype("float64"), onehot, *initial,
        model.feedback_matrix.numpy().astype("float64"), eta, batch_size,
    )
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    for before, after, want in zip(initial, _weights(network), expected):
        # Compare the changes: the conv change is 1/(B·P) = 1/96 of the
        # local rule's, far below the weights' own size.
        change, want_change = after - before, want - before
        assert np.abs(want_change).max() > 1e-8
        np.testing.assert_allclose(
            change, want_change, rtol=RTOL, atol=1e-9 * np.abs(want_change).max()
        )


def test_official_conv_change_opposes_the_local_rule_and_is_1_over_bp_of_it(float64, rng):
    # The finding the option exists for, from the two NumPy statements alone:
    # ΔW_official / B = −(−G_local) / (B·P), i.e. the script moves the kernel
    # against the local rule's step, B·P times less.
    network = _net()
    conv, dense = _weights(network)
    x, _, onehot = _batch(rng, 6)
    feedback = np.random.default_rng(3).uniform(-0.5, 0.5, (64, 3))
    official = ref.official_conv_net_delta_ws(x.astype("float64"), onehot, conv, dense, feedback)
    local = ref.pepita_conv_updates(
        x.astype("float64"), onehot, conv, dense, feedback, last_layer_error="clean"
    )
    np.testing.assert_allclose(official[0] / 6, local[0] / (6 * 16), rtol=1e-10)
    # The dense layer: the script's −e^T pool(h_mod) is the package's
    # clean-error update (G = pool(h_mod)^T e / B) with its sign convention.
    np.testing.assert_allclose(-official[1] / 6, local[1], rtol=1e-10)


def test_dense_layer_after_conv_uses_clean_error_and_pooled_modulated_input(float64, rng):
    network = _net()
    model = _official_model(network)
    x, y, onehot = _batch(rng, 8)
    conv, dense = _weights(network)
    feedback = model.feedback_matrix.numpy().astype("float64")
    x = x.astype("float64")
    conv_clean = ref.relu(ref.conv2d_valid(x, conv))
    pooled = ref.max_pool_2x2(conv_clean).reshape(8, -1)
    error = ref.softmax(pooled @ dense) - onehot
    x_mod = x + (error @ feedback.T).reshape(x.shape)
    pooled_mod = ref.max_pool_2x2(ref.relu(ref.conv2d_valid(x_mod, conv))).reshape(8, -1)
    error_mod = ref.softmax(pooled_mod @ dense) - onehot
    want = pooled_mod.T @ error / 8  # −(−e^T pool(h_mod))^T / B
    got = model.compute_updates(x, y)[1].numpy()
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-15)
    # The test tells the alternatives apart: modulated error, clean input.
    for wrong in (pooled_mod.T @ error_mod / 8, pooled.T @ error / 8):
        assert np.abs(wrong - want).max() > 1e3 * RTOL * np.abs(want).max()


def test_official_conv_with_biases_and_sample_weights(float64, rng):
    network = _net(use_bias=True)
    model = _official_model(network)
    x, y, onehot = _batch(rng, 6)
    weight = np.array([1.0, 0.0, 2.0, 0.5, 1.0, 3.0])
    conv, conv_bias, dense, dense_bias = _weights(network)
    deltas = ref.official_conv_net_delta_ws(
        x.astype("float64"), onehot, conv, dense,
        model.feedback_matrix.numpy().astype("float64"),
        conv_bias=conv_bias, dense_bias=dense_bias, sample_weight=weight,
    )
    updates = model.compute_updates(x, y, sample_weight=weight)
    assert len(updates) == 4
    for got, want in zip(updates, deltas):
        np.testing.assert_allclose(got.numpy(), -want / 6, rtol=RTOL, atol=1e-15)


def test_official_factor_also_scales_the_hebbian_conv_update(float64, rng):
    network = _net()
    model = _official_model(network, update_form="hebbian")
    x, y, onehot = _batch(rng, 5)
    conv, dense = _weights(network)
    x = x.astype("float64")
    feedback = model.feedback_matrix.numpy().astype("float64")
    h = ref.relu(ref.conv2d_valid(x, conv))
    error = ref.softmax(ref.max_pool_2x2(h).reshape(5, -1) @ dense) - onehot
    x_mod = x + (error @ feedback.T).reshape(x.shape)
    h_mod = ref.relu(ref.conv2d_valid(x_mod, conv))
    local = (
        ref.conv2d_kernel_update(x, h, conv.shape)
        - ref.conv2d_kernel_update(x_mod, h_mod, conv.shape)
    ) / 5
    got = model.compute_updates(x, y)[0].numpy()
    np.testing.assert_allclose(got, -local / (5 * 16), rtol=RTOL, atol=1e-15)


def test_official_conv_on_two_replicas_equals_one_replica(rng, mirrored_strategy):
    x, y, _ = _batch(rng, 32)

    def trained(strategy):
        with strategy.scope():
            model = _official_model(_net(seed=4))
            model.compile(optimizer=keras.optimizers.SGD(5.0, momentum=0.9))
        before = [v.numpy() for v in model.trainable_variables]
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(16), epochs=1, verbose=0)
        return [v.numpy() - b for v, b in zip(model.trainable_variables, before)]

    single = trained(tf.distribute.OneDeviceStrategy("/cpu:0"))
    mirrored = trained(mirrored_strategy)
    for a, b in zip(single, mirrored):
        assert np.abs(a).max() > 0
        # A per-replica batch (16 instead of 32) would double the conv change.
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * np.abs(a).max())


def test_conv_update_is_validated_and_in_the_config():
    # Saving and resuming: tests/test_rules.py (case pepita_official_conv).
    with pytest.raises(ValueError, match=r"conv_update must be one of \('local', 'official'\).*'paper'"):
        pepita_keras.PEPITA(_net(), conv_update="paper")
    assert pepita_keras.PEPITA(_net()).conv_update == "local"
    model = _official_model(_net())
    assert model.get_config()["conv_update"] == "official"
