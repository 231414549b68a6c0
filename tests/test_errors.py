"""Bad input gets a clear error naming the problem."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import pepita_keras


@pytest.fixture
def model():
    network = pepita_keras.models.paper_fc((6, 6, 1), 4, hidden_units=(8,), seed=0)
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


def test_unsupported_layer_is_named_with_supported_list():
    network = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5, activation="relu"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    with pytest.raises(ValueError, match=r"'bn' of type BatchNormalization.*Supported layers: .*Conv2D.*Dense"):
        pepita_keras.PEPITA(network)


def test_network_without_input_shape():
    network = keras.Sequential([keras.layers.Dense(3, activation="softmax")])
    with pytest.raises(ValueError, match=r"no known input shape.*keras.Input"):
        pepita_keras.PEPITA(network)


def test_non_softmax_output():
    network = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="needs a softmax output.*'linear'"):
        pepita_keras.PEPITA(network)


def test_dense_on_images_needs_flatten():
    network = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Dense(3, activation="softmax")]
    )
    with pytest.raises(ValueError, match="Add a keras.layers.Flatten"):
        pepita_keras.PEPITA(network)


def test_bad_rule_arguments():
    network = pepita_keras.models.paper_fc((4,), 3, hidden_units=(5,))
    with pytest.raises(ValueError, match="last_layer_error must be one of.*'noisy'"):
        pepita_keras.PEPITA(network, last_layer_error="noisy")


def test_compile_refuses_a_loss_and_sparse_metrics(model):
    with pytest.raises(ValueError, match="do not pass `loss`"):
        model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="categorical form"):
        model.compile(optimizer="sgd", metrics=["sparse_categorical_accuracy"])
