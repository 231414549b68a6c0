"""PEPITA's updates and training step against the paper's equations.

Every expectation comes from tests/reference/pepita_numpy.py (an independent
NumPy statement of the rule) or from the official update formula, never from
what pepita_keras returns.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import pepita_keras
from tests.harness import mlp
from tests.reference import pepita_numpy as ref

RTOL = 1e-5


def _kernels_and_biases(network, use_bias):
    dense = [l for l in network.layers if isinstance(l, keras.layers.Dense)]
    kernels = [l.kernel.numpy().astype("float64") for l in dense]
    biases = [l.bias.numpy().astype("float64") for l in dense] if use_bias else None
    return kernels, biases


def _batch(rng, batch, features, classes):
    x = rng.uniform(0, 1, size=(batch,) + tuple(features)).astype("float32")
    y = rng.integers(0, classes, size=batch)
    return x, y, np.eye(classes)[y]


@pytest.mark.parametrize("use_bias", [False, True])
@pytest.mark.parametrize("last_layer_error", ["modulated", "clean"])
def test_mlp_updates_match_numpy_reference(float64, rng, use_bias, last_layer_error):
    network = mlp([12, 9, 7, 4], use_bias)
    model = pepita_keras.PEPITA(
        network, feedback_scale=0.5, last_layer_error=last_layer_error, seed=3
    )
    x, y, onehot = _batch(rng, 16, (12,), 4)
    kernels, biases = _kernels_and_biases(network, use_bias)
    expected = ref.pepita_mlp_updates(
        x.astype("float64"),
        onehot,
        kernels,
        biases,
        model.feedback_matrix.numpy().astype("float64"),
        last_layer_error,
    )
    updates = model.compute_updates(x, y)
    assert len(updates) == len(model.trainable_variables) == len(expected)
    for got, want, variable in zip(updates, expected, model.trainable_variables):
        assert tuple(got.shape) == tuple(variable.shape)
        np.testing.assert_allclose(got.numpy(), want, rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("last_layer_error", ["modulated", "clean"])
def test_conv_updates_match_numpy_reference(float64, rng, last_layer_error):
    network = pepita_keras.paper_networks.paper_conv(
        input_shape=(8, 8, 2), num_classes=3, filters=4, kernel_size=3, seed=1
    )
    model = pepita_keras.PEPITA(
        network, feedback_scale=0.5, last_layer_error=last_layer_error, seed=2
    )
    x, y, onehot = _batch(rng, 5, (8, 8, 2), 3)
    conv, dense = network.get_layer("conv"), network.get_layer("output")
    expected = ref.pepita_conv_updates(
        x.astype("float64"),
        onehot,
        conv.kernel.numpy().astype("float64"),
        dense.kernel.numpy().astype("float64"),
        model.feedback_matrix.numpy().astype("float64"),
        last_layer_error,
    )
    updates = model.compute_updates(x, y)
    for got, want in zip(updates, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=RTOL, atol=1e-12)


def test_integer_and_one_hot_labels_give_the_same_updates(rng):
    model = pepita_keras.PEPITA(mlp([6, 5, 3], True), seed=0)
    x, y, onehot = _batch(rng, 8, (6,), 3)
    for a, b, c in zip(
        model.compute_updates(x, y),
        model.compute_updates(x, onehot.astype("float32")),
        model.compute_updates(x, y[:, None]),
    ):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(a.numpy(), c.numpy())


def test_dropout_mask_is_shared_by_both_passes_and_enters_updates(float64, rng):
    network = mlp([10, 8, 3], use_bias=False, dropout=0.5)
    model = pepita_keras.PEPITA(network, feedback_scale=0.5, seed=4)
    x, y, onehot = _batch(rng, 6, (10,), 3)
    updates = model.compute_updates(x, y, training=True)
    (mask,) = model.last_dropout_masks.values()
    mask = mask.numpy()
    assert set(np.unique(mask)) <= {0.0, 2.0} and 0 < (mask == 0).mean() < 1
    kernels, _ = _kernels_and_biases(network, False)
    feedback = model.feedback_matrix.numpy().astype("float64")
    expected = ref.pepita_mlp_updates(
        x.astype("float64"), onehot, kernels, None, feedback, masks={0: mask}
    )
    for got, want in zip(updates, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=RTOL, atol=1e-12)
    # Dropped hidden units get no update in either layer.
    dropped_units = np.all(mask == 0, axis=0)
    if dropped_units.any():
        assert np.all(updates[1].numpy()[dropped_units] == 0)
    # A fresh mask is drawn for the next step.
    model.compute_updates(x, y, training=True)
    (next_mask,) = model.last_dropout_masks.values()
    assert not np.array_equal(mask, next_mask.numpy())
    # No dropout outside training: the update equals the mask-free reference.
    for got, want in zip(
        model.compute_updates(x, y),
        ref.pepita_mlp_updates(x.astype("float64"), onehot, kernels, None, feedback),
    ):
        np.testing.assert_allclose(got.numpy(), want, rtol=RTOL, atol=1e-12)


def test_dropout_masks_object_reuses_mask_across_passes():
    from pepita_keras.core import DropoutMasks

    layer = keras.layers.Dropout(0.5)
    masks = DropoutMasks(tf.constant([1, 2], "int64"))
    first = masks(layer, 0, tf.ones((4, 32)))
    second = masks(layer, 0, 3.0 * tf.ones((4, 32)))
    np.testing.assert_array_equal(first.numpy() == 0, second.numpy() == 0)
    np.testing.assert_allclose(second.numpy(), 3.0 * first.numpy())


def test_fit_with_sgd_momentum_equals_official_update(rng):
    """Official loop: v ← 0.9 v + η ΔW/B, w ← w + v, with ΔW = −B·G."""
    network = mlp([12, 9, 4], use_bias=False)
    model = pepita_keras.PEPITA(network, seed=5)
    lr, momentum = 0.1, 0.9
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=momentum))
    x, y, onehot = _batch(rng, 24, (12,), 4)
    weights, _ = _kernels_and_biases(network, False)
    feedback = model.feedback_matrix.numpy().astype("float64")
    velocity = [np.zeros_like(w) for w in weights]
    for start in range(0, 24, 8):  # three steps: momentum matters
        batch = slice(start, start + 8)
        grads = ref.pepita_mlp_updates(
            x[batch].astype("float64"), onehot[batch], weights, None, feedback
        )
        delta_w = [-8 * g for g in grads]
        velocity = [momentum * v + lr * d / 8 for v, d in zip(velocity, delta_w)]
        weights = [w + v for w, v in zip(weights, velocity)]
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for variable, want in zip(model.trainable_variables, weights):
        np.testing.assert_allclose(variable.numpy(), want, rtol=1e-4, atol=1e-6)


def _train(seed, x, y, steps=3):
    keras.utils.set_random_seed(123)  # unrelated global state must not matter
    model = pepita_keras.PEPITA(
        pepita_keras.paper_networks.paper_fc((6, 6, 1), 4, hidden_units=(16,), seed=7),
        seed=seed,
    )
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    model.fit(x, y, batch_size=len(x) // steps, epochs=1, shuffle=False, verbose=0)
    return model


def test_same_seed_gives_identical_training_and_different_seed_different_f(rng):
    x, y, _ = _batch(rng, 30, (6, 6, 1), 4)
    a, b, c = _train(11, x, y), _train(11, x, y), _train(12, x, y)
    np.testing.assert_array_equal(a.feedback_matrix.numpy(), b.feedback_matrix.numpy())
    for va, vb in zip(a.trainable_variables, b.trainable_variables):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    assert not np.allclose(a.feedback_matrix.numpy(), c.feedback_matrix.numpy())


def test_two_replicas_equal_one_replica_on_the_same_global_batch(rng, mirrored_strategy):
    devices = tf.config.list_logical_devices("CPU")
    assert len(devices) >= 2, "conftest should create 2 logical CPUs"
    x, y, _ = _batch(rng, 32, (12,), 4)

    def trained(strategy):
        with strategy.scope():
            model = pepita_keras.PEPITA(mlp([12, 9, 4], True), seed=1)
            model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
        model.fit(data, epochs=2, verbose=0)
        return [v.numpy() for v in model.trainable_variables]

    single = trained(tf.distribute.OneDeviceStrategy("/cpu:0"))
    mirrored = trained(mirrored_strategy)
    for a, b in zip(single, mirrored):
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=1e-6)


def test_mirrored_strategy_with_a_batch_smaller_than_replicas_stays_finite(
    rng, mirrored_strategy
):
    x, y, _ = _batch(rng, 5, (12,), 4)  # last global batch has 1 example
    with mirrored_strategy.scope():
        model = pepita_keras.PEPITA(mlp([12, 9, 4], False, dropout=0.2), seed=1)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert all(np.isfinite(v.numpy()).all() for v in model.trainable_variables)


def test_mixed_precision_updates_are_not_unscaled(rng):
    x, y, _ = _batch(rng, 16, (12,), 4)
    changes = {}
    for policy in ("float32", "mixed_float16"):
        keras.config.set_dtype_policy(policy)
        try:
            model = pepita_keras.PEPITA(mlp([12, 9, 4], False), seed=1)
            model.compile(optimizer=keras.optimizers.SGD(0.1))
            before = [v.numpy().copy() for v in model.trainable_variables]
            model.fit(x, y, batch_size=16, epochs=1, verbose=0)
            changes[policy] = [
                v.numpy() - b for v, b in zip(model.trainable_variables, before)
            ]
            if policy == "mixed_float16":
                assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        finally:
            keras.config.set_dtype_policy("float32")
    for full, mixed in zip(changes["float32"], changes["mixed_float16"]):
        # float16 activations: agree to ~1e-2, not off by the loss scale (2^15).
        np.testing.assert_allclose(mixed, full, rtol=5e-2, atol=5e-4)
        assert np.abs(mixed).max() > 0.5 * np.abs(full).max()


def test_fit_reports_loss_and_compiled_metrics(rng):
    model = pepita_keras.PEPITA(mlp([12, 9, 4], False), seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.0), metrics=["accuracy"])
    x, y, onehot = _batch(rng, 32, (12,), 4)
    logs = model.fit(x, y, batch_size=32, verbose=0).history
    probs = model.predict(x, verbose=0).astype("float64")
    expected_loss = -np.mean(np.log(np.sum(probs * onehot, axis=1)))
    np.testing.assert_allclose(logs["loss"][0], expected_loss, rtol=1e-5)
    np.testing.assert_allclose(
        logs["accuracy"][0], np.mean(probs.argmax(1) == y), rtol=1e-6
    )
    results = model.evaluate(x, onehot.astype("float32"), verbose=0, return_dict=True)
    np.testing.assert_allclose(results["loss"], expected_loss, rtol=1e-5)


def test_learning_rate_schedule_and_callbacks_work(rng):
    model = pepita_keras.PEPITA(mlp([12, 9, 4], False), seed=0)
    # lr is 0.1 at iteration 0 and 0 afterwards: only step 1 moves weights.
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([0], [0.1, 0.0])
    model.compile(optimizer=keras.optimizers.SGD(schedule))
    x, y, _ = _batch(rng, 24, (12,), 4)
    initial = [v.numpy().copy() for v in model.trainable_variables]
    seen = []
    callback = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(
            [v.numpy().copy() for v in model.trainable_variables]
        )
    )
    model.fit(x, y, batch_size=8, shuffle=False, verbose=0, callbacks=[callback])
    assert len(seen) == 3
    assert all(not np.array_equal(a, b) for a, b in zip(initial, seen[0]))
    for a, b in zip(seen[0], seen[2]):
        np.testing.assert_array_equal(a, b)


def test_xla_step_matches_default_step(rng):
    x, y, _ = _batch(rng, 16, (8, 8, 1), 3)
    results = []
    for jit in (False, True):
        network = pepita_keras.paper_networks.paper_conv((8, 8, 1), 3, filters=2, kernel_size=3, seed=0)
        model = pepita_keras.PEPITA(network, seed=0)
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=jit)
        model.fit(x, y, batch_size=8, shuffle=False, verbose=0)
        results.append([v.numpy() for v in model.trainable_variables])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_default_jit_compile_is_off_on_a_cpu_only_machine():
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("GPU present: Keras's 'auto' may pick XLA there")
    model = pepita_keras.PEPITA(mlp([4, 3, 2], False))
    model.compile(optimizer="sgd")
    assert model.jit_compile is False
