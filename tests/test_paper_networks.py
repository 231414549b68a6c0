"""The paper's networks: shapes and initialisations from their stated formulas."""

import math

import numpy as np
import pytest

from pepita_keras import paper_networks


@pytest.mark.parametrize("kind, limit", [
    # He-uniform: U(±√(6/fan_in)); PyTorch's Linear/Conv2d default: U(±1/√fan_in).
    ("he_uniform", lambda fan_in: math.sqrt(6 / fan_in)),
    ("torch_default", lambda fan_in: 1 / math.sqrt(fan_in)),
])
def test_kernel_initializers_draw_uniform_weights_with_the_stated_limit(kind, limit):
    network = paper_networks.paper_conv((28, 28, 1), 10, kernel_initializer=kind, seed=0)
    conv, dense = network.get_layer("conv").kernel, network.get_layer("output").kernel
    for kernel, fan_in in ((conv, 5 * 5 * 1), (dense, 12 * 12 * 32)):
        weights = np.asarray(kernel)
        bound = limit(fan_in)
        assert np.abs(weights).max() <= bound
        assert np.abs(weights).max() > 0.95 * bound  # fills the interval
        # A uniform distribution on ±bound has standard deviation bound/√3.
        assert weights.std() == pytest.approx(bound / math.sqrt(3), rel=0.1)


def test_fc_network_takes_the_same_initializer_option():
    network = paper_networks.paper_fc((28, 28, 1), 10, kernel_initializer="torch_default", seed=0)
    hidden = np.asarray(network.get_layer("hidden_1").kernel)
    assert np.abs(hidden).max() <= 1 / math.sqrt(784)


def test_unknown_initializer_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="kernel_initializer must be one of .*'glorot'"):
        paper_networks.paper_conv(kernel_initializer="glorot")
