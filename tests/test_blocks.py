"""`network_blocks`: which networks the rules can walk, and the errors that say why not."""

import keras
import pytest

from pepita_keras.blocks import network_blocks


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
        network_blocks(network)


def test_network_without_input_shape():
    network = keras.Sequential([keras.layers.Dense(3, activation="softmax")])
    with pytest.raises(ValueError, match=r"no known input shape.*keras.Input"):
        network_blocks(network)


def test_dense_on_images_needs_flatten():
    network = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Dense(3, activation="softmax")]
    )
    with pytest.raises(ValueError, match="Add a keras.layers.Flatten"):
        network_blocks(network)


def test_softmax_layer_only_as_the_output():
    network = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(5),
        keras.layers.Softmax(name="inner"),
        keras.layers.Dense(3, activation="softmax"),
    ])
    with pytest.raises(ValueError, match="'inner'.*followed by.*only as the network's last layer"):
        network_blocks(network)
    wrong_axis = keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(3), keras.layers.Softmax(axis=0, name="batch_axis")
    ])
    with pytest.raises(ValueError, match="'batch_axis'.*axis=0"):
        network_blocks(wrong_axis)
