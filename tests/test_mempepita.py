"""MEMPEPITA computes PEPITA's updates (same F, same masks) by recomputation.

The expectation is PEPITA's update, itself checked against the NumPy
reference in test_pepita.py / test_pepita_variants.py; here both models share
the network, F and the dropout seed, so the updates must agree to rounding.
"""

import keras
import numpy as np
import pytest

import pepita_keras


def _fc(dropout=0.0, use_bias=True, seed=0):
    layers = [keras.Input((6, 6, 1)), keras.layers.Flatten()]
    for index, units in enumerate((16, 12, 10)):
        layers.append(
            keras.layers.Dense(
                units,
                activation="relu",
                use_bias=use_bias,
                kernel_initializer=keras.initializers.HeUniform(seed + index),
                bias_initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed),
            )
        )
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    # Seeded like the others: an unseeded initializer draws from Keras's global
    # generator, so the weights (and the rounding) would depend on test order.
    layers.append(keras.layers.Dense(4, activation="softmax", use_bias=use_bias,
                                     kernel_initializer=keras.initializers.GlorotUniform(seed + 3)))
    return keras.Sequential(layers)


def _conv(seed=0):
    return pepita_keras.paper_networks.paper_conv(
        input_shape=(6, 6, 1), num_classes=4, filters=3, kernel_size=3, seed=seed
    )


def _pair(network_fn, **kwargs):
    network = network_fn()
    clone = keras.models.clone_model(network)
    clone.set_weights(network.get_weights())
    pepita = pepita_keras.PEPITA(network, seed=5, **kwargs)
    mem = pepita_keras.MEMPEPITA(clone, seed=5, **kwargs)
    np.testing.assert_array_equal(mem.feedback_matrix.numpy(), pepita.feedback_matrix.numpy())
    return pepita, mem


def _data(rng, batch=10):
    x = rng.uniform(0, 1, size=(batch, 6, 6, 1)).astype("float32")
    return x, rng.integers(0, 4, size=batch)


def _assert_same(a, b):
    """Equal up to the rounding of the float type the updates were computed in.

    PEPITA derives its modulated first-layer pre-activation as z + s·e(FᵀW)
    (first_layer_shortcut_applies), MEMPEPITA as x_mod W: the same sum in
    another order. The Hebbian form then subtracts two products of similar
    size, h_inᵀh − h_in,modᵀh_mod, so the rounding of each product (of order
    ε·|h_in|ᵀ|h|) survives in a difference that can be far smaller than
    either. The bound is therefore relative to the size of the tensor's
    largest entries, with K = 64 roundings' worth of slack (the products here
    sum over ≤ 36 inputs × 10 examples): K·ε·max|u|, with ε of the dtype.
    """
    assert len(a) == len(b)
    for u, v in zip(a, b):
        u, v = np.asarray(u), np.asarray(v)
        assert u.dtype == v.dtype
        bound = 64 * np.finfo(u.dtype).eps * max(np.abs(u).max(), np.abs(v).max(), 1e-30)
        np.testing.assert_allclose(u, v, rtol=0, atol=bound)


@pytest.mark.parametrize("network_fn", [_fc, _conv], ids=["fc", "conv"])
@pytest.mark.parametrize("last_layer_error", ["modulated", "clean"])
def test_updates_equal_pepita(rng, network_fn, last_layer_error):
    pepita, mem = _pair(network_fn, last_layer_error=last_layer_error, feedback_scale=1.0)
    x, y = _data(rng)
    expected = pepita.compute_updates(x, y)
    assert any(np.abs(u.numpy()).max() > 0 for u in expected)
    _assert_same(mem.compute_updates(x, y), expected)


@pytest.mark.parametrize(
    "variant",
    [
        {"update_form": "hebbian", "last_layer_error": "clean"},
        {"normalize_activations": True, "modulation_sign": -1},
    ],
)
def test_variant_updates_equal_pepita(rng, variant, float64):
    # float64, so that a real difference (~1e-3 if the two forms disagreed)
    # stands ~1e10 above the rounding bound instead of ~1e1 above it.
    pepita, mem = _pair(_fc, feedback_scale=1.0, **variant)
    x, y = _data(rng)
    _assert_same(mem.compute_updates(x, y), pepita.compute_updates(x, y))


def test_dropout_masks_are_shared_by_all_three_passes(rng, float64):
    # float64: the 1/(1 − 0.5) mask scaling doubles the float32 rounding gap
    # between PEPITA's first-layer shortcut and MEMPEPITA's x_mod W (2.9e-7
    # measured, over _assert_same's 2e-7), which is not what this test is about.
    pepita, mem = _pair(lambda: _fc(dropout=0.5), feedback_scale=1.0)
    x, y = _data(rng)
    expected = pepita.compute_updates(x, y, training=True)
    got = mem.compute_updates(x, y, training=True)
    for name, mask in pepita.last_dropout_masks.items():
        np.testing.assert_array_equal(mem.last_dropout_masks[name].numpy(), mask.numpy())
    _assert_same(got, expected)


def test_fit_steps_equal_pepita(rng):
    pepita, mem = _pair(lambda: _fc(dropout=0.2))
    x, y = _data(rng, 24)
    for model in (pepita, mem):
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
        model.fit(x, y, batch_size=8, shuffle=False, verbose=0)
    _assert_same(
        [v.numpy() for v in mem.trainable_variables],
        [v.numpy() for v in pepita.trainable_variables],
    )


def test_time_local_is_refused():
    with pytest.raises(ValueError, match="time_local"):
        pepita_keras.MEMPEPITA(_fc(), update_form="hebbian", time_local=True)
