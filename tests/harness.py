"""What every learning rule must do, checked by one call: `run_rule_test`.

In the style of keras-hub's `TestCase.run_layer_test` / `run_model_saving_test`:
a rule's test module (tests/test_rules.py) names the rule, its constructor
arguments and a small network, and `run_rule_test` checks

- `get_config` / `from_config` (every argument kept; Keras serialization),
- a tiny `fit` (finite loss and metrics, every trainable variable moved;
  `evaluate`, `predict`),
- a `.keras` round trip: the loaded rule has the same config, the same
  variables (feedback matrices, dropout seed state, mirroring state), the
  same optimizer state and predictions, and training continues from it
  bit-identically to the run that was never saved.

Also the small networks the rule tests share (`mlp`) and `RULES`, every rule
by its short name.
"""

import json

import keras
import numpy as np

import pepita_keras
from pepita_keras import registry
from pepita_keras.saving import load_model

# Every registered rule (pepita_keras.registry): a new rule is tested by the shared harness.
RULES = {name: info.load() for name, info in registry.rules().items()}


def mlp(sizes, use_bias=False, dropout=0.0, seed=0, activation="relu"):
    """Input sizes[0] → hidden Dense layers → softmax, He-uniform weights.

    Args:
        sizes: units per layer, the input size first.
        use_bias: whether the Dense layers have biases (drawn U(−0.1, 0.1)).
        dropout: rate of a Dropout layer after every hidden layer (0: none).
        seed: layer l's kernel is drawn with seed `seed + l`.
        activation: the hidden activation.

    The Dense layers are named `dense_0`, `dense_1`, ... (the callbacks log
    per-layer values under these names).
    """
    layers = [keras.Input((sizes[0],))]
    for index, units in enumerate(sizes[1:]):
        last = index == len(sizes) - 2
        layers.append(
            keras.layers.Dense(
                units,
                activation="softmax" if last else activation,
                use_bias=use_bias,
                kernel_initializer=keras.initializers.HeUniform(seed + index),
                bias_initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed),
                name=f"dense_{index}",
            )
        )
        if not last and dropout:
            layers.append(keras.layers.Dropout(dropout))
    return keras.Sequential(layers)


def run_rule_test(cls, init_kwargs, network_fn, tmp_path, expected_config=None):
    """Runs every check a learning rule must pass (see the module docstring).

    Args:
        cls: the rule class, e.g. `pepita_keras.PEPITA`.
        init_kwargs: its constructor arguments besides the network.
        network_fn: returns a fresh network (one per model built here).
        tmp_path: a folder for the `.keras` file.
        expected_config: what `get_config()` must hold for the arguments;
            defaults to `init_kwargs` (given where the rule normalises an
            argument).
    """
    run_serialization_test(cls, init_kwargs, network_fn, expected_config)
    run_fit_test(cls, init_kwargs, network_fn)
    run_saving_test(cls, init_kwargs, network_fn, tmp_path)


def run_serialization_test(cls, init_kwargs, network_fn, expected_config=None):
    """`get_config` keeps every argument; `from_config` and Keras rebuild it."""
    model = cls(network_fn(), **init_kwargs)
    config = model.get_config()
    for name, value in (expected_config or init_kwargs).items():
        assert config[name] == value, name
    restored = cls.from_config(config)
    assert type(restored) is cls
    assert restored.get_config() == config
    # Through JSON, as in a `.keras` file (tuples come back as lists).
    serialized = json.dumps(keras.saving.serialize_keras_object(model))
    revived = keras.saving.deserialize_keras_object(json.loads(serialized))
    assert type(revived) is cls
    assert _as_json(revived.get_config()) == _as_json(config)


def run_fit_test(cls, init_kwargs, network_fn):
    """Two epochs of `fit` on 32 examples; `evaluate` and `predict` after."""
    model = _compiled(cls, init_kwargs, network_fn)
    x, y = _data(model)
    before = [np.array(v) for v in model.trainable_variables]
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    assert {"loss", "accuracy"} <= set(history)
    assert all(len(values) == 2 and np.all(np.isfinite(values)) for values in history.values())
    for variable, start in zip(model.trainable_variables, before):
        assert not np.array_equal(np.array(variable), start), variable.path
    results = model.evaluate(x, y, verbose=0, return_dict=True)
    assert np.isfinite(results["loss"]) and 0 <= results["accuracy"] <= 1
    predictions = model.predict(x, verbose=0)
    assert predictions.shape == (len(x), model.num_classes)
    assert np.all(np.isfinite(predictions))


def run_saving_test(cls, init_kwargs, network_fn, tmp_path):
    """A `.keras` round trip mid-training continues bit-identically."""
    model = _compiled(cls, init_kwargs, network_fn)
    # Feedback matrices get values a fresh draw from the seed would not give:
    # the loaded ones must come from the file.
    rng = np.random.default_rng(0)
    for variable in model.non_trainable_variables:
        if "float" in variable.dtype and len(variable.shape) >= 2:
            values = np.array(variable)
            variable.assign(rng.permutation(values.ravel()).reshape(values.shape))
    x, y = _data(model)
    model.fit(x[:16], y[:16], batch_size=8, shuffle=False, verbose=0)
    path = tmp_path / f"{cls.__name__}.keras"
    model.save(path)
    loaded = load_model(path)
    assert type(loaded) is cls
    assert _as_json(loaded.get_config()) == _as_json(model.get_config())
    _assert_same_values(loaded.variables, model.variables)
    _assert_same_values(loaded.optimizer.variables, model.optimizer.variables)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    # The model that was never saved goes on, and so does the loaded one.
    model.fit(x[16:], y[16:], batch_size=8, shuffle=False, verbose=0)
    loaded.fit(x[16:], y[16:], batch_size=8, shuffle=False, verbose=0)
    _assert_same_values(loaded.variables, model.variables)
    _assert_same_values(loaded.optimizer.variables, model.optimizer.variables)


def _compiled(cls, init_kwargs, network_fn):
    model = cls(network_fn(), **init_kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), metrics=["accuracy"])
    return model


def _data(model, size=32):
    """A fixed batch of inputs in [0, 1) and integer labels for `model`."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (size,) + model.input_spec_shape).astype("float32")
    return x, rng.integers(0, model.num_classes, size)


def _as_json(config):
    return json.dumps(config, sort_keys=True)


def _assert_same_values(actual, expected):
    # Keras's Dropout layers keep a SeedGenerator state that `.keras` files
    # do not hold; the rules draw their masks from `dropout_seed_state`.
    actual, expected = ([v for v in variables if "seed_generator" not in v.path]
                        for variables in (actual, expected))
    assert len(actual) == len(expected)
    for ours, theirs in zip(actual, expected):  # in creation order
        np.testing.assert_array_equal(np.array(ours), np.array(theirs), err_msg=theirs.path)
