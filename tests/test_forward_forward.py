"""Forward-Forward against its equations: a NumPy step, autodiff of the layer loss, prediction.

The expectations come from the rule's module docstring (Hinton 2022; the
keras-io example's choices): an independent NumPy implementation of a whole
training step (label embedding, per-layer normalisation, goodness, the
softplus loss's derivative, layer-by-layer local steps), TensorFlow's
autodiff of each layer's loss for the closed-form derivative, and the
prediction by summed goodness.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pepita_keras import build, experiment_config, paper_networks
from pepita_keras.rules.forward_forward import NORM_EPSILON, ForwardForward, embed_labels

NUM_CLASSES, THRESHOLD = 3, 0.4


def _model(local_steps=1, seed=0, dropout=0.0):
    network = paper_networks.paper_fc((12,), None, hidden_units=(8, 6), use_bias=True, dropout=dropout,
                                      seed=seed)
    for layer in network.layers:  # biases away from 0, so their update matters
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(np.random.default_rng(seed).uniform(-0.3, 0.3, layer.bias.shape))
    model = ForwardForward(network, num_classes=NUM_CLASSES, threshold=THRESHOLD,
                           local_steps=local_steps, seed=seed)
    model.compile(optimizer=keras.optimizers.SGD(0.5), metrics=["accuracy"])
    return model


def _data(size=16):
    rng = np.random.default_rng(3)
    return (rng.uniform(0, 1, (size, 12)).astype("float32"),
            rng.integers(0, NUM_CLASSES, size))


# --- NumPy, from the equations ------------------------------------------------
def np_embed(x, labels):
    x = x.copy()
    x[:, :NUM_CLASSES] = np.eye(NUM_CLASSES)[labels] * x.max(axis=1, keepdims=True)
    return x


def np_layer(h, kernel, bias):
    d = h / (np.linalg.norm(h, axis=1, keepdims=True) + NORM_EPSILON)
    return d, np.maximum(d @ kernel + bias, 0)


def np_step(weights, x, labels, negative, lr, local_steps):
    """One SGD step of Forward-Forward: `weights` is [(kernel, bias)] per layer (float64)."""
    weights = [(k.copy(), b.copy()) for k, b in weights]
    h_pos, h_neg = np_embed(x, labels), np_embed(x, negative)
    for index, (kernel, bias) in enumerate(weights):
        for _ in range(local_steps):
            grads_k, grads_b = 0, 0
            for h, sign in ((h_pos, -1.0), (h_neg, 1.0)):
                d, out = np_layer(h, kernel, bias)
                g = np.mean(out**2, axis=1)
                slope = sign / (1 + np.exp(-sign * (g - THRESHOLD)))  # s·σ(s(g − θ))
                delta = slope[:, None] * 2 * out / out.shape[1]
                grads_k = grads_k + d.T @ delta
                grads_b = grads_b + delta.sum(axis=0)
            kernel -= lr * grads_k / (2 * len(x))
            bias -= lr * grads_b / (2 * len(x))
        weights[index] = (kernel, bias)
        h_pos, h_neg = np_layer(h_pos, kernel, bias)[1], np_layer(h_neg, kernel, bias)[1]
    return weights


def np_scores(weights, x):
    scores = np.zeros((len(x), NUM_CLASSES))
    for label in range(NUM_CLASSES):
        h = np_embed(x, np.full(len(x), label))
        for kernel, bias in weights:
            h = np_layer(h, kernel, bias)[1]
            scores[:, label] += np.mean(h**2, axis=1)
    return scores


def _weights(model):
    return [(np.array(b.layer.kernel, "float64"), np.array(b.layer.bias, "float64"))
            for b in model.blocks]


@pytest.mark.parametrize("local_steps", [1, 3])
def test_one_training_step_equals_the_numpy_equations(local_steps):
    model = _model(local_steps)
    x, y = _data()
    negative = (y + np.random.default_rng(5).integers(1, NUM_CLASSES, len(y))) % NUM_CLASSES
    model.negative_labels = lambda labels: tf.constant(negative, "int32")
    before = _weights(model)
    model.train_on_batch(x, y)
    expected = np_step(before, x.astype("float64"), y, negative, 0.5, local_steps)
    for (kernel, bias), (want_k, want_b) in zip(_weights(model), expected):
        np.testing.assert_allclose(kernel, want_k, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(bias, want_b, rtol=1e-4, atol=1e-6)
    # Every layer moved, once per local step: 2 layers × local_steps optimizer steps.
    assert int(model.optimizer.iterations) == 2 * local_steps
    assert all(not np.allclose(a[0], b[0]) for a, b in zip(_weights(model), before))


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_layer_updates_are_the_gradient_of_the_layer_loss(dropout):
    from pepita_keras.core import DropoutMasks

    model = _model(dropout=dropout)
    # With dropout, every pass of the step shares the step's masks (drawn once).
    masks = DropoutMasks(tf.constant([5, 0], "int64")) if dropout else None
    x, y = _data()
    h_pos = embed_labels(tf.constant(x), tf.constant(y), NUM_CLASSES)
    h_neg = embed_labels(tf.constant(x), tf.constant((y + 1) % NUM_CLASSES), NUM_CLASSES)
    for index, block in enumerate(model.blocks):
        variables = [block.layer.kernel, block.layer.bias]
        with tf.GradientTape() as tape:
            g_pos = model.goodness(model.layer_pass(index, h_pos, masks)[1])
            g_neg = model.goodness(model.layer_pass(index, h_neg, masks)[1])
            # keras-io's loss: log(1 + exp([−g⁺ + θ, g⁻ − θ])), averaged over the 2B.
            loss = tf.reduce_mean(tf.math.softplus(
                tf.concat([THRESHOLD - g_pos, g_neg - THRESHOLD], axis=0)))
        expected = tape.gradient(loss, variables)
        actual = model.layer_updates(index, h_pos, h_neg, masks=masks)
        for got, want in zip(actual, expected):
            np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-4, atol=1e-7)
        h_pos = model.layer_pass(index, h_pos, masks)[1]
        h_neg = model.layer_pass(index, h_neg, masks)[1]
    if dropout:  # the masks were used (and some units dropped)
        assert masks.masks and any(np.any(np.array(m) == 0) for m in masks.masks.values())


def test_prediction_is_the_label_of_highest_summed_goodness():
    model = _model()
    x, _ = _data()
    scores = np_scores(_weights(model), x.astype("float64"))
    predicted = model.predict(x, verbose=0)
    softmax = np.exp(scores - scores.max(axis=1, keepdims=True))
    np.testing.assert_allclose(predicted, softmax / softmax.sum(axis=1, keepdims=True),
                               rtol=1e-5)
    np.testing.assert_array_equal(predicted.argmax(axis=1), scores.argmax(axis=1))


def test_labels_are_written_into_the_first_values_at_the_example_maximum():
    x = np.random.default_rng(0).uniform(0, 1, (4, 2, 3, 2)).astype("float32")
    labels = np.array([0, 2, 1, 2])
    embedded = np.array(embed_labels(tf.constant(x), tf.constant(labels), NUM_CLASSES))
    flat, original = embedded.reshape(4, -1), x.reshape(4, -1)
    np.testing.assert_array_equal(flat[:, NUM_CLASSES:], original[:, NUM_CLASSES:])
    np.testing.assert_array_equal(
        flat[:, :NUM_CLASSES], np.eye(NUM_CLASSES)[labels] * original.max(axis=1)[:, None])


def test_negative_labels_are_always_wrong_and_vary_with_the_step():
    model = _model()
    labels = tf.constant(np.arange(300) % NUM_CLASSES, "int32")
    first = np.array(model.negative_labels(labels))
    second = np.array(model.negative_labels(labels))
    assert not np.any(first == np.array(labels)) and not np.any(second == np.array(labels))
    assert set(first.tolist()) == set(range(NUM_CLASSES))
    assert not np.array_equal(first, second)  # a new draw each step (the seed state advances)


def test_a_network_with_a_classifier_head_is_refused_naming_the_layer():
    with pytest.raises(ValueError, match="layer 'output' .* activation 'softmax'"):
        ForwardForward(paper_networks.paper_fc((12,), 3, hidden_units=(8,), dropout=0), num_classes=3)
    with pytest.raises(ValueError, match="num_classes must be an integer in \\[2, 12\\)"):
        ForwardForward(paper_networks.paper_fc((12,), None, hidden_units=(8,), dropout=0),
                       num_classes=12)


def test_the_ff_mnist_cell_builds_the_keras_io_network_and_optimizer():
    config = experiment_config.load_config("ff_mnist")
    model = build.build_model(config, seed=0, steps_per_epoch=1)
    dense = [layer for layer in model.network.layers if isinstance(layer, keras.layers.Dense)]
    assert [(layer.units, layer.use_bias) for layer in dense] == [(500, True), (500, True)]
    assert type(dense[0].kernel_initializer).__name__ == "GlorotUniform"
    assert isinstance(model, ForwardForward) and model.num_classes == 10
    assert (model.threshold, model.local_steps) == (1.5, 50)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.03)
    # Adam with momentum is a contradiction, refused before anything runs.
    with pytest.raises(ValueError, match="momentum applies to optimizer='sgd' only"):
        config.replace(momentum=0.9)
    # Fields added for this cell stay out of every other config's params and digests.
    assert not {"optimizer", "use_bias"} & set(experiment_config.load_config("fc_mnist_pepita")
                                               .flatten())


@pytest.mark.slow
def test_forward_forward_learns_mnist_like_data():
    from pepita_keras import input_pipeline

    # The cell's net and Adam(0.03), mini-batches of 50 with 3 local steps (measured: 90%
    # test accuracy after 3 epochs, 100% after 4, on these 3000 prototype-plus-noise images).
    config = experiment_config.load_config("ff_mnist").replace(
        batch_size=50, rule_kwargs=(("threshold", 1.5), ("local_steps", 3)))
    (x, y), (x_test, y_test) = input_pipeline.synthetic_arrays(config, 3000, 1000)
    keras.utils.set_random_seed(0)
    model = build.build_model(config, seed=0, steps_per_epoch=60)
    model.fit(x, y, batch_size=50, epochs=4, verbose=0, shuffle=False)
    accuracy = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
    assert accuracy > 0.9, accuracy
