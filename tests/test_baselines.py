"""Backprop, Feedback Alignment, DFA and DRTP against their equations.

Expectations come from tests/reference/baselines_numpy.py (an independent
NumPy statement of each rule), from closed forms (FA with B_l = W_l is
backprop; DFA with one hidden layer and D_1 = W_2ᵀ is backprop; DRTP's
hidden updates ignore the output layer and are DFA's with e → onehot) and
from plain Keras (`tf.GradientTape` of the Keras CE loss; `network.fit`).
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import pepita_keras
from pepita_keras.rules import drtp as drtp_module
from tests.reference import baselines_numpy as ref

RTOL = 1e-5
ATOL = 1e-6
NUM_CLASSES = 3
RULES = {
    "bp": pepita_keras.Backprop,
    "fa": pepita_keras.FeedbackAlignment,
    "dfa": pepita_keras.DirectFeedbackAlignment,
    "drtp": pepita_keras.DRTP,
}
FEEDBACK_RULES = ("fa", "dfa", "drtp")


# ----------------------------------------------------------------------------
# Networks and data.
# ----------------------------------------------------------------------------
def _dense(units, activation, use_bias, seed):
    return keras.layers.Dense(
        units,
        activation=activation,
        use_bias=use_bias,
        kernel_initializer=keras.initializers.HeUniform(seed),
        bias_initializer=keras.initializers.RandomUniform(-0.2, 0.2, seed + 100),
    )


def fc_net(use_bias=True, dropout=0.0, activations=("relu", "relu"), seed=0, output="softmax"):
    """6 → 5 → 4 → 3 (softmax, or `output`): the small 2-hidden-layer FC net."""
    layers = [keras.Input((6,))]
    for index, (units, activation) in enumerate(zip((5, 4), activations)):
        layers.append(_dense(units, activation, use_bias, seed + index))
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(_dense(NUM_CLASSES, output, use_bias, seed + 9))
    return keras.Sequential(layers)


def conv_net(use_bias=True, two_conv=False, seed=0):
    """(7,7,2) → Conv 3×3 (relu) [→ Conv 2×2 (relu)] → MaxPool 2 → Flatten → Dense."""
    layers = [
        keras.Input((7, 7, 2)),
        keras.layers.Conv2D(
            3,
            3,
            activation="relu",
            use_bias=use_bias,
            kernel_initializer=keras.initializers.HeUniform(seed),
            bias_initializer=keras.initializers.RandomUniform(-0.2, 0.2, seed),
        ),
    ]
    if two_conv:
        layers.append(
            keras.layers.Conv2D(
                2,
                2,
                activation="relu",
                use_bias=use_bias,
                kernel_initializer=keras.initializers.HeUniform(seed + 1),
                bias_initializer=keras.initializers.RandomUniform(-0.2, 0.2, seed + 1),
            )
        )
    layers += [
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        _dense(NUM_CLASSES, "softmax", use_bias, seed + 9),
    ]
    return keras.Sequential(layers)


NETS = {
    "fc_bias": lambda: fc_net(use_bias=True),
    "fc_nobias": lambda: fc_net(use_bias=False),
    "fc_dropout": lambda: fc_net(use_bias=True, dropout=0.3),
    "conv": lambda: conv_net(use_bias=True),
    "conv2_nobias": lambda: conv_net(use_bias=False, two_conv=True),
}


def strided_conv_net(seed=0):
    """Strides, "same" padding, dilation and average pooling (closed-form tests)."""
    return keras.Sequential(
        [
            keras.Input((9, 9, 2)),
            keras.layers.Conv2D(3, 3, strides=2, padding="same", activation="relu",
                                kernel_initializer=keras.initializers.HeUniform(seed)),
            keras.layers.Conv2D(4, 2, dilation_rate=2, padding="same", activation="tanh",
                                kernel_initializer=keras.initializers.HeUniform(seed + 1)),
            keras.layers.AveragePooling2D(2),
            keras.layers.Flatten(),
            _dense(NUM_CLASSES, "softmax", True, seed + 9),
        ]
    )


def batch_for(network, size=6, seed=0):
    rng = np.random.default_rng(seed)
    shape = (size,) + tuple(network.inputs[0].shape[1:])
    x = rng.uniform(0.0, 1.0, shape).astype("float32")
    labels = rng.integers(0, NUM_CLASSES, size)
    return x, labels, np.eye(NUM_CLASSES)[labels]


def reference_layers(network, masks=None):
    """The Keras network as the reference's list of layer dicts."""
    masks = masks or {}
    spec = []
    for layer in network.layers:
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
            spec.append(
                {
                    "kind": "dense" if isinstance(layer, keras.layers.Dense) else "conv",
                    "kernel": np.asarray(layer.kernel, "float64"),
                    "bias": np.asarray(layer.bias, "float64") if layer.use_bias else None,
                    "activation": layer.activation.__name__,
                    "mask": None,
                }
            )
        elif isinstance(layer, keras.layers.Dropout):
            if layer.name in masks:
                spec[-1]["mask"] = np.asarray(masks[layer.name], "float64")
        elif isinstance(layer, keras.layers.Activation):
            spec[-1]["activation"] = layer.activation.__name__
        elif isinstance(layer, keras.layers.ReLU):
            spec[-1]["activation"] = "relu"
        elif isinstance(layer, keras.layers.MaxPooling2D):
            spec.append({"kind": "pool"})
        elif isinstance(layer, keras.layers.Flatten):
            spec.append({"kind": "flatten"})
    return spec


def randomize_feedback(model, seed=1):
    """Gives every feedback matrix test-drawn values (not the package's init)."""
    rng = np.random.default_rng(seed)
    values = []
    for matrix in model.feedback_matrices:
        value = rng.normal(0.0, 0.5, tuple(matrix.shape)).astype("float32")
        matrix.assign(value)
        values.append(value.astype("float64"))
    return values


def reference_updates(rule, model, x, onehot, masks=None, sample_weight=None):
    layers = reference_layers(model.network, masks)
    x = x.astype("float64")
    weight = None if sample_weight is None else np.asarray(sample_weight, "float64")
    feedback = [np.asarray(m, "float64") for m in getattr(model, "feedback_matrices", [])]
    if rule == "bp":
        return ref.backprop_updates(x, onehot, layers, weight)
    if rule == "fa":
        return ref.feedback_alignment_updates(x, onehot, layers, [None] + feedback, weight)
    signal = "error" if rule == "dfa" else "target"
    return ref.direct_feedback_updates(x, onehot, layers, feedback, signal, weight)


def assert_updates_close(actual, expected, rtol=RTOL, atol=ATOL):
    assert len(actual) == len(expected)
    for index, (a, e) in enumerate(zip(actual, expected)):
        np.testing.assert_allclose(
            np.asarray(a), e, rtol=rtol, atol=atol, err_msg=f"update {index}"
        )


def keras_ce_gradients(network, x, onehot):
    """Gradients of the plain Keras categorical cross-entropy (inference mode)."""
    with tf.GradientTape() as tape:
        loss = keras.losses.CategoricalCrossentropy()(onehot, network(x, training=False))
    return tape.gradient(loss, network.trainable_variables)


# ----------------------------------------------------------------------------
# Each rule against the NumPy reference.
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("net", sorted(NETS))
@pytest.mark.parametrize("rule", sorted(RULES))
def test_updates_match_numpy_reference(rule, net):
    network = NETS[net]()
    model = RULES[rule](network, seed=3)
    if rule != "bp":
        randomize_feedback(model)
    x, labels, onehot = batch_for(network)
    training = net == "fc_dropout"
    updates = model.compute_updates(x, labels, training=training)
    masks = model.last_dropout_masks if training else None
    if training:  # the test must see real dropout, not an all-ones mask
        assert masks and all(np.any(np.asarray(m) == 0) for m in masks.values())
    assert_updates_close(updates, reference_updates(rule, model, x, onehot, masks))


@pytest.mark.parametrize("rule", sorted(RULES))
def test_sample_weight_scales_each_example(rule):
    network = fc_net(use_bias=True)
    model = RULES[rule](network, seed=3)
    x, labels, onehot = batch_for(network)
    weight = np.array([0.0, 1.0, 2.0, 0.5, 1.0, 3.0], "float32")
    updates = model.compute_updates(x, labels, sample_weight=weight)
    expected = reference_updates(rule, model, x, onehot, sample_weight=weight)
    assert_updates_close(updates, expected)


@pytest.mark.parametrize("rule", ["fa", "dfa", "drtp"])
@pytest.mark.parametrize(
    "activations", [("tanh", "sigmoid"), ("linear", "relu")], ids=["tanh_sigmoid", "linear_relu"]
)
def test_hidden_activation_derivatives(rule, activations):
    network = fc_net(use_bias=True, activations=activations)
    model = RULES[rule](network, seed=3)
    randomize_feedback(model)
    x, labels, onehot = batch_for(network)
    updates = model.compute_updates(x, labels)
    assert_updates_close(updates, reference_updates(rule, model, x, onehot))


@pytest.mark.parametrize("rule", FEEDBACK_RULES)
def test_activation_as_separate_layers(rule):
    # Dense(linear) → ReLU() / Activation("tanh") blocks: σ' of the layer in the block.
    network = keras.Sequential(
        [
            keras.Input((6,)),
            _dense(5, None, True, 0),
            keras.layers.ReLU(),
            keras.layers.Dropout(0.4),
            _dense(4, None, True, 1),
            keras.layers.Activation("tanh"),
            _dense(NUM_CLASSES, None, True, 2),
            keras.layers.Activation("softmax"),
        ]
    )
    model = RULES[rule](network, seed=5)
    randomize_feedback(model)
    x, labels, onehot = batch_for(network)
    updates = model.compute_updates(x, labels, training=True)
    masks = model.last_dropout_masks
    assert_updates_close(updates, reference_updates(rule, model, x, onehot, masks))


# ----------------------------------------------------------------------------
# Closed forms.
# ----------------------------------------------------------------------------
def _set_fa_feedback_to_forward_kernels(model):
    for matrix, block in zip(model.feedback_matrices, model.blocks[1:]):
        matrix.assign(block.layer.kernel)


@pytest.mark.parametrize("net", ["fc_bias", "fc_nobias", "conv", "conv2_nobias", "strided"])
def test_fa_with_forward_kernels_is_backprop(net):
    network = strided_conv_net() if net == "strided" else NETS[net]()
    fa = pepita_keras.FeedbackAlignment(network, seed=0)
    _set_fa_feedback_to_forward_kernels(fa)
    x, labels, onehot = batch_for(network)
    updates = fa.compute_updates(x, labels)
    assert_updates_close(updates, pepita_keras.Backprop(network).compute_updates(x, labels))
    assert_updates_close(updates, [g.numpy() for g in keras_ce_gradients(network, x, onehot)])


def test_fa_with_forward_kernels_is_backprop_under_dropout():
    network = fc_net(use_bias=True, dropout=0.3)
    fa = pepita_keras.FeedbackAlignment(network, seed=11)
    bp = pepita_keras.Backprop(network, seed=11)
    _set_fa_feedback_to_forward_kernels(fa)
    x, labels, _ = batch_for(network)
    fa_updates = fa.compute_updates(x, labels, training=True)
    bp_updates = bp.compute_updates(x, labels, training=True)
    for name, mask in fa.last_dropout_masks.items():  # same seed, same masks
        np.testing.assert_array_equal(mask, bp.last_dropout_masks[name])
    assert_updates_close(fa_updates, bp_updates)


def test_random_feedback_is_not_backprop():
    # Guards the closed-form tests above against a rule that ignores B.
    network = fc_net(use_bias=False)
    x, labels, _ = batch_for(network)
    fa = pepita_keras.FeedbackAlignment(network, seed=0).compute_updates(x, labels)
    bp = pepita_keras.Backprop(network).compute_updates(x, labels)
    assert not np.allclose(fa[0], bp[0], rtol=1e-2)
    np.testing.assert_allclose(fa[-1], bp[-1], rtol=RTOL)  # output layer: both e


@pytest.mark.parametrize("use_bias", [True, False])
def test_dfa_one_hidden_layer_with_transposed_output_kernel_is_backprop(use_bias):
    # One hidden layer: e D_1 with D_1 = W_2ᵀ is exactly the backpropagated signal.
    network = keras.Sequential(
        [keras.Input((6,)), _dense(5, "relu", use_bias, 0), _dense(NUM_CLASSES, "softmax", use_bias, 1)]
    )
    dfa = pepita_keras.DirectFeedbackAlignment(network, seed=0)
    dfa.feedback_matrices[0].assign(tf.transpose(network.layers[-1].kernel))
    x, labels, onehot = batch_for(network)
    updates = dfa.compute_updates(x, labels)
    assert_updates_close(updates, [g.numpy() for g in keras_ce_gradients(network, x, onehot)])


def test_dfa_last_hidden_layer_matches_backprop_in_deeper_net():
    # With D_{L-1} = W_Lᵀ the layer below the output gets BP's update; deeper
    # layers do not (DFA skips W_{L-1}ᵀ), which the second check guards.
    network = fc_net(use_bias=False)
    dfa = pepita_keras.DirectFeedbackAlignment(network, seed=0)
    dfa.feedback_matrices[-1].assign(tf.transpose(network.layers[-1].kernel))
    x, labels, _ = batch_for(network)
    dfa_updates = dfa.compute_updates(x, labels)
    bp_updates = pepita_keras.Backprop(network).compute_updates(x, labels)
    np.testing.assert_allclose(dfa_updates[1], bp_updates[1], rtol=RTOL, atol=ATOL)
    assert not np.allclose(dfa_updates[0], bp_updates[0], rtol=1e-2)


def test_drtp_hidden_updates_ignore_the_output_layer():
    network = fc_net(use_bias=True)
    drtp = pepita_keras.DRTP(network, seed=0)
    x, labels, _ = batch_for(network)
    before = drtp.compute_updates(x, labels)
    output = network.layers[-1]
    output.kernel.assign(output.kernel * -3.0 + 0.1)
    after = drtp.compute_updates(x, labels)
    assert_updates_close(after[:4], [u.numpy() for u in before[:4]])  # hidden W, b
    assert not np.allclose(after[4], before[4])  # the output layer learns from e


def test_drtp_is_dfa_with_the_error_replaced_by_the_target():
    # DFA's hidden update is linear in the projected signal s: G(s). With two
    # label sets t, t': G_DFA(t) − G_DFA(t') = G(onehot t' − onehot t)
    #                                       = G_DRTP(t') − G_DRTP(t).
    network = fc_net(use_bias=True)
    dfa = pepita_keras.DirectFeedbackAlignment(network, seed=0)
    drtp = pepita_keras.DRTP(network, seed=0)
    for a, b in zip(dfa.feedback_matrices, drtp.feedback_matrices):
        np.testing.assert_array_equal(a, b)  # same seed, same D_l
    x, labels, _ = batch_for(network)
    other = (labels + 1) % NUM_CLASSES
    dfa_t, dfa_o = dfa.compute_updates(x, labels), dfa.compute_updates(x, other)
    drtp_t, drtp_o = drtp.compute_updates(x, labels), drtp.compute_updates(x, other)
    for index in range(4):  # hidden kernels and biases
        np.testing.assert_allclose(
            dfa_t[index] - dfa_o[index], drtp_o[index] - drtp_t[index], rtol=1e-4, atol=ATOL
        )
    np.testing.assert_allclose(dfa_t[4], drtp_t[4], rtol=RTOL)  # output: both e


# ----------------------------------------------------------------------------
# DFA / DRTP with a sigmoid output (binary cross-entropy), as in the DRTP code.
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("rule", ["dfa", "drtp"])
@pytest.mark.parametrize("training", [False, True], ids=["clean", "dropout"])
def test_sigmoid_output_tanh_hidden_match_numpy_reference(rule, training):
    network = fc_net(use_bias=True, dropout=0.3 if training else 0.0,
                     activations=("tanh", "tanh"), output="sigmoid")
    model = RULES[rule](network, seed=3)
    assert model.output_activation == "sigmoid"
    randomize_feedback(model)
    x, labels, onehot = batch_for(network)
    updates = model.compute_updates(x, labels, training=training)
    masks = model.last_dropout_masks if training else None
    assert_updates_close(updates, reference_updates(rule, model, x, onehot, masks))


@pytest.mark.parametrize("use_bias", [True, False])
def test_dfa_sigmoid_output_with_transposed_kernel_is_summed_bce_backprop(use_bias):
    # One hidden layer and D_1 = W_2ᵀ: DFA is backprop of the loss whose
    # output error is y − t, i.e. Σ_c BCE_c averaged over the batch.
    # Keras's BCE averages over the classes, hence the factor C.
    network = keras.Sequential(
        [keras.Input((6,)), _dense(5, "tanh", use_bias, 0), _dense(NUM_CLASSES, "sigmoid", use_bias, 1)]
    )
    dfa = pepita_keras.DirectFeedbackAlignment(network, seed=0)
    dfa.feedback_matrices[0].assign(tf.transpose(network.layers[-1].kernel))
    x, labels, onehot = batch_for(network)
    with tf.GradientTape() as tape:
        loss = NUM_CLASSES * keras.losses.BinaryCrossentropy()(onehot, network(x, training=False))
    expected = [g.numpy() for g in tape.gradient(loss, network.trainable_variables)]
    assert_updates_close(dfa.compute_updates(x, labels), expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("use_bias", [True, False])
def test_drtp_is_the_official_code_step_at_lr_eta_over_c_and_scale_b_times_c(use_bias):
    # The code sums the hidden updates over the batch and averages the
    # output BCE over B·C outputs; this rule averages every update over B.
    # So lr·G(feedback_scale=B·C) must equal η·G_code with lr = η/C, where
    # the code's D is this rule's D / (B·C) (its kaiming_uniform_ draw).
    batch, classes, hidden = 8, NUM_CLASSES, 64
    network = pepita_keras.paper_networks.paper_fc(
        (6,), classes, hidden_units=(hidden,), dropout=0.0, use_bias=use_bias, seed=0,
        hidden_activation="tanh", output_activation="sigmoid",
    )
    if use_bias:  # non-zero biases, so their updates are checked too
        for layer in network.layers:
            if getattr(layer, "bias", None) is not None:
                layer.bias.assign(np.linspace(-0.3, 0.3, layer.bias.shape[0]))
    eta = 0.37
    step = drtp_module.official_code_step(eta, batch, classes)
    scale = batch * classes
    assert step == {"feedback_scale": scale, "learning_rate": pytest.approx(eta / classes)}
    model = pepita_keras.DRTP(network, feedback_scale=step["feedback_scale"], seed=1)
    code_feedback = np.asarray(model.feedback_matrices[0], "float64") / scale
    # The code's init: kaiming_uniform_ on (C, n): U(±sqrt(2)·sqrt(3/n)).
    limit = math.sqrt(6.0 / hidden)
    assert limit * 0.95 < np.abs(code_feedback).max() <= limit * (1 + 1e-6)
    x, labels, onehot = batch_for(network, size=batch)
    dense = [layer for layer in network.layers if isinstance(layer, keras.layers.Dense)]
    kernels = [np.asarray(layer.kernel, "float64") for layer in dense]
    biases = [np.asarray(layer.bias, "float64") if use_bias else None for layer in dense]
    code = ref.drtp_official_code_gradients(
        x.reshape(batch, -1).astype("float64"), onehot, kernels, biases, [code_feedback]
    )
    ours = model.compute_updates(x, labels)
    assert_updates_close(
        [step["learning_rate"] * np.asarray(u, "float64") for u in ours],
        [eta * g for g in code],
        rtol=1e-4,
        atol=1e-7,
    )


@pytest.mark.parametrize("bad", [{"eta": 0}, {"batch_size": -1}, {"num_classes": True}])
def test_official_code_step_rejects_non_positive_values(bad):
    kwargs = {"eta": 0.1, "batch_size": 64, "num_classes": 10, **bad}
    name, value = next(iter(bad.items()))
    with pytest.raises(ValueError, match=f"{name}={value!r}"):
        drtp_module.official_code_step(**kwargs)


def test_paper_networks_keep_their_activations_by_default():
    fc = pepita_keras.paper_networks.paper_fc((28, 28, 1), 10, seed=0)
    conv = pepita_keras.paper_networks.paper_conv((28, 28, 1), 10, seed=0)
    for net in (fc, conv):
        learnable = [l for l in net.layers if isinstance(l, (keras.layers.Dense, keras.layers.Conv2D))]
        assert [l.activation.__name__ for l in learnable] == ["relu", "softmax"]


@pytest.mark.parametrize("builder", ["paper_fc", "paper_conv"])
def test_paper_networks_take_tanh_hidden_and_sigmoid_output(builder):
    net = getattr(pepita_keras.paper_networks, builder)(
        (28, 28, 1), 10, seed=0, hidden_activation="tanh", output_activation="sigmoid"
    )
    learnable = [l for l in net.layers if isinstance(l, (keras.layers.Dense, keras.layers.Conv2D))]
    assert [l.activation.__name__ for l in learnable] == ["tanh", "sigmoid"]
    x = np.random.default_rng(0).uniform(0, 1, (2, 28, 28, 1)).astype("float32")
    # Sigmoid outputs: each in (0, 1), not normalised across classes.
    y = np.asarray(net(x))
    assert np.all((y > 0) & (y < 1)) and not np.allclose(y.sum(axis=1), 1.0)
    pepita_keras.DRTP(net, seed=0)  # both rules of the DRTP code accept it


@pytest.mark.parametrize(
    "kwargs, named",
    [({"hidden_activation": "elu"}, "hidden_activation='elu'"),
     ({"output_activation": "tanh"}, "output_activation='tanh'")],
)
@pytest.mark.parametrize("builder", ["paper_fc", "paper_conv"])
def test_paper_networks_reject_unknown_activations(builder, kwargs, named):
    with pytest.raises(ValueError, match=named):
        getattr(pepita_keras.paper_networks, builder)((28, 28, 1), 10, **kwargs)


# ----------------------------------------------------------------------------
# Backprop.fit is Keras fit.
# ----------------------------------------------------------------------------
@pytest.fixture(params=["float32", "mixed_float16"])
def dtype_policy(request):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(request.param)
    yield request.param
    keras.config.set_dtype_policy(previous)


def test_backprop_fit_equals_plain_keras_fit(dtype_policy):
    # Under mixed_float16 both sides use a LossScaleOptimizer: Backprop must
    # differentiate the scaled loss and hand back the true gradient.
    network = fc_net(use_bias=True)
    plain = keras.models.clone_model(network)
    plain.set_weights(network.get_weights())
    x, labels, onehot = batch_for(network, size=16)
    weight = np.random.default_rng(2).uniform(0.0, 2.0, 16).astype("float32")

    initial = network.get_weights()
    model = pepita_keras.Backprop(network)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    model.fit(x, labels, sample_weight=weight, batch_size=8, shuffle=False, verbose=0)
    plain.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="categorical_crossentropy")
    plain.fit(x, onehot, sample_weight=weight, batch_size=8, shuffle=False, verbose=0)

    if dtype_policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    # Two steps, so the momentum buffer is exercised too.
    for ours, theirs, start in zip(network.get_weights(), plain.get_weights(), initial):
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=1e-6)
        assert not np.allclose(ours, start)


# ----------------------------------------------------------------------------
# Feedback matrices: shapes, alignment pairs.
# ----------------------------------------------------------------------------
def test_conv_direct_feedback_covers_the_feature_map():
    network = conv_net(use_bias=True, two_conv=True)
    dfa = pepita_keras.DirectFeedbackAlignment(network, seed=0)
    assert [tuple(m.shape) for m in dfa.feedback_matrices] == [(3, 5 * 5 * 3), (3, 4 * 4 * 2)]
    fa = pepita_keras.FeedbackAlignment(network, seed=0)
    assert [tuple(m.shape) for m in fa.feedback_matrices] == [(2, 2, 3, 2), (8, 3)]


def test_alignment_pairs_compare_feedback_with_the_forward_path():
    network = fc_net(use_bias=False)
    kernels = [np.asarray(layer.kernel) for layer in network.layers if hasattr(layer, "kernel")]
    fa = pepita_keras.FeedbackAlignment(network, seed=0)
    pairs = fa.feedback_alignment_pairs()
    assert [p.name for p in pairs] == ["B_2", "B_3"]
    for pair, matrix, kernel in zip(pairs, fa.feedback_matrices, kernels[1:]):
        np.testing.assert_array_equal(pair.feedback, matrix)
        np.testing.assert_array_equal(pair.forward, kernel)
    dfa = pepita_keras.DirectFeedbackAlignment(network, seed=0)
    pairs = dfa.feedback_alignment_pairs()
    assert [p.name for p in pairs] == ["D_1", "D_2"]
    np.testing.assert_allclose(pairs[0].forward, (kernels[1] @ kernels[2]).T, rtol=RTOL)
    np.testing.assert_allclose(pairs[1].forward, kernels[2].T, rtol=RTOL)
    assert pepita_keras.Backprop(network).feedback_alignment_pairs() == []
    # Through pooling the forward map is not a matrix: no pair.
    assert pepita_keras.DRTP(conv_net()).feedback_alignment_pairs() == []
