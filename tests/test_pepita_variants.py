"""PEPITA's ICLR-2024 variants against their equations.

Expectations come from tests/reference/pepita_variants_numpy.py (plain
NumPy statements of each variant), from exact identities (sign −1 ≡ F
negated) and from closed forms (mirroring, decoupled weight decay).
"""

import keras
import numpy as np
import pytest

import pepita_keras
from tests.harness import mlp
from tests.reference import pepita_variants_numpy as ref

RTOL = 1e-5


def _weights(model):
    dense = [b.layer for b in model.blocks]
    kernels = [l.kernel.numpy().astype("float64") for l in dense]
    biases = [l.bias.numpy().astype("float64") for l in dense] if dense[0].use_bias else None
    return kernels, biases


def _batch(rng, batch, features, classes):
    x = rng.uniform(0, 1, size=(batch, features))
    y = rng.integers(0, classes, size=batch)
    return x, y, np.eye(classes)[y]


@pytest.mark.parametrize("update_form", ["difference", "hebbian"])
@pytest.mark.parametrize("last_layer_error", ["modulated", "clean"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("sign", [1, -1])
def test_variant_updates_match_numpy_reference(
    float64, rng, update_form, last_layer_error, normalize, sign
):
    use_bias = normalize  # cover biases without doubling the grid
    model = pepita_keras.PEPITA(
        mlp([10, 8, 6, 3], use_bias),
        feedback_scale=2.0,
        last_layer_error=last_layer_error,
        modulation_sign=sign,
        normalize_activations=normalize,
        update_form=update_form,
        seed=1,
    )
    x, y, onehot = _batch(rng, 12, 10, 3)
    kernels, biases = _weights(model)
    expected = ref.variant_updates(
        x, onehot, kernels, biases, model.feedback_matrix.numpy(),
        sign=sign, normalize=normalize, form=update_form,
        last_layer_error=last_layer_error,
    )
    updates = model.compute_updates(x, y)
    assert "float64" in str(updates[0].dtype)  # the tolerance assumes float64
    assert len(updates) == len(expected)
    for got, want in zip(updates, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=RTOL, atol=1e-12)


def test_hebbian_form_differs_from_difference_form(float64, rng):
    # Guards the reference test above against both forms collapsing.
    x, y, _ = _batch(rng, 8, 10, 3)
    results = [
        pepita_keras.PEPITA(
            mlp([10, 8, 3]), feedback_scale=2.0, update_form=form, seed=1
        ).compute_updates(x, y)[0].numpy()
        for form in ("difference", "hebbian")
    ]
    assert not np.allclose(*results)


def test_negative_modulation_sign_equals_negated_feedback(rng):
    x, y, _ = _batch(rng, 8, 10, 3)
    minus = pepita_keras.PEPITA(mlp([10, 8, 3]), modulation_sign=-1, seed=2)
    plus = pepita_keras.PEPITA(mlp([10, 8, 3]), seed=2)
    plus.feedback_matrix.assign(-minus.feedback_matrix.numpy())
    for a, b in zip(minus.compute_updates(x, y), plus.compute_updates(x, y)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_normalized_predictions_divide_by_the_whole_batch_norm(float64, rng):
    model = pepita_keras.PEPITA(mlp([10, 8, 3]), normalize_activations=True, seed=0)
    x, _, _ = _batch(rng, 16, 10, 3)
    kernels, _ = _weights(model)
    _, outputs = ref.forward(x, kernels, normalize=True)
    np.testing.assert_allclose(
        model.predict(x, batch_size=16, verbose=0), outputs[-1], rtol=RTOL
    )
    # Not the per-example norm: a half batch gives another output.
    _, half = ref.forward(x[:8], kernels, normalize=True)
    assert not np.allclose(half[-1], outputs[-1][:8])


@pytest.mark.parametrize("last_layer_error", ["clean", "modulated"])
def test_time_local_step_equals_two_halves_applied_by_hand(
    float64, rng, last_layer_error
):
    lr = 0.5
    model = pepita_keras.PEPITA(
        mlp([10, 8, 6, 3]),
        feedback_scale=2.0,
        update_form="hebbian",
        time_local=True,
        last_layer_error=last_layer_error,
        seed=3,
    )
    model.compile(optimizer=keras.optimizers.SGD(lr))
    x, y, onehot = _batch(rng, 8, 10, 3)
    kernels, _ = _weights(model)
    expected = ref.time_local_sgd_step(
        x, onehot, kernels, model.feedback_matrix.numpy(), lr,
        last_layer_error=last_layer_error,
    )
    # The same update applied at once (no time locality) must differ.
    at_once = [
        w - lr * g
        for w, g in zip(
            kernels,
            ref.variant_updates(
                x, onehot, kernels, None, model.feedback_matrix.numpy(),
                form="hebbian", last_layer_error=last_layer_error,
            ),
        )
    ]
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 2  # one apply per half
    for variable, want, other in zip(model.trainable_variables, expected, at_once):
        np.testing.assert_allclose(variable.numpy(), want, rtol=RTOL, atol=1e-12)
    assert any(
        not np.allclose(v.numpy(), o) for v, o in zip(model.trainable_variables, at_once)
    )


def test_time_local_compute_updates_is_the_sum_of_both_halves(rng):
    x, y, _ = _batch(rng, 8, 10, 3)
    kwargs = dict(feedback_scale=2.0, update_form="hebbian", last_layer_error="clean", seed=3)
    local = pepita_keras.PEPITA(mlp([10, 8, 3]), time_local=True, **kwargs)
    at_once = pepita_keras.PEPITA(mlp([10, 8, 3]), **kwargs)
    for a, b in zip(local.compute_updates(x, y), at_once.compute_updates(x, y)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_normalization_under_mixed_precision_does_not_overflow(rng):
    # 64 × 1024 ReLU activations of order 1: Σh² ≈ 6e4 > float16's max 65504.
    keras.config.set_dtype_policy("mixed_float16")
    network = pepita_keras.paper_networks.paper_fc((8, 8, 1), 10, hidden_units=(1024,), seed=0)
    model = pepita_keras.PEPITA(network, normalize_activations=True, seed=0)
    x = rng.uniform(0, 8, size=(64, 8, 8, 1)).astype("float32")
    hidden = model.forward(x).outputs[0].numpy().astype("float64")
    assert model.forward(x).outputs[0].dtype == "float16"
    np.testing.assert_allclose(np.sqrt((hidden**2).sum()), 1.0, rtol=1e-2)
    assert all(np.isfinite(u.numpy()).all() for u in model.compute_updates(x, np.arange(64) % 10))


def test_weight_decay_through_the_optimizer(rng):
    lr, decay = 0.1, 0.01
    model = pepita_keras.PEPITA(mlp([10, 8, 3]), seed=4)
    model.compile(optimizer=keras.optimizers.SGD(lr, weight_decay=decay))
    x, y, onehot = _batch(rng, 8, 10, 3)
    kernels, _ = _weights(model)
    grads = ref.variant_updates(x, onehot, kernels, None, model.feedback_matrix.numpy())
    model.fit(x.astype("float32"), y, batch_size=8, shuffle=False, verbose=0)
    # Keras's decoupled decay: w ← w − lr·wd·w − lr·G (G at the old weights).
    for variable, w, g in zip(model.trainable_variables, kernels, grads):
        np.testing.assert_allclose(
            variable.numpy(), w - lr * decay * w - lr * g, rtol=1e-5, atol=1e-7
        )


@pytest.mark.parametrize("sign", [1, -1])
def test_mirroring_step_matches_closed_form_and_keeps_initial_std(float64, rng, sign):
    settings = {"learning_rate": 0.5, "noise_std": 0.3, "batch_size": 32}
    model = pepita_keras.PEPITA(
        mlp([10, 8, 3]), modulation_sign=sign, feedback_mirroring=settings, seed=5
    )
    initial = model.feedback_matrix.numpy().copy()
    noise = rng.normal(0, 0.3, size=(32, 10))
    kernels, _ = _weights(model)
    _, outputs = ref.forward(noise, kernels)
    expected = ref.mirrored_feedback(initial, noise, outputs[-1], 0.5, -sign, initial.std())
    model.mirror_feedback(noise)
    np.testing.assert_allclose(model.feedback_matrix.numpy(), expected, rtol=RTOL)
    np.testing.assert_allclose(model.feedback_matrix.numpy().std(), initial.std(), rtol=1e-10)
    assert not model.feedback_matrix.trainable


def test_mirroring_turns_feedback_towards_anti_alignment(rng):
    """Linear hidden layer, softmax output: E[ξᵀ r]/N ≈ σ² W1 W2 J, J ∝ P = I − 11ᵀ/C
    (softmax Jacobian at small logits), so F (+Fe convention) → −W1 W2 P."""
    model = pepita_keras.PEPITA(
        mlp([20, 16, 4], activation="linear"),
        feedback_mirroring={"learning_rate": 1.0, "noise_std": 0.3, "batch_size": 1024},
        seed=6,
    )
    kernels, _ = _weights(model)
    target = kernels[0] @ kernels[1] @ (np.eye(4) - 1 / 4)
    before = ref.angle_degrees(model.feedback_matrix.numpy(), target)
    for _ in range(40):
        model.mirror_feedback()
    after = ref.angle_degrees(model.feedback_matrix.numpy(), target)
    assert 70 < before < 110
    assert after > 165, (before, after)


def test_mirroring_schedule_and_std_during_fit(rng):
    model = pepita_keras.PEPITA(
        mlp([10, 8, 3]), feedback_mirroring={"period": 3}, seed=7
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    initial = model.feedback_matrix.numpy().copy()
    x, y, _ = _batch(rng, 24, 10, 3)
    model.fit(x[:16], y[:16], batch_size=8, shuffle=False, verbose=0)  # 2 steps
    np.testing.assert_array_equal(model.feedback_matrix.numpy(), initial)
    model.fit(x[16:], y[16:], batch_size=8, shuffle=False, verbose=0)  # step 3
    assert int(model.mirroring.step.numpy()) == 3
    assert not np.allclose(model.feedback_matrix.numpy(), initial)
    np.testing.assert_allclose(model.feedback_matrix.numpy().std(), initial.std(), rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"update_form": "mixed"}, "update_form"),
        ({"modulation_sign": 0}, "modulation_sign"),
        ({"normalize_activations": "yes"}, "normalize_activations"),
        ({"time_local": True}, "update_form='hebbian'"),
        ({"feedback_mirroring": {"lr": 0.1}}, "unknown keys"),
        ({"feedback_mirroring": {"period": 0}}, "period"),
    ],
)
def test_invalid_variant_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pepita_keras.PEPITA(mlp([4, 3, 2]), **kwargs)


def test_mirrored_strategy_matches_one_device_with_mirroring_and_time_local(
    rng, mirrored_strategy
):
    # (normalize_activations is left out: its norm is over each replica's
    # share of the batch, so it differs from one device by design.)
    import tensorflow as tf

    x, y, _ = _batch(rng, 32, 10, 3)
    x = x.astype("float32")
    results = []
    for strategy in (
        tf.distribute.OneDeviceStrategy("/cpu:0"),
        mirrored_strategy,
    ):
        with strategy.scope():
            model = pepita_keras.PEPITA(
                mlp([10, 8, 3]), seed=1, feedback_mirroring={"period": 2},
                update_form="hebbian", time_local=True,
            )
            model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(16), epochs=2, verbose=0)
        assert int(model.mirroring.step.numpy()) == 4
        results.append([model.feedback_matrix.numpy()] + [v.numpy() for v in model.trainable_variables])
    for single, mirrored in zip(*results):
        np.testing.assert_allclose(mirrored, single, rtol=1e-5, atol=1e-6)
