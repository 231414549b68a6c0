"""Every rule, and every saved state a rule has, through `run_rule_test`.

Config round trip, a tiny fit, and a `.keras` save mid-training that
continues bit-identically (tests/harness.py). One case per rule, plus the
settings that add saved state or config: PEPITA's variants (mirroring state,
two optimizer steps per batch), its official conv update, conv feedback
matrices (FA's kernel-shaped B, DFA's feature-map D), a sigmoid output, and
Forward-Forward's head-less network (its own num_classes, threshold, local steps).
"""

import keras
import pytest

from pepita_keras import paper_networks
from tests.harness import RULES, mlp, run_rule_test


def two_conv_net(seed=0):
    """(7,7,2) → Conv 3×3 → Conv 2×2 → MaxPool → Flatten → softmax, no biases."""
    init = keras.initializers.HeUniform
    return keras.Sequential([
        keras.Input((7, 7, 2)),
        keras.layers.Conv2D(3, 3, activation="relu", use_bias=False, kernel_initializer=init(seed)),
        keras.layers.Conv2D(2, 2, activation="relu", use_bias=False,
                            kernel_initializer=init(seed + 1)),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax", kernel_initializer=init(seed + 2)),
    ])


PEPITA_VARIANTS = dict(
    last_layer_error="clean",
    modulation_sign=-1,
    normalize_activations=True,
    update_form="hebbian",
    time_local=True,
    feedback_mirroring={"learning_rate": 0.2, "noise_std": 0.1, "batch_size": 16, "period": 2},
)

CASES = {
    "pepita": (
        "pepita",
        dict(feedback_scale=0.1, seed=9),
        lambda: paper_networks.paper_fc((6, 6, 1), 4, hidden_units=(16,), seed=2),
    ),
    "pepita_variants": (
        "pepita",
        dict(seed=0, **PEPITA_VARIANTS),
        lambda: mlp([6, 5, 3], use_bias=True),
    ),
    "pepita_official_conv": (
        "pepita",
        dict(conv_update="official", feedback_scale=2.0, last_layer_error="clean", seed=2),
        lambda: paper_networks.paper_conv((8, 8, 1), 3, filters=4, kernel_size=5, seed=1),
    ),
    "mempepita": (
        "mempepita",
        dict(update_form="hebbian", seed=3),
        lambda: mlp([36, 16, 12, 4], use_bias=True, dropout=0.1),
    ),
    "bp": ("bp", dict(seed=7, name="bp"), lambda: mlp([6, 5, 4, 3], use_bias=True, dropout=0.3)),
    "fa": (
        "fa",
        dict(feedback_scale=0.25, seed=7, name="my_rule"),
        lambda: mlp([6, 5, 4, 3], use_bias=True, dropout=0.3),
    ),
    "fa_conv": ("fa", dict(seed=2), two_conv_net),
    "dfa_conv": ("dfa", dict(feedback_scale=0.5, seed=2), two_conv_net),
    "drtp": (
        "drtp",
        dict(feedback_scale=0.25, seed=7),
        lambda: mlp([6, 5, 4, 3], use_bias=True, dropout=0.3),
    ),
    "ff": (
        "ff",
        dict(num_classes=3, threshold=0.5, local_steps=2, seed=4),
        lambda: paper_networks.paper_fc((12,), None, hidden_units=(8, 6), use_bias=True, dropout=0,
                                        seed=0),
    ),
    "usf": ("usf", dict(seed=7), lambda: mlp([6, 5, 4, 3], use_bias=True, dropout=0.3)),
    "frsf": ("frsf", dict(feedback_scale=0.5, seed=7), two_conv_net),
    "brsf": ("brsf", dict(seed=7), lambda: mlp([6, 5, 4, 3], use_bias=True, dropout=0.3)),
    "kp": ("kp", dict(decay=0.01, seed=7), lambda: mlp([6, 5, 4, 3], use_bias=True)),
    "drtp_sigmoid_output": (
        "drtp",
        dict(feedback_scale=0.1, seed=1),
        lambda: paper_networks.paper_fc((6,), 3, hidden_units=(8,), use_bias=True, seed=0,
                                        hidden_activation="tanh", output_activation="sigmoid"),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rule(case, tmp_path):
    rule, init_kwargs, network_fn = CASES[case]
    run_rule_test(RULES[rule], init_kwargs, network_fn, tmp_path)


def test_every_rule_has_a_case():
    assert {rule for rule, _, _ in CASES.values()} == set(RULES)
