"""Training behaviour every rule shares: stopping on divergence, softmax
output layers, weight regularizers (applied by Backprop, as Keras does)."""

import keras
import numpy as np
import pytest

import pepita_keras
from tests.harness import RULES


def _data(n=64, features=12, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(n, features)).astype("float32"), rng.integers(0, classes, n)


def _head_less(seed=0):
    """For a rule that classifies without a classifier layer (Forward-Forward)."""
    init = keras.initializers.HeUniform
    return keras.Sequential([keras.Input((12,)), keras.layers.Dense(
        9, activation="relu", kernel_initializer=init(seed))])


def _rule(rule, network_fn=None):
    cls = RULES[rule]
    if getattr(cls, "classifier_layer", True):
        return cls((network_fn or _network)(), seed=0)
    return cls(_head_less(), num_classes=4, seed=0)


def _network(output_layer_softmax=False, seed=0, **dense_kwargs):
    init = keras.initializers.HeUniform
    return keras.Sequential([
        keras.Input((12,)),
        keras.layers.Dense(9, activation="relu", kernel_initializer=init(seed), **dense_kwargs),
        keras.layers.Dense(
            4,
            activation=None if output_layer_softmax else "softmax",
            kernel_initializer=init(seed + 1),
            **dense_kwargs,
        ),
    ] + ([keras.layers.Softmax()] if output_layer_softmax else []))


# ----------------------------------------------------------------------------
# keras.callbacks.TerminateOnNaN stops every rule at its first non-finite loss.
# ----------------------------------------------------------------------------
class BatchLosses(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


@pytest.mark.parametrize("rule", list(RULES))
def test_terminate_on_nan_stops_at_the_first_non_finite_loss(rule):
    x, y = _data()
    # lr 1e30: the first update takes the weights to ~1e30, the logits of
    # the next clean pass overflow, the logged loss turns NaN/Inf.
    runs = {}
    for stop in (False, True):
        model = _rule(rule)
        model.compile(optimizer=keras.optimizers.SGD(1e30), metrics=["accuracy"])
        batches = BatchLosses()
        callbacks = [batches] + ([keras.callbacks.TerminateOnNaN()] if stop else [])
        history = model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
                            callbacks=callbacks).history
        runs[stop] = batches.losses, history
    losses, history = runs[True]
    first_bad = next(i for i, loss in enumerate(losses) if not np.isfinite(loss))
    assert first_bad < 8  # diverges within the first epoch
    assert len(losses) == first_bad + 1  # no batch after the first non-finite loss
    assert len(history["loss"]) == 1 and not np.isfinite(history["loss"][0])
    # Without the callback the same run goes on through all 3 × 8 batches.
    assert len(runs[False][0]) == 24 and len(runs[False][1]["loss"]) == 3


# ----------------------------------------------------------------------------
# keras.layers.Softmax() as the output is the softmax activation.
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("rule", list(RULES))
def test_softmax_output_layer_equals_softmax_activation(rule):
    if not getattr(RULES[rule], "classifier_layer", True):
        pytest.skip(f"{rule} has no output layer (it classifies by goodness)")
    x, y = _data(n=16)
    with_activation = RULES[rule](_network(), seed=0)
    with_layer = RULES[rule](_network(output_layer_softmax=True), seed=0)
    for ours, expected in zip(with_layer.compute_updates(x, y),
                              with_activation.compute_updates(x, y)):
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-7)
    with_layer.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["accuracy"])
    logs = with_layer.fit(x, y, batch_size=8, verbose=0).history
    assert np.isfinite(logs["loss"][0])


# ----------------------------------------------------------------------------
# Backprop applies kernel/bias regularizers exactly as Keras's own fit.
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_backprop_regularizers_match_keras_fit(momentum):
    regularized = dict(kernel_regularizer=keras.regularizers.L2(0.05),
                       bias_regularizer=keras.regularizers.L1(0.01))
    x, y = _data(n=32)
    onehot = np.eye(4, dtype="float32")[y]

    network = _network(**regularized)
    network.layers[-1].bias.assign(np.full(4, 0.3, "float32"))  # L1 needs w ≠ 0
    plain = keras.models.clone_model(network)
    plain.set_weights(network.get_weights())
    start = network.get_weights()

    model = pepita_keras.Backprop(network, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.2, momentum=momentum))
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    plain.compile(optimizer=keras.optimizers.SGD(0.2, momentum=momentum),
                  loss="categorical_crossentropy")
    plain.fit(x, onehot, batch_size=8, epochs=2, shuffle=False, verbose=0)

    # The same 8 steps without the penalties end elsewhere: the test can fail.
    unregularized = _network()
    unregularized.set_weights(start)
    reference = pepita_keras.Backprop(unregularized, seed=0)
    reference.compile(optimizer=keras.optimizers.SGD(0.2, momentum=momentum))
    reference.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)

    for ours, theirs, without in zip(network.get_weights(), plain.get_weights(),
                                     unregularized.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
        assert not np.allclose(ours, without, rtol=1e-3, atol=1e-4)
