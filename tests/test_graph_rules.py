"""`pepita_keras.convert`: the rules on residual, normalised and attention graphs (issue 33).

Expectations come from the equations: NumPy statements of the graph rules
(tests/reference/graph_numpy.py), Keras's own gradients for backprop,
identities (FA with B = W is backprop; uSF/frSF are FA with their B; on the
paper's chains the graph rules equal the chain rules, which have their own
NumPy tests), and closed forms (KP's W − B decay, BatchNorm's moving mean).
"""

import numpy as np
import pytest

import keras
import tensorflow as tf

import pepita_keras
from pepita_keras import graph, modern_networks, paper_networks
from pepita_keras.feedback_paths import feedback_kernels
from pepita_keras.rules import graph_dfa, graph_feedback_alignment, graph_pepita
from reference import graph_numpy

RULES = ("bp", "fa", "dfa", "drtp", "pepita", "usf", "brsf", "frsf", "kp")


def _batch(shape, batch=16, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((batch,) + tuple(shape)).astype(keras.config.floatx()),
            rng.integers(0, classes, batch))


def _close(actual, expected, rtol=1e-4, atol=1e-6):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


def _residual_net(d=6, h=5, classes=4):
    inputs = keras.Input((d,))
    a1 = keras.layers.Dense(h, name="W1", bias_initializer="random_normal")(inputs)
    u = keras.layers.ReLU(name="relu_u")(keras.layers.LayerNormalization(
        name="ln", gamma_initializer="random_uniform", beta_initializer="random_normal")(a1))
    r = keras.layers.Dense(h, name="W2", bias_initializer="random_normal")(u)
    s = keras.layers.ReLU(name="relu_s")(keras.layers.Add()([u, r]))
    z = keras.layers.Dense(classes, name="W3", bias_initializer="random_normal")(s)
    return keras.Model(inputs, keras.layers.Softmax()(z))


def _residual_parameters(net):
    ln = net.get_layer("ln")
    values = {"gamma": ln.gamma, "beta": ln.beta}
    for name in ("W1", "W2", "W3"):
        layer = net.get_layer(name)
        values[name], values["b" + name[1]] = layer.kernel, layer.bias
    return {key: np.asarray(value, dtype="float64") for key, value in values.items()}


def _by_name(model, updates):
    names = {}
    for variable, update in zip(model.trainable_variables, updates):
        layer, kind = variable.path.split("/")[-2:]
        key = {"kernel": "W", "bias": "b"}.get(kind, kind)
        if layer.startswith("W"):
            key = key + layer[1] if key == "b" else layer
        names[key] = np.asarray(update)
    return names


# ---------------------------------------------------------------------------
# NumPy references, one per new layer kind and rule.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("last_layer_error", ["modulated", "clean"])
def test_pepita_on_a_residual_layer_norm_net_matches_numpy(float64, last_layer_error):
    keras.utils.set_random_seed(1)
    net = _residual_net()
    model = graph_pepita.GraphPEPITA(net, feedback_scale=0.5, seed=2,
                                     last_layer_error=last_layer_error)
    x, y = _batch((6,), classes=4)
    expected = graph_numpy.residual_pepita(x, np.eye(4)[y], _residual_parameters(net),
                                           np.asarray(model.feedback_matrix), last_layer_error)
    found = _by_name(model, model.compute_updates(x, y))
    assert set(found) == set(expected)
    for key in expected:
        _close(found[key], expected[key], rtol=1e-9, atol=1e-12)


def test_feedback_alignment_on_a_residual_layer_norm_net_matches_numpy(float64):
    keras.utils.set_random_seed(3)
    net = _residual_net()
    model = graph_feedback_alignment.GraphFeedbackAlignment(net, seed=4)
    x, y = _batch((6,), classes=4)
    feedback = {name: np.asarray(model.feedback_variables[id(net.get_layer(name).kernel)])
                for name in ("W2", "W3")}
    expected = graph_numpy.residual_feedback_alignment(
        x, np.eye(4)[y], _residual_parameters(net), feedback["W2"], feedback["W3"])
    found = _by_name(model, model.compute_updates(x, y))
    for key in expected:
        _close(found[key], expected[key], rtol=1e-9, atol=1e-12)


def test_dfa_on_a_residual_layer_norm_net_matches_numpy(float64):
    keras.utils.set_random_seed(5)
    net = _residual_net()
    model = graph_dfa.GraphDirectFeedbackAlignment(net, seed=6)
    assert [layer.name for layer in model.hidden_layers] == ["W1", "ln", "W2"]
    x, y = _batch((6,), classes=4)
    d1, d_ln, d2 = (np.asarray(matrix) for matrix in model.feedback_matrices)
    expected = graph_numpy.residual_dfa(x, np.eye(4)[y], _residual_parameters(net), d1, d_ln, d2)
    found = _by_name(model, model.compute_updates(x, y))
    for key in expected:
        _close(found[key], expected[key], rtol=1e-9, atol=1e-12)


def test_pepita_with_batch_norm_matches_numpy_and_moves_statistics_once(float64):
    keras.utils.set_random_seed(7)
    inputs = keras.Input((5,))
    a1 = keras.layers.Dense(6, name="W1", bias_initializer="random_normal")(inputs)
    u = keras.layers.ReLU()(keras.layers.BatchNormalization(
        name="bn", gamma_initializer="random_uniform", beta_initializer="random_normal")(a1))
    z = keras.layers.Dense(3, name="W2", bias_initializer="random_normal")(u)
    net = keras.Model(inputs, keras.layers.Softmax()(z))
    model = graph_pepita.GraphPEPITA(net, feedback_scale=0.5, seed=8)
    x, y = _batch((5,), classes=3)
    bn = net.get_layer("bn")
    parameters = {"W1": net.get_layer("W1").kernel, "b1": net.get_layer("W1").bias,
                  "gamma": bn.gamma, "beta": bn.beta,
                  "W2": net.get_layer("W2").kernel, "b2": net.get_layer("W2").bias}
    parameters = {key: np.asarray(value, dtype="float64") for key, value in parameters.items()}
    expected, clean_mean = graph_numpy.batch_norm_pepita(
        x, np.eye(3)[y], parameters, np.asarray(model.feedback_matrix))
    found = _by_name(model, model.compute_updates(x, y, training=True))
    for key in expected:
        _close(found[key], expected[key], rtol=1e-9, atol=1e-12)
    # One training step moves the moving mean once, from the clean pass (momentum 0.99).
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    _close(bn.moving_mean, 0.01 * clean_mean, rtol=1e-9, atol=1e-12)


def test_pepita_on_a_conv1d_net_matches_numpy(float64):
    keras.utils.set_random_seed(9)
    inputs = keras.Input((7, 2))
    h = keras.layers.Conv1D(3, 3, activation="relu", name="conv",
                            bias_initializer="random_normal")(inputs)
    z = keras.layers.Dense(4, name="head")(keras.layers.Flatten()(h))
    net = keras.Model(inputs, keras.layers.Softmax()(z))
    model = graph_pepita.GraphPEPITA(net, feedback_scale=0.5, seed=10)
    x, y = _batch((7, 2), classes=4)
    conv, head = net.get_layer("conv"), net.get_layer("head")
    parameters = {key: np.asarray(value, dtype="float64") for key, value in
                  {"K": conv.kernel, "c": conv.bias, "W": head.kernel, "b": head.bias}.items()}
    expected = graph_numpy.conv1d_pepita(x, np.eye(4)[y], parameters,
                                         np.asarray(model.feedback_matrix))
    updates = [np.asarray(u) for u in model.compute_updates(x, y)]
    for update, key in zip(updates, ("K", "c", "W", "b")):
        _close(update, expected[key], rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------
# Identities over every supported layer kind.
# ---------------------------------------------------------------------------
def _every_kind_net():
    """Conv1D, DepthwiseConv2D, SeparableConv2D, GroupNorm, EinsumDense, attention,
    Concatenate, Multiply, global pooling: one of each, in one graph."""
    inputs = keras.Input((6, 6, 2))
    h = keras.layers.DepthwiseConv2D(3, padding="same")(inputs)
    h = keras.layers.SeparableConv2D(4, 3, padding="same", activation="tanh")(h)
    h = keras.layers.GroupNormalization(groups=2)(h)
    g = keras.layers.GlobalAveragePooling2D()(h)
    tokens = keras.layers.Reshape((9, 8))(keras.layers.AveragePooling2D(2)(
        keras.layers.Concatenate()([h, keras.layers.Conv2D(4, 1)(inputs)])))
    tokens = keras.layers.Conv1D(8, 2, padding="same")(tokens)
    attended = keras.layers.MultiHeadAttention(2, 4)(tokens, tokens)
    mixed = keras.layers.Multiply()([tokens, keras.layers.Activation("sigmoid")(attended)])
    pooled = keras.layers.GlobalMaxPooling1D()(keras.layers.EinsumDense(
        "btd,de->bte", output_shape=(None, 6), activation="relu")(mixed))
    z = keras.layers.Dense(5)(keras.layers.Concatenate()([pooled, g]))
    return keras.Model(inputs, keras.layers.Softmax()(z))


def _nets():
    return {"resnet": (lambda: modern_networks.small_resnet((12, 12, 1), 5, seed=0, filters=3),
                       (12, 12, 1), 5),
            "vit": (lambda: modern_networks.tiny_vit((14, 14, 1), 5, seed=0, dim=8, patch=7,
                                                     mlp_units=8), (14, 14, 1), 5),
            "every_kind": (_every_kind_net, (6, 6, 2), 5)}


def _keras_gradients(net, x, y, classes):
    with tf.GradientTape() as tape:
        prediction = net(x, training=True)
        loss = tf.reduce_mean(keras.losses.categorical_crossentropy(np.eye(classes)[y],
                                                                    prediction))
    return tape.gradient(loss, net.trainable_variables)


@pytest.mark.parametrize("name", ["resnet", "vit", "every_kind"])
def test_backprop_through_convert_equals_keras_gradients(name, float64):
    keras.utils.set_random_seed(11)
    make, shape, classes = _nets()[name]
    net = make()
    model = pepita_keras.convert(net, "bp", seed=0)
    assert isinstance(model, pepita_keras.rules.GraphBackprop)
    x, y = _batch(shape, classes=classes)
    expected = _keras_gradients(net, x, y, classes)
    for update, gradient in zip(model.compute_updates(x, y), expected):
        _close(update, gradient, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["resnet", "vit", "every_kind"])
def test_feedback_alignment_with_feedback_equal_to_the_kernels_is_backprop(name, float64):
    # FA replaces each kernel in the backward path: with B = W nothing changes.
    keras.utils.set_random_seed(12)
    make, shape, classes = _nets()[name]
    net = make()
    model = pepita_keras.convert(net, "fa", seed=0)
    x, y = _batch(shape, classes=classes)
    expected = _keras_gradients(net, x, y, classes)
    moved = [np.abs(np.asarray(u) - np.asarray(g)).max()
             for u, g in zip(model.compute_updates(x, y), expected)]
    assert max(moved) > 1e-6  # with random B the updates differ
    for layer in model.graph.parameterised:
        for kernel, feedback in zip(feedback_kernels(layer), model.feedback_of(layer)):
            feedback.assign(kernel)
    for update, gradient in zip(model.compute_updates(x, y), expected):
        _close(update, gradient, rtol=1e-9, atol=1e-12)


def test_sign_symmetry_rules_are_feedback_alignment_with_their_feedback(float64):
    keras.utils.set_random_seed(13)
    make, shape, classes = _nets()["vit"]
    x, y = _batch(shape, classes=classes)
    net = make()
    fa = pepita_keras.convert(net, "fa", seed=0)
    usf = pepita_keras.convert(net, "usf", seed=0)
    frsf = pepita_keras.convert(net, "frsf", seed=1)
    for rule, feedback in ((usf, lambda w, layer, i: np.sign(w) * np.sqrt(np.mean(w ** 2))),
                           (frsf, lambda w, layer, i: np.abs(np.asarray(
                               frsf.feedback_of(layer)[i])) * np.sign(w))):
        for layer in fa.graph.parameterised:
            for index, (kernel, matrix) in enumerate(zip(
                    feedback_kernels(layer),
                    fa.feedback_of(layer))):
                matrix.assign(feedback(np.asarray(kernel), layer, index))
        for a, b in zip(rule.compute_updates(x, y), fa.compute_updates(x, y)):
            _close(a, b, rtol=1e-9, atol=1e-12)


def test_brsf_redraws_its_magnitudes_every_step_reproducibly():
    make, shape, classes = _nets()["resnet"]
    x, y = _batch(shape, classes=classes)
    first = pepita_keras.convert(make(), "brsf", seed=3)
    second = pepita_keras.convert(make(), "brsf", seed=3)
    step_a = [np.asarray(u) for u in first.compute_updates(x, y)]
    step_b = [np.asarray(u) for u in first.compute_updates(x, y)]  # the next step's draw
    assert max(np.abs(a - b).max() for a, b in zip(step_a, step_b)) > 0
    again = [np.asarray(u) for u in second.compute_updates(x, y)]
    for a, b in zip(step_a, again):
        np.testing.assert_array_equal(a, b)


def test_kolen_pollack_decays_the_difference_of_w_and_b():
    # Plain SGD at rate η: W and B get the same G plus λ·(own value), so
    # W − B ← (W − B)(1 − ηλ) at every step, from any start.
    make, shape, classes = _nets()["resnet"]
    model = pepita_keras.convert(make(), "kp", decay=0.1, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    kernels = [v for layer in model.graph.parameterised for v in feedback_kernels(layer)]
    before = [np.asarray(k) - np.asarray(model.feedback_variables[id(k)]) for k in kernels]
    x, y = _batch(shape, classes=classes)
    model.fit(x, y, batch_size=len(x), epochs=2, shuffle=False, verbose=0)
    for kernel, difference in zip(kernels, before):
        after = np.asarray(kernel) - np.asarray(model.feedback_variables[id(kernel)])
        _close(after, difference * (1 - 0.5 * 0.1) ** 2, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------
# The paper's chains: convert keeps the chain classes; the graph forms agree.
# ---------------------------------------------------------------------------
def test_convert_gives_the_chain_classes_on_the_paper_networks():
    net = paper_networks.paper_fc((28, 28, 1), 10, seed=0)
    for rule, cls in (("pepita", pepita_keras.PEPITA), ("fa", pepita_keras.FeedbackAlignment),
                      ("bp", pepita_keras.Backprop), ("drtp", pepita_keras.DRTP)):
        assert type(pepita_keras.convert(net, rule, seed=0)) is cls


@pytest.mark.parametrize("architecture", ["fc", "conv"])
@pytest.mark.parametrize("rule", ["pepita", "dfa", "drtp", "bp"])
def test_graph_rules_on_the_paper_chains_equal_the_chain_rules(architecture, rule):
    build = paper_networks.paper_fc if architecture == "fc" else paper_networks.paper_conv
    net = build((28, 28, 1), 10, seed=0)
    chain = pepita_keras.convert(net, rule, seed=3)
    from pepita_keras import conversion

    graph_rule = conversion.graph_rule_class(rule)(net, seed=3)
    x, y = _batch((28, 28, 1), batch=32)
    for training in (False, True):  # dropout masks are drawn alike
        for a, b in zip(chain.compute_updates(x, y, training=training),
                        graph_rule.compute_updates(x, y, training=training)):
            scale = float(np.abs(np.asarray(a)).max())
            # float32: PEPITA's chain form modulates the first layer as x W + (F e) W.
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=0,
                                       atol=1e-3 * scale)


def test_graph_feedback_alignment_on_the_paper_chain_equals_the_chain_rule():
    net = paper_networks.paper_fc((28, 28, 1), 10, seed=0)
    chain = pepita_keras.FeedbackAlignment(net, seed=3)
    graph_fa = graph_feedback_alignment.GraphFeedbackAlignment(net, seed=3)
    for block, matrix in zip(chain.blocks[1:], chain.feedback_matrices):
        graph_fa.feedback_variables[id(block.layer.kernel)].assign(matrix)
    x, y = _batch((28, 28, 1), batch=32)
    for a, b in zip(chain.compute_updates(x, y, training=True),
                    graph_fa.compute_updates(x, y, training=True)):
        _close(b, a, rtol=1e-4, atol=1e-7)


# ---------------------------------------------------------------------------
# What is refused, and saving.
# ---------------------------------------------------------------------------
def test_a_model_with_an_lstm_is_refused_naming_it():
    inputs = keras.Input((5, 3))
    h = keras.layers.LSTM(4, name="my_lstm")(inputs)
    net = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(h))
    with pytest.raises(ValueError, match=r"'my_lstm' \(LSTM\).*Supported layers: .*Add.*"
                                         r"MultiHeadAttention") as error:
        pepita_keras.convert(net, "pepita")
    assert "\n" not in str(error.value)


def test_forward_forward_and_shared_layers_are_refused_on_graphs():
    net = modern_networks.small_resnet((12, 12, 1), 5, seed=0, filters=3)
    with pytest.raises(ValueError, match="Forward-Forward .* Rules on any graph: bp, brsf"):
        pepita_keras.convert(net, "ff")
    inputs = keras.Input((4,))
    shared = keras.layers.Dense(4, name="shared")
    h = keras.layers.Add()([shared(inputs), shared(keras.layers.ReLU()(inputs))])
    with pytest.raises(ValueError, match="'shared' .* is called 2 times"):
        pepita_keras.convert(keras.Model(inputs, keras.layers.Softmax()(h)), "fa")


def test_an_ops_call_in_the_graph_is_refused_as_an_operation():
    inputs = keras.Input((4,))
    h = keras.layers.Dense(3)(inputs * 2.0)
    with pytest.raises(ValueError, match=r"keras\.ops call .* not a layer"):
        pepita_keras.convert(keras.Model(inputs, keras.layers.Softmax()(h)), "fa")


def test_a_network_without_a_softmax_output_is_refused():
    inputs = keras.Input((4,))
    h = keras.layers.LayerNormalization()(keras.layers.Dense(3)(inputs))
    with pytest.raises(ValueError, match="must end in a softmax"):
        pepita_keras.convert(keras.Model(inputs, h), "dfa")


@pytest.mark.parametrize("rule", RULES)
def test_graph_rule_models_round_trip_through_keras_files(rule, tmp_path):
    make, shape, classes = _nets()["resnet"]
    model = pepita_keras.convert(make(), rule, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), metrics=["accuracy"])
    x, y = _batch(shape, classes=classes)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / f"{rule}.keras"
    model.save(path)
    loaded = pepita_keras.saving.load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    # Training goes on identically from the file (feedback weights, optimizer, step seed).
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    loaded.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.network.get_weights(), loaded.network.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_supported_layer_list_is_the_issue_list():
    names = graph.supported_names()
    for name in ("Dense", "EinsumDense", "Conv1D", "Conv2D", "DepthwiseConv2D",
                 "SeparableConv2D", "BatchNormalization", "LayerNormalization",
                 "GroupNormalization", "MultiHeadAttention", "Add", "Concatenate", "Multiply",
                 "Reshape", "Flatten", "MaxPooling2D", "GlobalAveragePooling2D", "Dropout",
                 "Activation", "ReLU", "Softmax"):
        assert name in names


# ---------------------------------------------------------------------------
# The issue's bar on real MNIST (slow: 12 short trainings, ~3 min).
# ---------------------------------------------------------------------------
# Measured here (10k train images, 3 epochs, test set, seed 0), for reference:
# ResNet BP 96.1, FA 87.5, DFA 90.6, uSF 95.8, KP 96.0, PEPITA (F 0.003) 91.2;
# ViT BP 92.5, FA 78.8, DFA 87.1, uSF 91.1, KP 88.4, PEPITA (F 0.003) 88.2.
# PEPITA takes its cells' searched F scale: with 0.01 the ViT fell to 27% in epoch 3.
REAL_RULES = {"bp": {}, "fa": {}, "dfa": {}, "usf": {}, "kp": {},
              "pepita": {"feedback_scale": 0.003}}


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.parametrize("architecture", ["small_resnet", "tiny_vit"])
def test_convert_trains_a_resnet_and_a_vit_on_real_mnist(architecture):
    from pepita_keras import datasets

    data = datasets.load("mnist", batch_size=64, seed=0, subset=(10000, 10000))
    for rule, arguments in REAL_RULES.items():
        keras.utils.set_random_seed(0)
        network = getattr(modern_networks, architecture)(seed=0)
        assert 12_000 <= network.count_params() <= 16_000
        model = pepita_keras.convert(network, rule, seed=0, **arguments)
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), metrics=["accuracy"])
        history = model.fit(data.train, epochs=3, validation_data=data.test, verbose=0)
        accuracy = 100 * history.history["val_accuracy"][-1]
        print(f"{architecture} {rule}: {accuracy:.2f}% after 3 epochs on 10k images")
        assert accuracy >= (85.0 if rule == "bp" else 50.0), (rule, accuracy)


# ---------------------------------------------------------------------------
# Keras-JAX: the same graph rules, the same updates (a fresh process).
# ---------------------------------------------------------------------------
_JAX_SCRIPT = r"""
import sys, numpy as np, keras, pepita_keras
from pepita_keras import modern_networks
assert keras.backend.backend() == "jax"
rng = np.random.default_rng(0)
x = rng.random((32, 14, 14, 1)).astype("float32"); y = rng.integers(0, 5, 32)
found = {}
for arch in ("resnet", "vit"):
    for rule in ("bp", "fa", "dfa", "drtp", "pepita", "usf", "brsf", "frsf", "kp"):
        net = (modern_networks.small_resnet((14, 14, 1), 5, seed=0, filters=3) if arch == "resnet"
               else modern_networks.tiny_vit((14, 14, 1), 5, seed=0, dim=8, patch=7, mlp_units=8))
        weights = np.random.default_rng(1)
        net.set_weights([weights.normal(0, 0.3, w.shape).astype("float32") for w in net.get_weights()])
        model = pepita_keras.convert(net, rule, seed=0)
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), metrics=["accuracy"])
        found[f"{arch}_{rule}"] = np.concatenate(
            [np.ravel(np.asarray(u)) for u in model.compute_updates(x, y)])
        history = model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
        assert np.isfinite(history.history["loss"][-1]), (arch, rule)
np.savez(sys.argv[1], **found)
"""


@pytest.mark.slow  # a fresh Keras-JAX process: ~1 min
def test_graph_rules_train_under_keras_jax_with_the_same_updates(tmp_path):
    import os
    import subprocess
    import sys

    script = tmp_path / "jax_rules.py"
    script.write_text(_JAX_SCRIPT)
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "jax.npz")],
                            env=dict(os.environ, KERAS_BACKEND="jax"), capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    jax_updates = np.load(tmp_path / "jax.npz")
    rng = np.random.default_rng(0)
    x = rng.random((32, 14, 14, 1)).astype("float32")
    y = rng.integers(0, 5, 32)
    # Feedback matrices are drawn by each backend's own generator; the rules whose updates
    # depend on the weights alone must agree to float32 rounding.
    for arch in ("resnet", "vit"):
        for rule in ("bp", "usf"):
            net = (modern_networks.small_resnet((14, 14, 1), 5, seed=0, filters=3)
                   if arch == "resnet" else
                   modern_networks.tiny_vit((14, 14, 1), 5, seed=0, dim=8, patch=7, mlp_units=8))
            weights = np.random.default_rng(1)
            net.set_weights([weights.normal(0, 0.3, w.shape).astype("float32")
                             for w in net.get_weights()])
            model = pepita_keras.convert(net, rule, seed=0)
            expected = np.concatenate([np.ravel(np.asarray(u))
                                       for u in model.compute_updates(x, y)])
            np.testing.assert_allclose(jax_updates[f"{arch}_{rule}"], expected, rtol=0,
                                       atol=1e-4 * np.abs(expected).max())


@pytest.mark.slow  # two smoke reproductions
def test_pepita_reproduce_trains_several_cells_in_one_command(tmp_path, capsys):
    from pepita_keras import cli
    from pepita_keras.store import tracking

    uri = f"sqlite:///{tmp_path / 'store.db'}"
    code = cli.main(["reproduce", "vit_mnist_fa", "resnet_mnist_usf", "--smoke", "--synthetic",
                     "--verbose", "0", "--tracking-uri", uri, "--run-root",
                     str(tmp_path / "runs")])
    assert code == 0
    out = capsys.readouterr().out
    assert "vit_mnist_fa-smoke: MLflow parent run" in out
    assert "resnet_mnist_usf-smoke: MLflow parent run" in out
    client = tracking.read_client(uri)
    runs = client.search_runs([client.get_experiment_by_name(
        tracking.REPRODUCTIONS_EXPERIMENT).experiment_id])
    assert sorted(r.info.run_name for r in runs if r.data.tags["pepita.role"] == "cell") == [
        "resnet_mnist_usf-smoke", "vit_mnist_fa-smoke"]


@pytest.mark.parametrize("rule", ["fa", "pepita", "kp"])
def test_graph_rules_train_under_mixed_precision(rule):
    keras.config.set_dtype_policy("mixed_float16")
    try:
        net = modern_networks.small_resnet((12, 12, 1), 5, seed=0, filters=3)
        model = pepita_keras.convert(net, rule, seed=0)
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), metrics=["accuracy"])
        x, y = _batch((12, 12, 1), batch=32, classes=5)
        before = [np.asarray(w) for w in net.get_weights()]
        history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][-1])
        assert all(np.isfinite(np.asarray(w, dtype="float32")).all() for w in net.get_weights())
        assert any(not np.array_equal(a, np.asarray(b)) for a, b in zip(before, net.get_weights()))
    finally:
        keras.config.set_dtype_policy("float32")
