"""The checks of pepita_keras/backward.py that FA, DFA and DRTP build on.

How the backward pieces compute (`block_derivative`, `carry_backward`,
`feedback_through_layer`) is checked through the rules' updates against the
NumPy reference in tests/test_baselines.py.
"""

import keras
import pytest

from tests.harness import RULES


def _network(hidden_activations=("relu",), output="softmax"):
    layers = [keras.Input((6,))]
    layers += [keras.layers.Dense(5, activation=a) for a in hidden_activations]
    return keras.Sequential(layers + [keras.layers.Dense(3, activation=output)])


@pytest.mark.parametrize("rule", ["fa", "dfa", "drtp"])
def test_unsupported_hidden_activation_is_named(rule):
    with pytest.raises(ValueError, match="'elu'"):
        RULES[rule](_network(hidden_activations=("relu", "elu")))


@pytest.mark.parametrize(
    "rule, output",
    [("fa", "sigmoid"), ("fa", "tanh"), ("dfa", "tanh"), ("drtp", "tanh"), ("drtp", "linear")],
)
def test_output_without_cross_entropy_error_is_rejected(rule, output):
    # FA takes only a softmax; DFA and DRTP a softmax or a sigmoid (BCE).
    with pytest.raises(ValueError, match=f"'{output}'"):
        RULES[rule](_network(output=output))
