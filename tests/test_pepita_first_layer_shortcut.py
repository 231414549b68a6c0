"""PEPITA's first-layer shortcut (`x_mod W = x W + s·e (Fᵀ W)`).

The updates themselves are checked against the NumPy reference in
tests/test_pepita.py (which runs through the shortcut for Flatten → Dense
networks); these tests pin down when the shortcut is taken, and that the
linearity identity holds on both modulation signs, with biases and dropout.
"""

import keras
import numpy as np
import pytest

import pepita_keras
from pepita_keras import paper_networks


def _x(batch, shape=(28, 28, 1)):
    return np.zeros((batch,) + shape, "float32")


def test_shortcut_taken_for_the_paper_fc_net():
    model = pepita_keras.PEPITA(paper_networks.paper_fc(seed=0), seed=0)
    assert model.first_layer_shortcut_applies(_x(64))
    # (C × d)(d × H) costs more than the (B × d)(d × H) it replaces when B ≤ C.
    assert not model.first_layer_shortcut_applies(_x(8))


@pytest.mark.parametrize(
    "network",
    [
        lambda: paper_networks.paper_conv(seed=0),
        # Input dropout: the mask does not commute with the low-rank F e.
        lambda: keras.Sequential([
            keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dropout(0.2),
            keras.layers.Dense(10, activation="softmax"),
        ]),
    ],
    ids=["conv", "input_dropout"],
)
def test_shortcut_not_taken_where_the_first_layer_is_not_linear_in_x(network):
    model = pepita_keras.PEPITA(network(), seed=0)
    assert not model.first_layer_shortcut_applies(_x(64))


@pytest.mark.parametrize("modulation_sign", [1, -1])
def test_shortcut_equals_the_two_full_passes(rng, modulation_sign):
    def build():
        network = paper_networks.paper_fc((5, 5, 1), 3, hidden_units=(12, 7), use_bias=True,
                                          dropout=0.3, seed=0)
        return pepita_keras.PEPITA(network, feedback_scale=2.0,
                                   modulation_sign=modulation_sign, seed=3)

    fast, plain = build(), build()
    plain.first_layer_shortcut_applies = lambda x: False
    x = rng.random((16, 5, 5, 1), dtype=np.float32)
    y = rng.integers(0, 3, 16)
    assert fast.first_layer_shortcut_applies(x)
    got = fast.compute_updates(x, y, training=True)
    want = plain.compute_updates(x, y, training=True)
    assert any(np.abs(np.asarray(w)).max() > 1e-3 for w in want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-6)
