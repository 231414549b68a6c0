"""One factory: a search around a cell trains the cell's network (every shipped config).

`pepita reproduce` builds a seed's model with `build.build_model`
(`pepita_keras.build`); `pepita tune <cell>` builds each trial with
`RuleHyperModel.from_experiment(cell).build(hp)`. With the search's values
set to the cell's, the two must be the same model: network, rule and
optimizer configs (learning-rate schedule included), initial weights and
feedback matrices. The cell-specific facts the two factories once disagreed
on are also asserted from the configs themselves (tanh/sigmoid DRTP, the
official conv update, PyTorch-default init of conv BP, the ×0.1 decays).
"""

import keras
import keras_tuner
import numpy as np
import pytest

from pepita_keras import build, experiment_config, results, tuning
from pepita_keras.tuning import tuners

# One cell per rule × architecture and every special case runs by default; all
# shipped configs run under --run-slow / CI (each costs ~1-7 s of model building).
REPRESENTATIVE = {"fc_mnist_pepita", "fc_mnist_drtp", "fc_mnist_bp_h2", "fc_cifar100_fa",
                  "conv_mnist_pepita", "conv_mnist_pepita_local", "conv_mnist_bp",
                  "conv_mnist_drtp", "iclr_fc_mnist_pepita_wd_norm", "iclr_fc_mnist_pepita_mirror"}
SHIPPED = [name if name in REPRESENTATIVE else pytest.param(name, marks=pytest.mark.slow)
           for name in sorted(results.shipped_configs())]


def _trial_model(config, seed, num_train):
    hypermodel = tuning.RuleHyperModel.from_experiment(config, seed=seed,
                                                       num_train_examples=num_train)
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)  # every searched value at its default: the cell's
    keras.backend.clear_session()  # the same automatic layer names on both sides
    keras.utils.set_random_seed(seed)
    return hypermodel, hp, hypermodel.build(hp)


def _reproduce_model(config, seed, num_train):
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)  # as reproduce.run_seed does
    return build.build_model(config, seed, build.steps_per_epoch(num_train, config.batch_size))


def _schedule(optimizer):
    rate = optimizer.learning_rate if not hasattr(optimizer, "_learning_rate") else \
        optimizer._learning_rate
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        return type(rate).__name__, rate.get_config()
    return "constant", float(keras.ops.convert_to_numpy(rate))


@pytest.mark.parametrize("name", SHIPPED)
def test_a_trial_with_the_cells_values_is_the_cells_model(name):
    config = experiment_config.load_config(name)
    num_train = 1000  # any size: both sides key the schedule on the same steps per epoch
    hypermodel, hp, trial = _trial_model(config, 3, num_train)
    seed_model = _reproduce_model(config, 3, num_train)

    assert type(trial) is type(seed_model)
    assert trial.network.get_config() == seed_model.network.get_config()
    assert trial.get_config() == seed_model.get_config()
    assert trial.optimizer.get_config() == seed_model.optimizer.get_config()
    assert _schedule(trial.optimizer) == _schedule(seed_model.optimizer)
    assert len(trial.weights) == len(seed_model.weights)
    for a, b in zip(trial.weights, seed_model.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                      keras.ops.convert_to_numpy(b), err_msg=a.path)
    # The trial records the cell's settings in a seed's vocabulary.
    params = tuners.trial_params(hypermodel, hp)
    assert experiment_config.training_settings(hypermodel.resolve(hp).flatten()) == \
        config.training_settings()
    for key in ("hidden_activation", "output_activation", "kernel_initializer",
                "lr_decay_epochs", "momentum", "batch_size"):
        assert params[key] == config.flatten()[key], key


def _layer_activations(network):
    return [layer.get_config().get("activation") for layer in network.layers
            if "activation" in layer.get_config()]


def test_the_cells_the_factories_once_disagreed_on():
    # fc_mnist_drtp: tanh hidden units, sigmoid output, the paper's decays.
    _, _, drtp = _trial_model(experiment_config.load_config("fc_mnist_drtp"), 0, 640)
    assert _layer_activations(drtp.network) == ["tanh", "sigmoid"]
    kind, schedule = _schedule(drtp.optimizer)
    assert kind == "PiecewiseConstantDecay" and schedule["boundaries"] == [599, 899]
    # conv_mnist_pepita: the official conv update, not the local one.
    _, _, conv = _trial_model(experiment_config.load_config("conv_mnist_pepita"), 0, 500)
    assert conv.get_config()["conv_update"] == "official"
    # conv_mnist_bp: PyTorch-default init U(±1/√fan_in) of its conv kernel (fan_in 25).
    _, _, bp = _trial_model(experiment_config.load_config("conv_mnist_bp"), 0, 500)
    kernel = keras.ops.convert_to_numpy(bp.network.layers[0].kernel)
    assert np.abs(kernel).max() <= 1 / np.sqrt(25) + 1e-7
    assert np.abs(kernel).max() > 0.9 / np.sqrt(25)


def test_the_default_search_around_a_cell_is_the_rules_knobs():
    config = experiment_config.load_config("fc_mnist_pepita")
    hypermodel = tuning.RuleHyperModel.from_experiment(config, seed=0)
    assert set(hypermodel.space) == {"learning_rate", "feedback_scale"}
    rate = hypermodel.space["learning_rate"].get_config()
    assert (rate["min_value"], rate["max_value"], rate["default"]) == pytest.approx((0.01, 1.0, 0.1))
    scale = hypermodel.space["feedback_scale"].get_config()
    assert (scale["min_value"], scale["max_value"], scale["default"]) == pytest.approx(
        (0.005, 0.5, 0.05))
    bp = tuning.RuleHyperModel.from_experiment(experiment_config.load_config("fc_mnist_bp"), seed=0)
    assert set(bp.space) == {"learning_rate"}
    ff = tuning.RuleHyperModel.from_experiment(experiment_config.load_config("ff_mnist"), seed=0)
    assert set(ff.space) == {"learning_rate", "threshold"}
    threshold = ff.space["threshold"].get_config()
    assert (threshold["min_value"], threshold["max_value"], threshold["default"]) == \
        pytest.approx((0.5, 4.5, 1.5))


def test_a_trial_changes_only_what_it_searches():
    config = experiment_config.load_config("fc_mnist_drtp")
    hypermodel = tuning.RuleHyperModel.from_experiment(config, seed=0)
    hp = keras_tuner.HyperParameters()
    hp.Fixed("learning_rate", 0.02)
    trial = hypermodel.resolve(hp)
    expected = dict(config.training_settings(), learning_rate=0.02)
    assert experiment_config.training_settings(trial.flatten()) == expected
    model = hypermodel.build(hp)
    assert _schedule(model.optimizer)[1]["values"] == pytest.approx([0.02, 0.002, 0.0002])


@pytest.mark.parametrize("name", ["fc_mnist_pepita", "conv_mnist_bp"])
def test_many_steps_per_call_train_exactly_as_one_step_per_call(name):
    # The factory compiles with `factory_steps_per_execution()` steps per call (32 under
    # TensorFlow); weights after two epochs of 100 steps (3 × 32 + 4: a partial last call)
    # must equal, bit for bit, those of Keras's one step per call.
    from pepita_keras import input_pipeline

    config = experiment_config.load_config(name).replace(
        train_examples=100 * 16, test_examples=64, batch_size=16)
    data = input_pipeline.EpochData(input_pipeline.synthetic_arrays(config), config.batch_size,
                                    config.eval_batch_size)
    weights = {}
    for per_call in ("factory", 1):
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        model = build.build_model(config, 0, data.steps_per_epoch)
        if per_call == 1:
            assert model.steps_per_execution == model.factory_steps_per_execution()
            model.compile(optimizer=model.optimizer, metrics=["accuracy"], steps_per_execution=1)
        for epoch in range(2):
            model.fit(data.train(0, epoch), initial_epoch=epoch, epochs=epoch + 1,
                      shuffle=False, verbose=0)
        assert int(model.optimizer.iterations) == 200
        weights[per_call] = [keras.ops.convert_to_numpy(w) for w in model.weights]
    if keras.backend.backend() == "tensorflow":  # else the comparison could be 1 against 1
        assert model.factory_steps_per_execution() == 32
    for a, b in zip(weights["factory"], weights[1]):
        np.testing.assert_array_equal(a, b)
