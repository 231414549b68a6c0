"""The slowness fit recovers s and acc_max from curves whose s is known."""

import numpy as np
import pytest

from pepita_keras import experiment_config, slowness


@pytest.mark.parametrize("acc_max, s", [(0.98643, 0.026), (0.95, 0.5), (0.6, 3.0), (0.99, 12.0)])
def test_recovers_a_known_curve(acc_max, s):
    t = np.arange(1, 61)
    curve = acc_max * t / (s + t)
    # The chance point at t = 0 lies on the model only as acc(0) = 0, so fit the exact curve
    # with chance 0 and check both parameters to 1e-4 relative.
    fitted_max, fitted_s = slowness.fit(curve, chance=0.0)
    assert fitted_max == pytest.approx(acc_max, rel=1e-4)
    assert fitted_s == pytest.approx(s, rel=1e-3)


def test_noise_and_the_chance_point_leave_the_order_of_rules():
    rng = np.random.default_rng(0)
    t = np.arange(1, 61)
    fast = 0.98 * t / (0.05 + t) + rng.normal(0, 0.002, t.size)
    slow = 0.98 * t / (2.0 + t) + rng.normal(0, 0.002, t.size)
    _, s_fast = slowness.fit(fast, chance=0.1)
    _, s_slow = slowness.fit(slow, chance=0.1)
    assert s_fast < 0.2 < 1.0 < s_slow < 3.0


def test_only_the_epochs_before_the_first_decay_are_fitted():
    config = experiment_config.load_config("fc_mnist_pepita")  # decays at 60 and 90
    t = np.arange(1, 101)
    curve = np.where(t <= 60, 0.97 * t / (0.5 + t), 0.2)  # garbage after the decay
    acc_max, s = slowness.seed_slowness(config, list(curve))
    assert acc_max == pytest.approx(0.97, abs=0.01) and s == pytest.approx(0.5, rel=0.2)
    assert slowness.fit_window(experiment_config.load_config("conv_mnist_bp")) == 10


def test_refuses_an_empty_or_non_finite_curve():
    with pytest.raises(ValueError):
        slowness.fit([], 0.1)
    with pytest.raises(ValueError):
        slowness.fit([0.5, float("nan")], 0.1)
