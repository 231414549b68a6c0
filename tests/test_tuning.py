"""Tests of `pepita_keras.tuning`: search space, tuners, MLflow records, CLI.

Expectations come from the definitions, not from what the code returns:
the feedback-matrix bound `s·sqrt(6/d)` of the PEPITA init, the rule
constructors' signature defaults, keras-tuner's trial bookkeeping, and the
MLflow store queried directly (`MlflowClient.search_runs`).
"""

import inspect
import math
import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import time

import keras
import keras_tuner
import numpy as np
import pytest
from keras_tuner.engine import hyperparameters as hp_types

import pepita_keras
from pepita_keras import cli, experiment_config, tuning
from pepita_keras.tuning import hypermodel as hm
from pepita_keras.tuning import tuners

# The shipped cells' helpers and paper numbers (reproductions/configs/common.py).
COMMON = experiment_config.shipped_common()

REPO = pathlib.Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------
# Search space (no training).
# ---------------------------------------------------------------------------
def _signature_default(cls, name):
    return inspect.signature(cls.__init__).parameters[name].default


def test_default_space_follows_each_rules_constructor():
    pepita = hm.default_search_space(pepita_keras.PEPITA, "fc")
    scale = _signature_default(pepita_keras.PEPITA, "feedback_scale")
    config = pepita["feedback_scale"].get_config()
    assert config["sampling"] == "log"
    assert math.isclose(config["min_value"], scale / 10)
    assert math.isclose(config["max_value"], scale * 10)
    assert pepita["feedback_scale"].default == scale
    assert set(pepita["last_layer_error"].values) == {"modulated", "clean"}
    assert pepita["learning_rate"].get_config()["sampling"] == "log"
    assert {"batch_size", "momentum", "dropout", "hidden_units", "num_hidden_layers"} <= set(pepita)
    # Variant flags present in PEPITA's constructor are searched.
    for flag in hm.VARIANT_FLAGS:
        if flag in inspect.signature(pepita_keras.PEPITA.__init__).parameters:
            assert flag in pepita

    backprop = hm.default_search_space(pepita_keras.Backprop, "fc")
    assert "feedback_scale" not in backprop and "last_layer_error" not in backprop

    fa = hm.default_search_space(pepita_keras.FeedbackAlignment, "fc")
    fa_scale = _signature_default(pepita_keras.FeedbackAlignment, "feedback_scale")
    assert math.isclose(fa["feedback_scale"].get_config()["max_value"], fa_scale * 10)

    conv = hm.default_search_space(pepita_keras.PEPITA, "conv")
    assert "filters" in conv and "dropout" not in conv and "hidden_units" not in conv


def test_space_overrides_narrow_extend_and_remove():
    model = tuning.RuleHyperModel(
        "PEPITA",
        space={
            "momentum": 0.9,
            "batch_size": [64, 128],
            "normalize_activations": [False, True],
            "learning_rate": {"min_value": 0.01, "max_value": 0.3, "sampling": "log"},
            "num_hidden_layers": {"min_value": 1, "max_value": 2},
            "dropout": None,
        },
    )
    assert isinstance(model.space["momentum"], hp_types.Fixed)
    assert model.space["batch_size"].values == [64, 128]
    assert isinstance(model.space["normalize_activations"], hp_types.Boolean)
    assert isinstance(model.space["learning_rate"], hp_types.Float)
    assert isinstance(model.space["num_hidden_layers"], hp_types.Int)
    assert "dropout" not in model.space
    # Defaults from a config move the default; an on-grid default keeps the grid.
    defaults = tuning.RuleHyperModel("PEPITA", defaults={"dropout": 0.1, "batch_size": 50})
    assert defaults.space["dropout"].default == 0.1
    assert defaults.space["dropout"].get_config()["step"] == 0.05
    assert defaults.space["batch_size"].values == [32, 50, 64, 128, 256]
    assert defaults.space["batch_size"].default == 50
    with pytest.raises(ValueError, match="Unknown hyperparameter 'widht'"):
        tuning.RuleHyperModel("PEPITA", space={"widht": 3})
    with pytest.raises(ValueError, match="rule must be one of .*'PEPITA'.*Received: rule='PEPTIA'"):
        tuning.RuleHyperModel("PEPTIA")
    # Reproduction short names resolve to the exported classes.
    assert tuning.RuleHyperModel("bp").rule_class is pepita_keras.Backprop


def test_build_applies_hyperparameters_to_network_rule_and_optimizer():
    model_builder = tuning.RuleHyperModel("PEPITA", (28, 28, 1), 10, seed=3)
    hp = keras_tuner.HyperParameters()
    hp.Fixed("learning_rate", 0.02)
    hp.Fixed("momentum", 0.5)
    hp.Fixed("hidden_units", 32)
    hp.Fixed("num_hidden_layers", 2)
    hp.Fixed("dropout", 0.25)
    hp.Fixed("feedback_scale", 0.2)
    hp.Fixed("last_layer_error", "clean")
    model = model_builder.build(hp)
    assert isinstance(model, pepita_keras.PEPITA)
    dense = [l for l in model.network.layers if isinstance(l, keras.layers.Dense)]
    assert [l.units for l in dense] == [32, 32, 10]
    dropouts = [l.rate for l in model.network.layers if isinstance(l, keras.layers.Dropout)]
    assert dropouts == [0.25, 0.25]
    assert model.last_layer_error == "clean"
    # F ~ U(-s·sqrt(6/d), s·sqrt(6/d)), d = 784: the bound follows s = 0.2.
    bound = 0.2 * math.sqrt(6 / 784)
    f = keras.ops.convert_to_numpy(model.feedback_matrix)
    assert np.abs(f).max() <= bound + 1e-7
    assert np.abs(f).max() > 0.9 * bound
    assert math.isclose(float(model.optimizer.learning_rate), 0.02, rel_tol=1e-6)
    assert math.isclose(float(model.optimizer.momentum), 0.5)
    # Names the tuner's space does not fix were registered with defaults.
    assert hp.get("batch_size") == 64
    # Not searched by default: no weight decay.
    assert model.optimizer.weight_decay is None


def test_weight_decay_reaches_the_optimizer_and_a_config_keeps_its_own():
    # Given in the space, the decoupled decay is SGD's `weight_decay`.
    hypermodel = tuning.RuleHyperModel("PEPITA", (28, 28, 1), 10, seed=0,
                                       space={"weight_decay": [1e-4, 1e-3]})
    hp = keras_tuner.HyperParameters()
    hp.Fixed("weight_decay", 1e-3)
    assert math.isclose(float(hypermodel.build(hp).optimizer.weight_decay), 1e-3)
    # From a config with decay (the ICLR wd_norm rows: 1e-4), trials keep it.
    config = COMMON.iclr_variant("mnist", "wd_norm", weight_decay=1e-4)
    hypermodel = tuning.RuleHyperModel.from_experiment(config, seed=0)
    model = hypermodel.build(keras_tuner.HyperParameters())
    assert math.isclose(float(model.optimizer.weight_decay), 1e-4)
    assert model.normalize_activations


def _exported_rules():
    return sorted(
        name for name in dir(pepita_keras)
        if inspect.isclass(getattr(pepita_keras, name))
        and issubclass(getattr(pepita_keras, name), pepita_keras.LearningRuleModel)
        and name != "LearningRuleModel"
    )


@pytest.mark.parametrize("rule", _exported_rules())
def test_every_rule_builds_with_its_own_arguments(rule):
    cls = getattr(pepita_keras, rule)
    builder = tuning.RuleHyperModel(rule, (6, 6, 1), 3, space={"hidden_units": 8}, seed=0)
    hp = keras_tuner.HyperParameters()
    model = builder.build(hp)
    assert type(model) is cls
    accepted = set(inspect.signature(cls.__init__).parameters)
    rule_names = {"feedback_scale", "last_layer_error", *hm.VARIANT_FLAGS}
    assert {n for n in hp.values if n in rule_names} <= accepted
    if "feedback_scale" in accepted:
        assert model.feedback_scale == hp.get("feedback_scale")


def test_conditional_variant_flag_only_exists_for_its_parent_value():
    if "time_local" not in inspect.signature(pepita_keras.PEPITA.__init__).parameters:
        pytest.skip("PEPITA has no time_local flag")
    model_builder = tuning.RuleHyperModel("PEPITA", space={"hidden_units": 16})
    hp = keras_tuner.HyperParameters()
    hp.Fixed("update_form", "difference")
    model = model_builder.build(hp)
    assert "time_local" not in hp.values
    assert model.time_local is False


def test_seed_zero_is_honoured(tmp_path):
    def first_values(seed, folder):
        tuner = tuning.build_tuner(
            "random", tuning.RuleHyperModel("PEPITA", space={"hidden_units": 16}),
            max_trials=3, seed=seed, directory=str(tmp_path / folder),
        )
        assert tuner.oracle.seed == seed
        return tuner.oracle.create_trial("tuner0").hyperparameters.values

    assert first_values(0, "a") == first_values(0, "b")
    assert first_values(0, "c") != first_values(1, "d")
    with pytest.raises(ValueError, match="seed=0"):
        tuning.build_tuner("random", tuning.RuleHyperModel("PEPITA"), seed=0, track=False)


def test_build_tuner_validates_arguments(tmp_path):
    builder = tuning.RuleHyperModel("PEPITA")
    with pytest.raises(ValueError, match="kind must be one of"):
        tuning.build_tuner("grid", builder, directory=str(tmp_path))
    with pytest.raises(ValueError, match="max_trials must be a positive int"):
        tuning.build_tuner("random", builder, max_trials=0, directory=str(tmp_path))
    for kind, cls in (("hyperband", keras_tuner.Hyperband),
                      ("bayesian", keras_tuner.BayesianOptimization)):
        tuner = tuning.build_tuner(kind, builder, max_trials=5, seed=1,
                                   directory=str(tmp_path / kind))
        assert isinstance(tuner, cls) and isinstance(tuner, tuning.MLflowTracking)
        assert tuner.oracle.max_trials == 5


@pytest.mark.slow
def test_hyperband_continues_trials_and_logs_their_epochs(tmp_path, mlflow_uri):
    import mlflow

    uri = mlflow_uri
    rng = np.random.default_rng(0)
    x = rng.random((128, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, 128).astype("int32")
    space = {"hidden_units": 8, "num_hidden_layers": 1, "batch_size": 64}
    builder = tuning.RuleHyperModel("PEPITA", (8, 8, 1), 3, space=space, seed=0)
    # max_epochs=3, factor=3: the first bracket trains 3 trials for 1 epoch,
    # then continues the best one from epoch 1 to 3 (trial 4 of 4).
    tuner = tuning.build_tuner("hyperband", builder, max_epochs=3, factor=3,
                               max_trials=4, seed=0, directory=str(tmp_path / "hb"))
    tuner.search(x, y, validation_data=(x[:64], y[:64]))
    trials = tuner.oracle.trials
    assert len(trials) == 4 and all(t.status == "COMPLETED" for t in trials.values())
    continued = [t for t in trials.values() if "tuner/trial_id" in t.hyperparameters.values]
    assert len(continued) == 1
    values = continued[0].hyperparameters.values
    assert (values["tuner/initial_epoch"], values["tuner/epochs"]) == (1, 3)

    client = mlflow.MlflowClient(uri)
    run_id = tuner.trial_run_id(continued[0].trial_id)
    # It trained epochs 2 and 3 (steps are epoch numbers, 1 … N, as in the plots).
    steps = sorted(m.step for m in client.get_metric_history(run_id, "val_accuracy"))
    assert steps == [2, 3]
    assert client.get_run(run_id).data.params["tuner/trial_id"] == values["tuner/trial_id"]


def test_cli_registers_tune_and_tune_report():
    from pepita_keras import cli

    parser = cli.build_parser()
    args = parser.parse_args(["tune", "fc_mnist_pepita", "--tuner", "hyperband",
                              "--max-trials", "7", "--smoke", "--directory", "d",
                              "--synthetic", "--tracking-uri", "sqlite:///t.db"])
    assert (args.tuner, args.max_trials, args.smoke, args.directory) == ("hyperband", 7, True, "d")
    assert args.synthetic and args.tracking_uri == "sqlite:///t.db"
    assert callable(args.func)
    args = parser.parse_args(["tune-report", "--output", "-"])
    assert args.output == "-" and callable(args.func)
    with pytest.raises(SystemExit):
        parser.parse_args(["tune", "x", "--max-trials", "0"])


def test_search_id_is_validated(tmp_path):
    with pytest.raises(ValueError, match="search_id may only contain"):
        tuning.build_tuner("random", tuning.RuleHyperModel("PEPITA"), seed=1,
                           directory=str(tmp_path), search_id="it's")


# ---------------------------------------------------------------------------
# A real search, recorded in MLflow.
# ---------------------------------------------------------------------------
def _mnist_subset(n_train, n_val):
    from pepita_keras import datasets

    (x, y), _ = datasets.load_arrays("mnist")
    return (x[:n_train], y[:n_train]), (x[-n_val:], y[-n_val:])


@pytest.mark.slow  # trains 4 models on real MNIST (~16 s idle)
@pytest.mark.real_data
def test_search_beats_a_bad_configuration_and_is_nested_in_mlflow(tmp_path, mlflow_uri):
    import mlflow
    import mlflow.keras

    uri = mlflow_uri
    (x, y), validation = _mnist_subset(2000, 1000)
    space = {"hidden_units": 256, "num_hidden_layers": 1, "dropout": 0.0,
             "batch_size": 64, "momentum": 0.9, "last_layer_error": "modulated",
             "learning_rate": {"min_value": 0.02, "max_value": 0.2, "sampling": "log"}}
    for flag in hm.VARIANT_FLAGS:
        space[flag] = None
    builder = tuning.RuleHyperModel("PEPITA", space=space, seed=0)

    # The deliberately bad configuration: the same model with lr = 1e-5.
    bad_hp = keras_tuner.HyperParameters()
    bad_hp.Fixed("learning_rate", 1e-5)
    bad_hp.Fixed("feedback_scale", 0.05)
    bad = builder.fit(bad_hp, builder.build(bad_hp), x, y,
                      validation_data=validation, epochs=2)
    bad_accuracy = bad.history["val_accuracy"][-1]

    tuner = tuning.build_tuner("random", builder, max_trials=3, seed=0,
                               directory=str(tmp_path / "search"), project_name="real")
    tuner.search(x, y, validation_data=validation, epochs=2)
    best = tuner.oracle.get_best_trials(1)[0]
    # MNIST at lr ≥ 0.02 for 2 epochs learns far beyond chance; lr 1e-5 cannot.
    assert best.score > bad_accuracy + 0.3, (best.score, bad_accuracy)

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(tuners.DEFAULT_EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("pepita.role") == "search"]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 3 == len(runs) - 1
    assert sorted(r.data.tags["pepita.trial_id"] for r in children) == sorted(tuner.oracle.trials)
    for run in children:
        trial_id = run.data.tags["pepita.trial_id"]
        trial = tuner.oracle.trials[trial_id]
        # Which search a trial belongs to shows in its name, in every view.
        assert run.info.run_name == f"real/trial_{trial_id}"
        assert (run.data.tags["pepita.rule"], run.data.tags["pepita.architecture"]) == (
            "pepita", "fc")
        assert run.info.status == "FINISHED"
        assert run.data.tags["pepita.trial_status"] == "COMPLETED"
        assert float(run.data.params["learning_rate"]) == pytest.approx(
            trial.hyperparameters.values["learning_rate"])
        # The resolved setting in a seed's vocabulary; the searched value beside it.
        assert run.data.params["hidden_units"] == "[256]"
        assert run.data.params["hp.hidden_units"] == "256"
        assert run.data.params["hidden_activation"] == "relu"
        assert run.data.metrics["objective"] == pytest.approx(trial.score)
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert sorted(m.step for m in history) == [1, 2]
        assert max(m.value for m in history) == pytest.approx(trial.score)
        # The reproductions' vocabulary: train_* beside val_*, rate and time per epoch.
        for name in ("train_accuracy", "train_loss", "learning_rate", "epoch_time_s"):
            assert sorted(m.step for m in client.get_metric_history(
                run.info.run_id, name)) == [1, 2], name
        assert "accuracy" not in run.data.metrics and "loss" not in run.data.metrics
    tagged = [r for r in children if r.data.tags.get("pepita.best_trial") == "true"]
    assert [r.data.tags["pepita.trial_id"] for r in tagged] == [best.trial_id]
    # The best trial keeps its trained model (Models tab); the others do not.
    models = client.search_logged_models([experiment.experiment_id])
    assert [m.source_run_id for m in models] == [tagged[0].info.run_id]
    reloaded = mlflow.keras.load_model(models[0].model_uri)
    best_model = tuner.get_best_models(1)[0]
    np.testing.assert_allclose(reloaded.predict(validation[0][:8], verbose=0),
                               best_model.predict(validation[0][:8], verbose=0), rtol=1e-5)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["pepita.best_trial_id"] == best.trial_id
    assert parent.data.metrics["best_objective"] == pytest.approx(best.score)

    report = tuning.write_report(tmp_path / "tuning.md", tracking_uri=uri)
    assert "| real |" in report and f"{best.score:.4f}" in report
    assert (tmp_path / "tuning.md").read_text() == report


def test_tune_report_shows_the_last_epoch_beside_the_best_epoch():
    # keras-tuner scores a trial by its best epoch; a trial that peaked and then
    # degraded (0.956 at epoch 4, 0.931 at the end) must show both.
    search = {"name": "s", "search_id": "x", "run_id": "r", "status": "FINISHED",
              "params": {}, "tags": {}, "objective": "val_accuracy", "best_objective": 0.9616,
              "counts": {"COMPLETED": 2}, "wall_s": 60.0, "started": "2026-11-27 14:43 UTC",
              "command": "",
              "trials": [{"trial_id": "1", "objective": 0.9616, "final": 0.9612, "best": True,
                          "params": {"learning_rate": "10"}, "run_id": "a"},
                         {"trial_id": "6", "objective": 0.9562, "final": 0.9306, "best": False,
                          "params": {"learning_rate": "30"}, "run_id": "b"}]}
    report = tuning.format_report([search], store="sqlite:///reproductions/results/tracking.db")
    assert "| rank | trial | val_accuracy (best epoch) | last epoch | learning_rate |" in report
    assert "| 2 | 6 | 0.9562 | 0.9306 | 30 |" in report
    assert "the MLflow store `sqlite:///reproductions/results/tracking.db`" in report


def test_tune_report_refuses_to_drop_searches_the_store_lacks(tmp_path, capsys):
    # A report listing a search (by its MLflow parent run id) that the store
    # does not hold is not overwritten: the search would vanish from it.
    report = tmp_path / "tuning.md"
    old = ("# Hyperparameter searches\n\n## older_search\n\n- Started 2026-11-26 23:52 UTC, "
           "status FINISHED, wall time 21 s, MLflow parent run `a84de9c157174ee9aa2e00b833e461de`\n")
    report.write_text(old)
    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    from pepita_keras.store import tracking

    tracking.client(uri).search_experiments()  # an empty store (a missing one is refused)
    with pytest.raises(tuning.ShrinkingReportError, match="older_search"):
        tuning.write_report(report, tracking_uri=uri)
    assert report.read_text() == old
    # The CLI says so in one line, exit status 1, and names the way out.
    assert cli.main(["tune-report", "--tracking-uri", uri, "--output", str(report)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines()
              if line.startswith("pepita tune-report: error: ")]
    assert len(errors) == 1 and "Refusing to overwrite" in errors[0] and "--force" in errors[0]
    assert report.read_text() == old
    # --force replaces it.
    assert cli.main(["tune-report", "--tracking-uri", uri, "--output", str(report),
                     "--force"]) == 0
    assert "older_search" not in report.read_text()
    assert "No search found in MLflow." in report.read_text()


@pytest.mark.slow  # a fresh process (TF + MLflow imports) and two tiny trials: ~40 s
def test_tune_cli_synthetic_into_a_given_store_prints_store_and_runs(tmp_path):
    import mlflow

    store = tmp_path / "given.db"
    uri = f"sqlite:///{store}"
    # MLFLOW_TRACKING_URI points elsewhere: --tracking-uri must win.
    env = _env(tmp_path, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'other.db'}")
    env.pop("PEPITA_DATA_DIR", None)  # no dataset needed with --synthetic
    command = [sys.executable, "-m", "pepita_keras.cli", "tune", "pepita_fc_mnist", "--smoke",
               "--synthetic", "--tracking-uri", uri, "--directory", str(tmp_path / "search")]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(tuners.DEFAULT_EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("pepita.role") == "search"]
    trials = [r for r in runs if r.data.tags.get("pepita.role") == "trial"]
    assert len(trials) == 2
    # The user is told where the runs are.
    assert str(store) in result.stdout and parent.info.run_id in result.stdout
    best = [r for r in trials if r.data.tags.get("pepita.best_trial") == "true"]
    assert best[0].info.run_id in result.stdout
    # The data says it is synthetic, in the run's datasets and tags.
    names = sorted(d.dataset.name for d in parent.inputs.dataset_inputs)
    assert names == ["mnist-synthetic-train", "mnist-synthetic-validation"]
    for run in [parent] + trials:
        assert run.data.tags["pepita.synthetic"] == "true"
        assert (run.data.tags["pepita.rule"], run.data.tags["pepita.dataset"],
                run.data.tags["pepita.architecture"]) == ("pepita", "mnist", "fc")
    assert not (tmp_path / "other.db").exists() and not (tmp_path / "mlruns").exists()


# ---------------------------------------------------------------------------
# The CLI in real subprocesses: resume after a kill, distributed search.
# ---------------------------------------------------------------------------
_CONFIG = """
from common import paper_cell
from pepita_keras.tuning.configs import TuningConfig


def get_config():
    space = {{"hidden_units": 64, "num_hidden_layers": 1, "dropout": 0.0,
             "batch_size": [64, 128]}}
    for flag in ("modulation_sign", "normalize_activations", "update_form", "time_local"):
        space[flag] = None
    return TuningConfig(name="{name}", experiment=paper_cell("pepita", "fc", "mnist"),
                        space=space, max_trials={trials}, epochs=1,
                        train_examples=1024, val_examples=512, seed=0)
"""


def _write_config(tmp_path, name, trials):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(_CONFIG.format(name=name, trials=trials)))
    return path


def _env(tmp_path, **extra):
    env = dict(os.environ)
    env.update(
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def _tune(config, tmp_path, env, log):
    command = [sys.executable, "-m", "pepita_keras.cli", "tune", str(config),
               "--directory", str(tmp_path / "search")]
    return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def _init_store(uri):
    # The schema exists (fixture); the experiment too, before several
    # processes open the store.
    from pepita_keras.store import tracking

    client = tracking.client(uri)
    tracking.experiment_id(client, tuners.DEFAULT_EXPERIMENT)
    return client


def _trial_runs(client):
    experiment = client.get_experiment_by_name(tuners.DEFAULT_EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("pepita.role") == "search"]
    trials = [r for r in runs if r.data.tags.get("pepita.role") == "trial"]
    return parents, trials


def _oracle_statuses(project):
    import json

    return {
        path.parent.name: json.loads(path.read_text())["status"]
        for path in project.glob("trial_*/trial.json")
    }


@pytest.mark.slow
@pytest.mark.real_data
def test_killed_search_resumes_without_duplicate_mlflow_runs(tmp_path, mlflow_uri):
    client = _init_store(mlflow_uri)
    config = _write_config(tmp_path, "resume", trials=4)
    env = _env(tmp_path)
    project = tmp_path / "search" / "resume"
    with open(tmp_path / "first.log", "w") as log:
        process = _tune(config, tmp_path, env, log)
        deadline = time.monotonic() + 300
        # Kill while the second trial runs (its MLflow run is open).
        while not any(r.data.tags.get("pepita.trial_id") == "1"
                      for r in _trial_runs(client)[1]):
            assert process.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        process.wait()
    statuses = _oracle_statuses(project)
    assert statuses.get("trial_0") == "COMPLETED" and statuses["trial_1"] == "RUNNING"

    with open(tmp_path / "second.log", "w") as log:
        process = _tune(config, tmp_path, env, log)
        assert process.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()
    statuses = _oracle_statuses(project)
    assert statuses == {f"trial_{i}": "COMPLETED" for i in range(4)}

    parents, trials = _trial_runs(client)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    ids = [r.data.tags["pepita.trial_id"] for r in trials]
    assert sorted(ids) == ["0", "1", "2", "3"]  # once each
    assert all(r.info.status == "FINISHED" for r in trials)
    attempts = {r.data.tags["pepita.trial_id"]: r.data.tags["pepita.attempts"] for r in trials}
    assert attempts == {"0": "1", "1": "2", "2": "1", "3": "1"}
    assert sum(r.data.tags.get("pepita.best_trial") == "true" for r in trials) == 1


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.real_data
def test_distributed_search_chief_and_two_workers(tmp_path, mlflow_uri):
    client = _init_store(mlflow_uri)
    config = _write_config(tmp_path, "dist", trials=4)
    port = str(_free_port())
    processes = {}
    logs = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        env = _env(tmp_path, KERASTUNER_TUNER_ID=tuner_id,
                   KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=port)
        logs[tuner_id] = open(tmp_path / f"{tuner_id}.log", "w")
        processes[tuner_id] = _tune(config, tmp_path, env, logs[tuner_id])
    try:
        for tuner_id, process in processes.items():
            code = process.wait(timeout=600)
            assert code == 0, (tmp_path / f"{tuner_id}.log").read_text()
    finally:
        for tuner_id, process in processes.items():
            if process.poll() is None:
                process.kill()
            logs[tuner_id].close()

    statuses = _oracle_statuses(tmp_path / "search" / "dist")
    assert statuses == {f"trial_{i}": "COMPLETED" for i in range(4)}
    parents, trials = _trial_runs(client)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(r.data.tags["pepita.trial_id"] for r in trials) == ["0", "1", "2", "3"]
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in trials)
    assert all(r.info.status == "FINISHED" for r in trials)
    # Trials ran in the workers, never in the chief.
    assert {r.data.tags["pepita.tuner_id"] for r in trials} <= {"tuner0", "tuner1"}
    assert sum(r.data.tags.get("pepita.best_trial") == "true" for r in trials) == 1
    assert "pepita.best_trial_id" in parents[0].data.tags


def test_a_search_resumed_with_other_settings_is_refused(tmp_path):
    from pepita_keras.tuning import commands

    folder = tmp_path / "search"
    settings = {"epochs": 3, "train_examples": 10000, "space.learning_rate": [0.1, 0.01]}
    commands._check_same_search(folder, settings, overwrite=False)
    commands._check_same_search(folder, dict(settings), overwrite=False)  # same: resumes
    with pytest.raises(ValueError, match=r"epochs: 3 → 5.*--project-name"):
        commands._check_same_search(folder, dict(settings, epochs=5), overwrite=False)
    # --overwrite starts over and records the new settings.
    commands._check_same_search(folder, dict(settings, epochs=5), overwrite=True)
    with pytest.raises(ValueError, match=r"epochs: 5 → 3"):
        commands._check_same_search(folder, settings, overwrite=False)
