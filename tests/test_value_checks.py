"""Value checks once per dataset instead of in every step (what `pepita reproduce` does)."""

import keras
import numpy as np
import pytest

import pepita_keras
from pepita_keras import input_pipeline, paper_networks


def _arrays(rng, n=64):
    x = rng.uniform(size=(n, 28, 28, 1)).astype("float32")
    return (x, rng.integers(0, 10, n)), (x[:16], rng.integers(0, 10, 16))


def test_check_values_names_the_split_and_example():
    rng = np.random.default_rng(0)
    (x, y), test = _arrays(rng)
    x[5, 3, 3, 0] = np.nan
    data = input_pipeline.EpochData(((x, y), test), 16, 16)
    with pytest.raises(ValueError, match="the train split's example 5 holds NaN or Inf"):
        data.check_values(10)
    assert not data.values_checked
    (x, y), (x_test, y_test) = _arrays(rng)
    y_test[7] = 10
    with pytest.raises(ValueError, match=r"the test split's label 10 \(example 7\) is outside"):
        input_pipeline.EpochData(((x, y), (x_test, y_test)), 16, 16).check_values(10)
    data = input_pipeline.EpochData(_arrays(rng), 16, 16)
    data.check_values(10)
    assert data.values_checked


@pytest.mark.parametrize("rule", ["PEPITA", "Backprop"])
def test_skipping_the_step_checks_trains_bit_identically(rule):
    # The checks only read the values: with or without them, the same weights to the bit.
    data = input_pipeline.EpochData(_arrays(np.random.default_rng(1)), 16, 16)
    data.check_values(10)
    weights = []
    for check in (True, False):
        keras.utils.set_random_seed(0)
        model = getattr(pepita_keras, rule)(paper_networks.paper_fc(hidden_units=(32,), seed=0), seed=0)
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), metrics=["accuracy"])
        model.check_batch_values = check
        model.fit(data.train(0, 0), epochs=1, shuffle=False, verbose=0)
        weights.append([np.array(v) for v in model.trainable_variables])
    for with_checks, without in zip(*weights):
        np.testing.assert_array_equal(with_checks, without)


def test_the_step_checks_are_on_unless_switched_off():
    model = pepita_keras.PEPITA(paper_networks.paper_fc(hidden_units=(8,), seed=0), seed=0)
    model.compile(optimizer="sgd", metrics=["accuracy"])
    assert model.check_batch_values is True
    x = np.full((4, 28, 28, 1), np.nan, "float32")
    with pytest.raises(Exception, match="NaN or Inf"):
        model.fit(x, np.zeros(4, "int32"), verbose=0)
