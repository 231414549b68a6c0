"""Bad input gets a clear error naming the problem."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import pepita_keras
from tests.harness import RULES


@pytest.fixture
def model():
    network = pepita_keras.paper_networks.paper_fc((6, 6, 1), 4, hidden_units=(8,), seed=0)
    model = pepita_keras.PEPITA(network, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["accuracy"])
    return model


def _data(n=8, shape=(6, 6, 1)):
    rng = np.random.default_rng(0)
    return rng.uniform(size=(n,) + shape).astype("float32"), rng.integers(0, 4, n)


def test_wrong_input_shape(model):
    x, y = _data(shape=(5, 5, 1))
    with pytest.raises(ValueError, match=r"shape \(8, 5, 5, 1\).*expects \(batch, 6, 6, 1\)"):
        model.compute_updates(x, y)
    with pytest.raises(ValueError, match=r"expects \(batch, 6, 6, 1\)"):
        model.fit(x, y, verbose=0)


def test_labels_out_of_range(model):
    x, y = _data()
    y[3] = 4
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Labels must lie in \[0, 4\)"):
        model.compute_updates(x, y)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Labels must lie in \[0, 4\)"):
        model.fit(x, y, verbose=0)
    y[3] = -1
    with pytest.raises(tf.errors.InvalidArgumentError, match="negative label"):
        model.compute_updates(x, y)


def test_label_shape_mismatch(model):
    x, _ = _data()
    with pytest.raises(ValueError, match=r"one-hot of shape \(batch, 4\).*\(8, 3\)"):
        model.compute_updates(x, np.zeros((8, 3), "float32"))


def test_nan_input(model):
    x, y = _data()
    x[2, 1, 1, 0] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or Inf"):
        model.compute_updates(x, y)
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or Inf"):
        model.fit(x, y, verbose=0)


def test_integer_pixels_are_refused(model):
    x, y = _data()
    with pytest.raises(ValueError, match="floating point.*uint8"):
        model.compute_updates((x * 255).astype("uint8"), y)


def test_non_softmax_output():
    network = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="needs a softmax output.*'linear'"):
        pepita_keras.PEPITA(network)


def test_bad_rule_arguments():
    network = pepita_keras.paper_networks.paper_fc((4,), 3, hidden_units=(5,))
    with pytest.raises(ValueError, match="last_layer_error must be one of.*'noisy'"):
        pepita_keras.PEPITA(network, last_layer_error="noisy")


def test_compile_refuses_a_loss_and_sparse_metrics(model):
    with pytest.raises(ValueError, match="do not pass `loss`"):
        model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="categorical form"):
        model.compile(optimizer="sgd", metrics=["sparse_categorical_accuracy"])


# ----------------------------------------------------------------------------
# Inputs the rules cannot use: refused (or, for the pixel range, warned).
# ----------------------------------------------------------------------------
FEEDBACK_RULES = ["pepita", "mempepita", "fa", "dfa", "drtp"]


def _range_warnings(record):
    return [str(w.message) for w in record if "far outside [0, 1]" in str(w.message)]


def test_pixels_times_255_warn_once_per_fit_with_the_range_and_fix(model):
    x, y = _data()
    with pytest.warns(UserWarning) as record:
        model.fit(x * 255, y, epochs=2, verbose=0)
    messages = _range_warnings(record)
    assert len(messages) == 1  # once per fit call, not per step or epoch
    low, high = (x * 255).min(), (x * 255).max()
    assert f"range over [{low:g}, {high:g}]" in messages[0]
    assert "x / 255" in messages[0]


def test_validation_inputs_far_outside_unit_range_warn(model):
    x, y = _data()
    far = np.full_like(x, -300.0)
    with pytest.warns(UserWarning, match=r"validation_data x range over \[-300, -300\]"):
        model.fit(x, y, validation_data=(far, y), verbose=0)


@pytest.mark.parametrize(
    "transform", [lambda x: x, lambda x: (x - 0.5) / 0.1], ids=["unit", "standardised"]
)
def test_inputs_of_order_one_do_not_warn(model, transform):
    x, y = _data()
    assert -10 < transform(x).min() and transform(x).max() < 10
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model.fit(transform(x), y, verbose=0)
    assert _range_warnings(record) == []


def test_fractional_float_labels_are_refused(model):
    x, y = _data()
    labels = y.astype("float32")
    labels[2] = 2.9  # would silently train as class 2
    with pytest.raises(tf.errors.InvalidArgumentError, match="fractional part"):
        model.compute_updates(x, labels)
    with pytest.raises(tf.errors.InvalidArgumentError, match="fractional part"):
        model.fit(x, labels, verbose=0)


def test_whole_float_labels_train_as_integer_ids(model):
    x, y = _data()
    for ours, expected in zip(
        model.compute_updates(x, y.astype("float32")), model.compute_updates(x, y)
    ):
        np.testing.assert_array_equal(ours, expected)


def test_nan_label_is_reported_as_nan_not_negative(model):
    x, y = _data()
    labels = y.astype("float32")
    labels[1] = np.nan
    for run in (lambda: model.compute_updates(x, labels),
                lambda: model.fit(x, labels, verbose=0)):
        with pytest.raises(tf.errors.InvalidArgumentError) as error:
            run()
        assert "Labels contain NaN" in str(error.value)
        assert "negative label" not in str(error.value)


@pytest.mark.parametrize("row", [[0, 2, 0, 0], [0, 0, 0, 0], [0.5, 0.5, 0.5, -0.5]],
                         ids=["scaled", "all_zero", "negative"])
def test_one_hot_rows_that_are_not_distributions_are_refused(model, row):
    x, y = _data()
    onehot = np.eye(4, dtype="float32")[y]
    onehot[5] = row
    with pytest.raises(tf.errors.InvalidArgumentError, match="summing to 1"):
        model.compute_updates(x, onehot)
    with pytest.raises(tf.errors.InvalidArgumentError, match="summing to 1"):
        model.fit(x, onehot, verbose=0)


def test_one_hot_and_smoothed_rows_are_accepted(model):
    x, y = _data()
    onehot = np.eye(4, dtype="float32")[y]
    for ours, expected in zip(model.compute_updates(x, onehot), model.compute_updates(x, y)):
        np.testing.assert_array_equal(ours, expected)
    smoothed = 0.9 * onehot + 0.1 / 4  # rows still sum to 1
    model.fit(x, smoothed, verbose=0)


def test_nan_sample_weight_is_refused(model):
    x, y = _data()
    weight = np.ones(8, "float32")
    weight[4] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="sample_weight contains NaN"):
        model.compute_updates(x, y, sample_weight=weight)
    with pytest.raises(tf.errors.InvalidArgumentError, match="sample_weight contains NaN"):
        model.fit(x, y, sample_weight=weight, verbose=0)


def test_predict_refuses_integer_pixels_like_fit(model):
    x, _ = _data()
    with pytest.raises(ValueError, match=r"floating point.*uint8.*x / 255"):
        model.predict((x * 255).astype("uint8"), verbose=0)
    assert model.predict(x, verbose=0).shape == (8, 4)


# ----------------------------------------------------------------------------
# Networks the rules cannot train as given.
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("activation", [None, "log_softmax"], ids=["logits", "log_softmax"])
def test_backprop_refuses_outputs_that_are_not_probabilities(activation):
    network = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation=activation)])
    name = activation or "linear"
    with pytest.raises(ValueError, match=rf"Backprop.*ends with activation '{name}'.*softmax"):
        pepita_keras.Backprop(network)


@pytest.mark.parametrize("attribute", ["kernel_regularizer", "bias_regularizer"])
@pytest.mark.parametrize("rule", FEEDBACK_RULES)
def test_local_rules_refuse_weight_regularizers(rule, attribute):
    network = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(5, activation="relu", name="hidden", **{attribute: keras.regularizers.L2(0.01)}),
        keras.layers.Dense(3, activation="softmax"),
    ])
    with pytest.raises(
        ValueError, match=rf"'hidden'.*{attribute}=L2\(l2=0\.01.*weight_decay"
    ):
        RULES[rule](network)


@pytest.mark.parametrize("rule", list(RULES))
def test_activity_regularizers_are_refused(rule):
    network = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(5, activation="relu", activity_regularizer="l1", name="hidden"),
        keras.layers.Dense(3, activation="softmax"),
    ])
    with pytest.raises(ValueError, match=r"activity regularizers.*'hidden'.*L1"):
        RULES[rule](network)


# ----------------------------------------------------------------------------
# Mismatched arguments and metrics.
# ----------------------------------------------------------------------------
def test_compute_updates_with_x_and_y_of_different_lengths(model):
    x, y = _data()
    with pytest.raises(ValueError, match="same number of examples.*x has 8, y has 7"):
        model.compute_updates(x, y[:7])
    with pytest.raises(ValueError, match="x has 8, y has 8, sample_weight has 3"):
        model.compute_updates(x, y, sample_weight=np.ones(3, "float32"))


@pytest.mark.parametrize(
    "metric, replacement",
    [(keras.metrics.SparseCategoricalAccuracy(), "CategoricalAccuracy"),
     (keras.metrics.SparseTopKCategoricalAccuracy(k=2), "TopKCategoricalAccuracy"),
     ("sparse_categorical_crossentropy", "CategoricalCrossentropy")],
)
def test_sparse_metric_objects_are_refused_with_their_replacement(model, metric, replacement):
    with pytest.raises(ValueError, match=f"sparse metrics.*{replacement} for Sparse"):
        model.compile(optimizer="sgd", metrics=[metric])
    with pytest.raises(ValueError, match="weighted_metrics="):
        model.compile(optimizer="sgd", weighted_metrics=[metric])


def test_categorical_metric_objects_work_with_integer_labels(model):
    x, y = _data()
    model.compile(optimizer="sgd", metrics=[keras.metrics.CategoricalAccuracy(name="acc")])
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    predicted = model.predict(x, verbose=0).argmax(axis=1)
    assert logs["acc"] == pytest.approx(np.mean(predicted == y))
