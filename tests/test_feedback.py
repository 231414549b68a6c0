"""Feedback matrices (pepita_keras/feedback.py): their draw, seeding and checks."""

import math

import numpy as np
import pytest

import pepita_keras
from tests.harness import RULES, mlp


def test_feedback_matrix_init_follows_paper():
    d, classes, scale = 784, 10, 0.05
    model = pepita_keras.PEPITA(pepita_keras.paper_networks.paper_fc(seed=0), seed=0)
    feedback = model.feedback_matrix.numpy()
    assert feedback.shape == (d, classes)
    assert not model.feedback_matrix.trainable
    limit = scale * np.sqrt(6 / d)
    assert np.abs(feedback).max() <= limit
    # U(-a, a) has std a / sqrt(3).
    np.testing.assert_allclose(feedback.std(), limit / np.sqrt(3), rtol=0.02)
    assert all(v is not model.feedback_matrix for v in model.trainable_variables)


def test_feedback_shapes_and_he_uniform_limits():
    network = pepita_keras.paper_networks.paper_fc((28, 28, 1), 10, hidden_units=(256, 128), seed=0)
    fa = pepita_keras.FeedbackAlignment(network, feedback_scale=0.5, seed=0)
    assert [tuple(m.shape) for m in fa.feedback_matrices] == [(256, 128), (128, 10)]
    dfa = pepita_keras.DirectFeedbackAlignment(network, seed=0)
    assert [tuple(m.shape) for m in dfa.feedback_matrices] == [(10, 256), (10, 128)]
    for matrix, fan_in in zip(fa.feedback_matrices, (256, 128)):
        limit = 0.5 * math.sqrt(6.0 / fan_in)
        values = np.abs(np.asarray(matrix))
        assert values.max() <= limit and values.max() > 0.95 * limit
    for matrix, size in zip(dfa.feedback_matrices, (256, 128)):
        limit = math.sqrt(6.0 / size)
        values = np.abs(np.asarray(matrix))
        assert values.max() <= limit and values.max() > 0.95 * limit
    for model in (fa, dfa):
        assert not any(m.trainable for m in model.feedback_matrices)
        assert len(model.trainable_variables) == 3  # kernels only, no bias


@pytest.mark.parametrize("rule", ["fa", "dfa", "drtp"])
def test_feedback_is_seeded(rule):
    network = mlp([6, 5, 4, 3])
    first, second = RULES[rule](network, seed=4), RULES[rule](network, seed=4)
    other = RULES[rule](network, seed=5)
    for a, b, c in zip(first.feedback_matrices, second.feedback_matrices, other.feedback_matrices):
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, c)


@pytest.mark.parametrize("scale", [0, 0.0, -0.05, -1.0, float("nan"), float("inf"), "big", True, None])
@pytest.mark.parametrize("rule", ["pepita", "mempepita", "fa", "dfa", "drtp"])
def test_every_rule_refuses_a_bad_feedback_scale(rule, scale):
    network = pepita_keras.paper_networks.paper_fc((6, 6, 1), 4, hidden_units=(8,), seed=0)
    with pytest.raises(ValueError, match=rf"feedback_scale.*Received: feedback_scale={scale!r}"):
        RULES[rule](network, feedback_scale=scale)
