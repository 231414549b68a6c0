"""What a researcher sees in MLflow: artifacts that travel with the repo, names,
tags, datasets, models, per-epoch steps, parent summaries, and the migration
of stores written by older versions.

Expectations come from what the user looks at — `MlflowClient` listings and
downloads from another copy of the repository, run names, tags, metric steps,
the files' SHA-256 computed here with hashlib — never from the runner's own
return values.
"""

import hashlib
import importlib.util
import io
import json
import os
import pathlib
import shutil
import time

import numpy as np
import pytest

from pepita_keras import callbacks, experiment_config, reproduce, results
from pepita_keras.store import checkpoints, dataset_inputs, migrate, plots, recorder, tracking

SEED_ARTIFACTS = {"learning_curves.png", "history.json", "alignment.json", "environment.json"}
COMMITTED = pathlib.PurePosixPath(tracking.COMMITTED_STORE)


@pytest.fixture
def in_folder():
    """Runs a block in another working directory, restoring it afterwards."""
    previous = os.getcwd()

    def enter(folder):
        os.chdir(folder)

    yield enter
    os.chdir(previous)


def _clone_store(root):
    (root / COMMITTED.parent).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / COMMITTED}"


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A 2-seed synthetic run into a committed-store layout, started from another folder."""
    root = tmp_path_factory.mktemp("clone")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    uri = _clone_store(root)
    config = experiment_config.load_config("fc_mnist_pepita").smoke_version().replace(epochs=2)
    previous = os.getcwd()
    os.chdir(elsewhere)
    try:
        parent, seeds = reproduce.reproduce(config, seeds=[0, 1], synthetic=True,
                                            run_root=elsewhere / "runs", tracking_uri=uri,
                                            verbose=0)
    finally:
        os.chdir(previous)
    return {"root": root, "elsewhere": elsewhere, "uri": uri, "parent": parent,
            "seeds": seeds, "config": config}


def _runs(client, experiment_name=reproduce.DEFAULT_EXPERIMENT):
    found = client.get_experiment_by_name(experiment_name)
    return client.search_runs([found.experiment_id], max_results=1000)


def _steps(client, run_id, key):
    return [m.step for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def _values(client, run_id, key):
    return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


# ---------------------------------------------------------------------------
# The committed store is self-contained.
# ---------------------------------------------------------------------------
def test_committed_store_artifacts_open_from_a_copy_of_the_repo(clone, tmp_path, in_folder):
    import mlflow

    # Nothing was written where the process happened to run.
    assert sorted(p.name for p in clone["elsewhere"].iterdir()) == ["runs"]
    copy = tmp_path / "another_clone"
    shutil.copytree(clone["root"], copy)
    moved = clone["root"].with_name(clone["root"].name + "-away")
    clone["root"].rename(moved)  # the original location is gone
    try:
        in_folder(copy)
        # What the README tells the user to run, from the copy's root.
        client = mlflow.MlflowClient("sqlite:///reproductions/results/tracking.db")
        found = client.get_experiment_by_name(reproduce.DEFAULT_EXPERIMENT)
        assert found.artifact_location == "reproductions/results/artifacts/pepita-reproductions"
        seeds = [r for r in _runs(client) if r.data.tags["pepita.role"] == "seed"]
        assert len(seeds) == 2
        for run in seeds:
            listed = {a.path for a in client.list_artifacts(run.info.run_id)}
            assert listed == SEED_ARTIFACTS
            path = client.download_artifacts(run.info.run_id, "history.json", str(tmp_path))
            history = json.loads(pathlib.Path(path).read_text())
            assert history["test_accuracy"] == _values(client, run.info.run_id, "test_accuracy")
        (parent,) = [r for r in _runs(client) if r.data.tags["pepita.role"] == "cell"]
        assert [a.path for a in client.list_artifacts(parent.info.run_id)] == ["cell_curves.png"]
    finally:
        moved.rename(clone["root"])


def test_seed_runs_names_tags_steps_datasets_and_model(clone, in_folder, monkeypatch):
    import mlflow.keras

    # As a user would load a model: from the repository root, store configured.
    in_folder(clone["root"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", clone["uri"])

    client = tracking.client(clone["uri"])
    config = clone["config"]
    seeds = {r.data.tags["pepita.seed"]: r for r in _runs(client)
             if r.data.tags.get("pepita.role") == "seed"}
    for seed, result in zip(("0", "1"), clone["seeds"]):
        run = seeds[seed]
        assert run.info.run_name == f"{config.run_name}/seed{seed}"
        tags = run.data.tags
        assert (tags["pepita.rule"], tags["pepita.dataset"], tags["pepita.architecture"]) == (
            "pepita", "mnist", "fc")
        assert tags["pepita.synthetic"] == "true" and "pepita.kind" not in tags
        # The test process runs TensorFlow; this machine has no GPU (CI neither).
        assert tags["pepita.platform"] == "tensorflow-cpu"
        for key in ("test_accuracy", "train_loss", "learning_rate", "epoch_time_s",
                    "load_avg_1min"):
            assert _steps(client, run.info.run_id, key) == [1, 2], key
        assert _values(client, run.info.run_id, "learning_rate") == pytest.approx([0.1, 0.1])
        # A synthetic run says so in its datasets, not "mnist".
        datasets = {d.dataset.name: d for d in run.inputs.dataset_inputs}
        assert sorted(datasets) == ["mnist-synthetic-test", "mnist-synthetic-train"]
        assert {d.dataset.source_type for d in datasets.values()} == {"code"}
        contexts = {d.tags[0].value for d in datasets.values()}
        assert contexts == {"train", "test"}
        # The final model is an MLflow model that loads and predicts like the trained one.
        (model,) = client.search_logged_models(
            [run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'")
        x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
        loaded = mlflow.keras.load_model(f"models:/{model.model_id}")
        np.testing.assert_allclose(loaded.predict(x, verbose=0),
                                   result.model.predict(x, verbose=0), rtol=1e-5)


def test_parent_has_per_epoch_mean_std_and_its_summary_once(clone, in_folder):
    client = tracking.client(clone["uri"])
    parent = clone["parent"]
    seeds = [r for r in _runs(client) if r.data.tags.get("pepita.role") == "seed"]
    per_seed = np.array([_values(client, r.info.run_id, "test_accuracy") for r in seeds])
    assert _steps(client, parent, "test_accuracy_mean") == [1, 2]
    np.testing.assert_allclose(_values(client, parent, "test_accuracy_mean"),
                               per_seed.mean(axis=0))
    np.testing.assert_allclose(_values(client, parent, "test_accuracy_std"),
                               per_seed.std(axis=0, ddof=1))
    finals = [r.data.metrics["final_test_accuracy"] for r in seeds]
    # Rerunning the finished command logs nothing new.
    in_folder(clone["elsewhere"])
    reproduce.reproduce(clone["config"], seeds=[0, 1], synthetic=True,
                        run_root=clone["elsewhere"] / "runs", tracking_uri=clone["uri"],
                        verbose=0)
    history = client.get_metric_history(parent, "final_test_accuracy_mean")
    assert [m.value for m in history] == pytest.approx([np.mean(finals)])  # once, a fraction
    assert len(client.get_metric_history(parent, "n_seeds")) == 1


def test_a_run_on_real_files_records_their_sha256(tmp_path, mlflow_template_uri, in_folder):
    from test_reproductions import write_fake_datasets

    data = write_fake_datasets(tmp_path / "data", cifar=False)
    config = experiment_config.load_config("fc_mnist_bp").smoke_version()
    in_folder(tmp_path)
    reproduce.reproduce(config, seeds=[0], data_dir=data, verify=False,
                        run_root=tmp_path / "runs", tracking_uri=mlflow_template_uri, verbose=0)
    client = tracking.client(mlflow_template_uri)
    (run,) = [r for r in _runs(client) if r.data.tags.get("pepita.role") == "seed"]
    inputs = {d.dataset.name: d.dataset for d in run.inputs.dataset_inputs}
    assert sorted(inputs) == ["mnist-test", "mnist-train"]
    assert json.loads(inputs["mnist-train"].source) == {"uri": str(data / "mnist")}
    path = client.download_artifacts(run.info.run_id, "environment.json", str(tmp_path))
    recorded = json.loads(pathlib.Path(path).read_text())["data"]
    for split, stem in (("train", "train"), ("test", "t10k")):
        expected = {f"{stem}-{kind}": hashlib.sha256(
            (data / "mnist" / f"{stem}-{kind}").read_bytes()).hexdigest()
            for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")}
        assert recorded[split]["sha256"] == expected
        assert recorded[split]["digest"] == inputs[f"mnist-{split}"].digest
    # Other file contents → another digest; the same files → the same digest.
    arrays = ((np.zeros((3, 28, 28, 1)), np.zeros(3)), (np.zeros((2, 28, 28, 1)), np.zeros(2)))
    before = [i.dataset.digest for i in dataset_inputs.of_arrays(config, arrays, data)]
    again = [i.dataset.digest for i in dataset_inputs.of_arrays(config, arrays, data)]
    labels = data / "mnist" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-1] + b"\x01")
    after = [i.dataset.digest for i in dataset_inputs.of_arrays(config, arrays, data)]
    assert again == before and after[0] == before[0] and after[1] != before[1]


@pytest.fixture
def mlflow_template_uri(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


# ---------------------------------------------------------------------------
# Migrating a store written before these changes.
# ---------------------------------------------------------------------------
def _three_epochs():
    return experiment_config.load_config("fc_mnist_pepita").replace(epochs=3)


def _old_store(root, old_artifacts):
    """Runs as the previous version wrote them (schema 1), via MlflowClient."""
    import mlflow
    from mlflow.entities import Metric, Param

    uri = _clone_store(root)
    client = mlflow.MlflowClient(uri)
    eid = client.create_experiment(reproduce.DEFAULT_EXPERIMENT,
                                   artifact_location=str(old_artifacts))
    # The full config as params, as the runner logs it.
    config = _three_epochs()
    params = [Param(k, tracking.param_value(v)) for k, v in config.flatten().items()]
    parent = client.create_run(eid, run_name="fc_mnist_pepita", tags={
        "pepita.kind": "cell", "pepita.cell": "fc_mnist_pepita", "pepita.smoke": "0"})
    for start in range(0, len(params), 100):
        client.log_batch(parent.info.run_id, params=params[start:start + 100])
    curves = {0: [0.90, 0.95, 0.97], 1: [0.91, 0.96, 0.98]}
    for seed, curve in curves.items():
        run = client.create_run(eid, run_name=f"seed{seed}", tags={
            "pepita.kind": "seed", "pepita.cell": "fc_mnist_pepita", "pepita.seed": str(seed),
            "pepita.smoke": "0", "pepita.complete": "True", "hardware": "some CPU",
            "git.commit": "abc", "git.dirty": "1", "mlflow.parentRunId": parent.info.run_id})
        client.log_batch(run.info.run_id, params=[Param("seed", str(seed)),
                                                  Param("rule", "pepita")], metrics=[
            Metric(key, value, 1000 + step, step)
            for step, accuracy in enumerate(curve)
            for key, value in (("test_accuracy", accuracy), ("train_accuracy", accuracy + 0.01),
                               ("train_loss", 1 - accuracy), ("alignment_angle_F", 90 + step))
        ] + [Metric("final_test_accuracy", curve[-1], 2000, 3)])
        client.set_terminated(run.info.run_id)
    # The old parent summary: percent, logged again by a second call.
    for timestamp in (3000, 4000):
        client.log_batch(parent.info.run_id, metrics=[
            Metric("test_accuracy_mean", 97.5, timestamp, 0),
            Metric("n_seeds", 2, timestamp, 0)])
    client.set_terminated(parent.info.run_id)
    return uri, curves, parent.info.run_id


def test_migrate_store_upgrades_old_runs_once(tmp_path, in_folder):
    root = tmp_path / "repo"
    uri, curves, parent_id = _old_store(root, tmp_path / "old_artifacts")
    in_folder(tmp_path)  # not the repository root
    report = migrate.migrate_store(uri)
    assert report["experiments_moved"] >= 1 and report["runs_upgraded"] == 3
    client = tracking.client(uri)
    found = client.get_experiment_by_name(reproduce.DEFAULT_EXPERIMENT)
    assert found.artifact_location == "reproductions/results/artifacts/pepita-reproductions"

    def snapshot():
        runs = {r.info.run_name: r for r in _runs(client)}
        return runs, {name: {key: len(client.get_metric_history(r.info.run_id, key))
                             for key in r.data.metrics} for name, r in runs.items()}

    runs, lengths = snapshot()
    # 3 epochs are not the shipped config's 100: named as such a run is named today.
    name = f"fc_mnist_pepita-custom-{_three_epochs().settings_digest()}"
    assert sorted(runs) == [name, f"{name}/seed0", f"{name}/seed1"]
    for seed, curve in curves.items():
        run = runs[f"{name}/seed{seed}"]
        tags = run.data.tags
        assert tags["pepita.role"] == "seed" and "pepita.kind" not in tags
        assert (tags["pepita.rule"], tags["pepita.dataset"], tags["pepita.architecture"]) == (
            "pepita", "mnist", "fc")
        assert (tags["pepita.smoke"], tags["pepita.complete"], tags["git.dirty"]) == (
            "false", "true", "true")
        assert _steps(client, run.info.run_id, "test_accuracy") == [1, 2, 3]
        assert _values(client, run.info.run_id, "test_accuracy") == pytest.approx(curve)
        assert _steps(client, run.info.run_id, "final_test_accuracy") == [3]
        assert {a.path for a in tracking.list_artifacts(client, run.info.run_id)} == SEED_ARTIFACTS
        path = tracking.download_artifact(client, run.info.run_id, "history.json", tmp_path)
        history = json.loads(pathlib.Path(path).read_text())
        assert history["test_accuracy"] == pytest.approx(curve)
        path = tracking.download_artifact(client, run.info.run_id, "environment.json", tmp_path)
        environment = json.loads(pathlib.Path(path).read_text())
        assert environment["environment"]["hardware"] == "some CPU"
        assert "migrate-store" in environment["rebuilt_by"]
    parent = runs[name]
    assert parent.data.tags["pepita.role"] == "cell"
    assert parent.data.tags["pepita.previous_name"] == "fc_mnist_pepita"
    assert parent.data.tags["pepita.settings"] == "custom"
    finals = [curve[-1] for curve in curves.values()]
    assert _values(client, parent_id, "final_test_accuracy_mean") == pytest.approx(
        [np.mean(finals)])  # a fraction, once
    assert "test_accuracy_mean" in parent.data.metrics
    assert _steps(client, parent_id, "test_accuracy_mean") == [1, 2, 3]
    assert _values(client, parent_id, "test_accuracy_mean") == pytest.approx(
        np.mean(list(curves.values()), axis=0))
    assert _values(client, parent_id, "n_seeds") == [2]
    assert max(_values(client, parent_id, "test_accuracy_mean")) <= 1  # no percent left
    assert "cell_curves.png" in {a.path for a in tracking.list_artifacts(client, parent_id)}
    # The files are inside the repository, at the relative location.
    assert (root / "reproductions/results/artifacts/pepita-reproductions").is_dir()
    assert not (tmp_path / "reproductions").exists()

    # The table reads the migrated store as before (percent).
    config = experiment_config.load_config("fc_mnist_pepita").replace(epochs=3)
    cell = results.collect(client, configs={"fc_mnist_pepita": config})["fc_mnist_pepita"]
    assert cell.finals == pytest.approx({0: 97.0, 1: 98.0})

    # Idempotent: a second migration changes nothing.
    again = migrate.migrate_store(uri)
    assert set(again.values()) == {0}
    assert snapshot()[1] == lengths


def test_a_migration_killed_after_shifting_steps_never_shifts_them_again(
        tmp_path, in_folder, monkeypatch):
    root = tmp_path / "repo"
    uri, curves, _ = _old_store(root, tmp_path / "old_artifacts")
    in_folder(tmp_path)
    real = tracking.set_tags

    def killed(client, run_id, tags):
        if tracking.SCHEMA_TAG in tags:  # right after a run's step shift committed
            raise KeyboardInterrupt
        return real(client, run_id, tags)

    monkeypatch.setattr(tracking, "set_tags", killed)
    with pytest.raises(KeyboardInterrupt):
        migrate.migrate_store(uri)
    monkeypatch.setattr(tracking, "set_tags", real)
    migrate.migrate_store(uri)
    client = tracking.client(uri)
    seeds = [r for r in _runs(client) if r.data.tags.get("pepita.role") == "seed"]
    assert len(seeds) == 2
    for run in seeds:
        assert _steps(client, run.info.run_id, "test_accuracy") == [1, 2, 3]


def test_migrate_store_names_runs_after_a_changed_shipped_config(
        tmp_path, mlflow_template_uri, monkeypatch):
    # Runs made before a shipped config took the settings of a `--set` run:
    # the `--set` run becomes the cell (name, folder, next seeds, table), and
    # the run of the old settings becomes `<cell>-custom-<digest>`.
    base, adopted, shipped, options = _config_change(tmp_path, monkeypatch)
    runs_root = options["run_root"]
    old_parent, _ = reproduce.reproduce(base, seeds=[0], **options)
    new_parent, _ = reproduce.reproduce(adopted, seeds=[0], **options)
    custom = f"fc_mnist_bp-custom-{adopted.settings_digest()}"
    client = tracking.client(mlflow_template_uri)
    assert {r.info.run_name for r in _runs(client)} == {
        "fc_mnist_bp", "fc_mnist_bp/seed0", custom, f"{custom}/seed0"}

    shipped["fc_mnist_bp"] = adopted  # the shipped config changes
    cell = results.collect(client, configs={"fc_mnist_bp": adopted})["fc_mnist_bp"]
    assert sorted(cell.outdated_names) == ["fc_mnist_bp", custom]
    report = migrate.migrate_store(mlflow_template_uri, rebuild_artifacts=False)
    assert report["runs_renamed"] == 2
    old_name = f"fc_mnist_bp-custom-{base.settings_digest()}"
    runs = {r.info.run_name: r for r in _runs(client)}
    assert set(runs) == {"fc_mnist_bp", "fc_mnist_bp/seed0", old_name, f"{old_name}/seed0"}
    assert runs["fc_mnist_bp"].info.run_id == new_parent
    assert runs[old_name].info.run_id == old_parent
    assert (runs["fc_mnist_bp"].data.tags["pepita.settings"],
            runs["fc_mnist_bp"].data.tags["pepita.previous_name"]) == ("shipped", custom)
    assert (runs[old_name].data.tags["pepita.settings"],
            runs[old_name].data.tags["pepita.previous_name"]) == ("custom", "fc_mnist_bp")
    # The folders moved with their runs.
    for name, run_id in (("fc_mnist_bp", new_parent), (old_name, old_parent)):
        state = json.loads((runs_root / name / recorder.PARENT_FILE).read_text())
        assert state["run_id"] == run_id
        assert runs[name].data.tags["run_dir"] == str(runs_root / name)
    assert not (runs_root / custom).exists()

    # The next seed of the cell joins the adopted parent; the table counts both.
    parent, _ = reproduce.reproduce(adopted, seeds=[1], **options)
    assert parent == new_parent
    cell = results.collect(client, configs={"fc_mnist_bp": adopted})["fc_mnist_bp"]
    assert sorted(cell.finals) == [0, 1]
    assert [key[0] for key in cell.other_runs] == [old_name]
    assert cell.outdated_names == []
    assert migrate.migrate_store(mlflow_template_uri, rebuild_artifacts=False)[
        "runs_renamed"] == 0


def _config_change(tmp_path, monkeypatch):
    """A tiny fc_mnist_bp shipped config, the `--set` version that replaces it, and run options."""
    from test_reproductions import write_fake_datasets

    base = experiment_config.load_config("fc_mnist_bp").replace(
        epochs=1, train_examples=256, test_examples=100)
    shipped = {"fc_mnist_bp": base}
    monkeypatch.setattr(experiment_config, "shipped_config", lambda name: shipped.get(name))
    # The fake files stand in for the official ones (the data is not what these tests vary).
    monkeypatch.setattr(dataset_inputs, "unofficial_data_digest", lambda dataset, inputs: None)
    options = dict(data_dir=write_fake_datasets(tmp_path / "data", cifar=False), verify=False,
                   run_root=tmp_path / "runs", verbose=0)
    return base, base.replace(learning_rate=0.05), shipped, options


def test_a_folder_moved_by_hand_is_not_moved_again(tmp_path, mlflow_template_uri, monkeypatch):
    # `run_dir` still names a folder that now belongs to another parent: the
    # run is renamed, that folder stays where it is.
    base, adopted, shipped, options = _config_change(tmp_path, monkeypatch)
    runs_root = options["run_root"]
    old_parent, _ = reproduce.reproduce(base, seeds=[0], **options)
    (runs_root / "fc_mnist_bp").rename(runs_root / "fc_mnist_bp-by-hand")
    shipped["fc_mnist_bp"] = adopted
    new_parent, _ = reproduce.reproduce(adopted, seeds=[0], **options)
    migrate.migrate_store(mlflow_template_uri, rebuild_artifacts=False)
    state = json.loads((runs_root / "fc_mnist_bp" / recorder.PARENT_FILE).read_text())
    assert state["run_id"] == new_parent
    client = tracking.client(mlflow_template_uri)
    old_name = f"fc_mnist_bp-custom-{base.settings_digest()}"
    assert client.get_run(old_parent).info.run_name == old_name
    assert not (runs_root / old_name).exists()


def test_a_folder_that_stays_keeps_its_seeds_run_dir(tmp_path, mlflow_template_uri, monkeypatch):
    # The new name is taken by a stray folder: the run is renamed, its folder
    # stays, and its seed's run_dir is not pointed into the stray folder.
    base, adopted, shipped, options = _config_change(tmp_path, monkeypatch)
    runs_root = options["run_root"]
    old_parent, _ = reproduce.reproduce(base, seeds=[0], **options)
    old_name = f"fc_mnist_bp-custom-{base.settings_digest()}"
    (runs_root / old_name / "seed0").mkdir(parents=True)
    shipped["fc_mnist_bp"] = adopted
    client = tracking.client(mlflow_template_uri)
    (old_seed,) = recorder.child_runs(client, old_parent)
    migrate.migrate_store(mlflow_template_uri, rebuild_artifacts=False)
    assert client.get_run(old_parent).info.run_name == old_name
    assert json.loads((runs_root / "fc_mnist_bp" / recorder.PARENT_FILE).read_text())[
        "run_id"] == old_parent
    assert client.get_run(old_seed.info.run_id).data.tags["run_dir"] == \
        old_seed.data.tags["run_dir"] == str((runs_root / "fc_mnist_bp" / "seed0").resolve())


def test_a_run_folder_is_moved_only_when_it_is_that_runs_and_idle(tmp_path):
    folder = tmp_path / "fc_mnist_bp"
    (folder / "seed0").mkdir(parents=True)
    (folder / recorder.PARENT_FILE).write_text(json.dumps({"run_id": "abc"}))
    target = tmp_path / "fc_mnist_bp-custom-1"

    def move(run_id):
        return migrate._renamed_folder(str(folder), run_id, "fc_mnist_bp", target.name)

    assert move("another run") == (None, "")
    with checkpoints.RunLock(folder / "seed0" / checkpoints.LOCK_FILE, "fc_mnist_bp seed 0"):
        moved, kept = move("abc")
        assert moved is None and f"in use by pid {os.getpid()}" in kept
    assert checkpoints.lock_holder(folder / "seed0" / checkpoints.LOCK_FILE) is None
    assert move("abc") == (target, "")
    assert (target / "seed0").is_dir() and not folder.exists()


# ---------------------------------------------------------------------------
# CLI progress and plots.
# ---------------------------------------------------------------------------
class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_line_within_an_epoch():
    terminal = _Terminal()
    printer = callbacks.EpochPrinter("[cell seed 0]", epochs=3, steps=100, stream=terminal)
    printer.on_epoch_begin(1)
    printer.last -= 1  # as if half a second had passed
    printer.on_train_batch_end(49, {"loss": 0.5, "accuracy": 0.8})
    printer.on_epoch_end(1, {"loss": 0.4, "accuracy": 0.9, "val_accuracy": 0.91})
    text = terminal.getvalue()
    live, final = text.split("\r")[1], text.split("\r")[2]
    assert "epoch 2/3" in live and "50/100 batches" in live and "ETA" in live
    assert "loss 0.5000" in live
    assert final.rstrip().endswith("test_accuracy 0.9100")

    log = io.StringIO()  # a file: whole lines, every file_interval seconds
    printer = callbacks.EpochPrinter("[cell seed 0]", 3, 100, stream=log, file_interval=0)
    printer.on_epoch_begin(0)
    printer.on_train_batch_end(9, {"loss": 0.5})
    assert "\r" not in log.getvalue() and "10/100 batches" in log.getvalue()

    # 32 steps per call over a 1-batch epoch (full-batch FF): Keras reports
    # step index 31; the line still counts batches of the epoch.
    log = io.StringIO()
    printer = callbacks.EpochPrinter("[ff seed 0]", 3, 1, stream=log, file_interval=0)
    printer.on_epoch_begin(0)
    printer.on_train_batch_end(31, {"loss": 0.5})
    assert "1/1 batches" in log.getvalue() and "ETA 0s" in log.getvalue()


def test_accuracy_axis_follows_the_data():
    # A 1-epoch run at 7.8%: the axis shows 7.8%, not the paper's 90–100% window.
    low, high = plots.accuracy_limits([7.8], paper=(98.01, 0.09))
    assert low < 7.8 < high < 30
    # A run near the paper shows the paper's band too.
    low, high = plots.accuracy_limits([96.0, 97.9], paper=(98.01, 0.09))
    assert low < 96.0 and high > 98.1


def test_one_epoch_plot_has_a_visible_point(tmp_path):
    path = plots.plot_learning_curves(
        {"seed 0": {"train_accuracy": [0.1], "test_accuracy": [0.078]}},
        tmp_path / "curve.png", paper=(98.01, 0.09))
    from matplotlib.image import imread

    image = imread(path)
    # Markers: some pixels of the default colour C0 (#1f77b4) are drawn.
    blue = np.all(np.abs(image[..., :3] - np.array([0x1F, 0x77, 0xB4]) / 255) < 0.05, axis=-1)
    assert blue.sum() > 20


@pytest.mark.slow  # MLflow's system-metrics sampler thread (~5 s)
def test_system_metrics_option(tmp_path, monkeypatch):
    from pepita_keras import cli

    args = cli.build_parser().parse_args(["reproduce", "fc_mnist_bp", "--system-metrics"])
    assert args.system_metrics
    client = tracking.client(f"sqlite:///{tmp_path / 'store.db'}")
    run = tracking.create_run(client, tracking.experiment_id(client, "system"), "run")
    if importlib.util.find_spec("psutil") is None:
        # Without psutil MLflow would silently record nothing: say what is missing.
        with pytest.raises(ValueError, match="pip install psutil"):
            tracking.SystemMetrics(client, run)
        return
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "1")
    with tracking.SystemMetrics(client, run, sampling_interval=1):
        time.sleep(4)
    assert any(key.startswith("system/cpu") for key in client.get_run(run).data.metrics)


def test_resuming_a_run_recorded_with_0_based_steps_asks_for_migrate_store_first(
        tmp_path, monkeypatch, mlflow_template_uri):
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric

    config = experiment_config.load_config("fc_mnist_bp").smoke_version().replace(epochs=2)
    original = callbacks.MLflowMetricsCallback.on_epoch_end

    def stop_after_first_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        raise KeyboardInterrupt  # as Ctrl-C after epoch 1 was checkpointed and logged

    monkeypatch.setattr(callbacks.MLflowMetricsCallback, "on_epoch_end", stop_after_first_epoch)
    run = dict(seeds=[0], synthetic=True, run_root=tmp_path / "runs", verbose=0)
    with pytest.raises(KeyboardInterrupt):
        reproduce.reproduce(config, **run)
    monkeypatch.setattr(callbacks.MLflowMetricsCallback, "on_epoch_end", original)
    # Make the interrupted run look like the previous version wrote it.
    client = tracking.client(mlflow_template_uri)
    (seed,) = [r for r in _runs(client) if r.data.tags.get("pepita.role") == "seed"]
    run_id = seed.info.run_id
    with tracking._sql_store(mlflow_template_uri).ManagedSessionMaker() as session:
        for model in (SqlMetric, SqlLatestMetric):
            session.query(model).filter(model.run_uuid == run_id).update(
                {model.step: model.step - 1}, synchronize_session=False)
    client.delete_tag(run_id, tracking.SCHEMA_TAG)
    client.update_run(run_id, name="seed0")
    assert _steps(client, run_id, "test_accuracy") == [0]

    # Resuming never runs migration code itself: one line naming the command.
    with pytest.raises(ValueError, match="upgrade the store first: pepita migrate-store"):
        reproduce.reproduce(config, **run)
    assert _steps(client, run_id, "test_accuracy") == [0]  # untouched
    migrate.migrate_store(mlflow_template_uri, rebuild_artifacts=False)
    reproduce.reproduce(config, **run)
    upgraded = client.get_run(run_id)
    assert upgraded.info.status == "FINISHED"
    assert upgraded.info.run_name == f"{config.run_name}/seed0"
    assert _steps(client, run_id, "test_accuracy") == [1, 2]  # each epoch once, 1-based
    assert sorted(d.dataset.name for d in upgraded.inputs.dataset_inputs) == [
        "mnist-synthetic-test", "mnist-synthetic-train"]


# ---------------------------------------------------------------------------
# Runs from another machine's store (`pepita merge-store`), shown per platform.
# ---------------------------------------------------------------------------
def _on_a_gpu(monkeypatch):
    """Makes the next runs record themselves as Keras-JAX on an H100."""
    from pepita_keras.store import provenance

    gpu = dict(provenance.environment_info(), platform_name="jax-gpu",
               hardware="Intel Xeon, 16 CPU cores, 1×NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(provenance, "environment_info", lambda: gpu)


@pytest.mark.slow  # a reproduction, a merge with artifacts and a rerun (~7 s)
def test_merged_gpu_runs_keep_everything_and_show_beside_the_cell(tmp_path, monkeypatch):
    import tarfile

    from pepita_keras.store import merge as store_merge

    config = experiment_config.load_config("fc_mnist_pepita").smoke_version().replace(epochs=2)
    here = f"sqlite:///{tmp_path / 'here' / 'tracking.db'}"
    reproduce.reproduce(config, seeds=[0], synthetic=True, run_root=tmp_path / "runs_here",
                        tracking_uri=here, verbose=0)
    with monkeypatch.context() as patch:
        _on_a_gpu(patch)
        gpu_db = tmp_path / "gpu" / "tracking.db"
        reproduce.reproduce(config, seeds=[0, 1], synthetic=True, run_root=tmp_path / "runs_gpu",
                            tracking_uri=f"sqlite:///{gpu_db}", verbose=0)
    gpu = tracking.client(f"sqlite:///{gpu_db}")
    # The GPU machine's artifacts travel as an archive; its folders are not here.
    archive = tmp_path / "artifacts.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(gpu_db.parent / tracking.ARTIFACTS_FOLDER, arcname=tracking.ARTIFACTS_FOLDER)
    shutil.move(gpu_db.parent / tracking.ARTIFACTS_FOLDER, tmp_path / "gone")

    counts = store_merge.merge_store(gpu_db, here, artifacts_archive=archive, say=lambda _: None)
    assert counts == {"copied": 3, "already_merged": 0}
    client = tracking.client(here)
    runs = {run.info.run_name: run for run in _runs(client)
            if run.data.tags.get("pepita.platform") == "jax-gpu"}
    sources = {run.info.run_name: run for run in _runs(gpu)}
    assert set(runs) == set(sources) == {config.run_name, f"{config.run_name}/seed0",
                                         f"{config.run_name}/seed1"}
    parent = runs[config.run_name]
    for name in (f"{config.run_name}/seed0", f"{config.run_name}/seed1"):
        copy, original = runs[name], sources[name]
        assert copy.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert copy.data.tags[store_merge.MERGED_FROM_TAG] == original.info.run_id
        assert copy.data.params == original.data.params
        assert copy.info.status == original.info.status == "FINISHED"
        assert (copy.info.start_time, copy.info.end_time) == (original.info.start_time,
                                                              original.info.end_time)
        for key in ("test_accuracy", "train_loss", "epoch_time_s"):
            assert _steps(client, copy.info.run_id, key) == [1, 2]
            assert _values(client, copy.info.run_id, key) == _values(
                gpu, original.info.run_id, key)
        assert ([i.dataset.digest for i in copy.inputs.dataset_inputs]
                == [i.dataset.digest for i in original.inputs.dataset_inputs])
        folder = tmp_path / "downloads" / name.replace("/", "_")
        folder.mkdir(parents=True)
        local = pathlib.Path(client.download_artifacts(copy.info.run_id, "", str(folder)))
        assert SEED_ARTIFACTS <= {p.name for p in local.iterdir()}
        history = json.loads((local / "history.json").read_text())
        assert history["test_accuracy"] == pytest.approx(
            _values(gpu, original.info.run_id, "test_accuracy"))

    cells = results.collect(client, configs={config.name: config}, include_smoke=True)
    cell = cells[config.name]
    assert sorted(cell.finals) == [0]
    assert list(cell.platforms) == ["jax-gpu"]
    on_gpu = cell.platforms["jax-gpu"]
    assert sorted(on_gpu.finals) == [0, 1] and on_gpu.hardware == {
        "Intel Xeon, 16 CPU cores, 1×NVIDIA H100 80GB HBM3"}
    readme = results.write_results(cells, output=tmp_path / "table", plots=False).read_text()
    section = readme.split("## The same cells on other platforms")[1].split("## Settings")[0]
    row = next(line for line in section.splitlines() if line.startswith(f"| `{config.name}`"))
    assert "| jax-gpu |" in row and f"{on_gpu.mean:.2f}" in row and f"{cell.mean:.2f}" in row

    again = store_merge.merge_store(gpu_db, here, artifacts_archive=archive, say=lambda _: None)
    assert again == {"copied": 0, "already_merged": 3}


@pytest.mark.slow  # three reproductions and four merges (~9 s)
def test_seeds_merged_from_two_stores_share_one_parent(tmp_path, monkeypatch):
    # A device session is short: seed 0 comes home in one store, seed 1 in the
    # next. Merged, the cell has one parent on that platform, summarised over
    # both seeds; the CPU parent of the same cell stays apart.
    from pepita_keras.store import merge as store_merge

    config = experiment_config.load_config("fc_mnist_pepita").smoke_version().replace(epochs=2)
    here = f"sqlite:///{tmp_path / 'here' / 'tracking.db'}"
    reproduce.reproduce(config, seeds=[0], synthetic=True, run_root=tmp_path / "runs_here",
                        tracking_uri=here, verbose=0)
    stores = {}
    with monkeypatch.context() as patch:
        _on_a_gpu(patch)
        for name, seed in (("first", 0), ("second", 1)):
            stores[name] = tmp_path / name / "tracking.db"
            reproduce.reproduce(config, seeds=[seed], synthetic=True,
                                run_root=tmp_path / f"runs_{name}",
                                tracking_uri=f"sqlite:///{stores[name]}", verbose=0)
    # The second store's parent lists seeds 1 (which ended there) and 5 (which never did).
    second = tracking.client(f"sqlite:///{stores['second']}")
    (second_parent,) = [r for r in _runs(second) if r.data.tags.get("pepita.role") == "cell"]
    second.set_tag(second_parent.info.run_id, "pepita.unfinished_seeds", "1,5,../x")
    quiet = {"say": lambda _: None}
    assert store_merge.merge_store(stores["first"], here, **quiet) == {
        "copied": 2, "already_merged": 0}
    assert store_merge.merge_store(stores["second"], here, **quiet) == {
        "copied": 1, "already_merged": 0, "joined": 1}
    for name in ("first", "second"):  # again: nothing new, nothing joined twice
        assert store_merge.merge_store(stores[name], here, **quiet) == {
            "copied": 0, "already_merged": 2}

    client = tracking.client(here)
    parents = {r.data.tags["pepita.platform"]: r for r in _runs(client)
               if r.data.tags.get("pepita.role") == "cell"}
    assert sorted(parents) == ["jax-gpu", "tensorflow-cpu"]
    gpu_parent = parents["jax-gpu"]
    children = [r for r in _runs(client)
                if r.data.tags.get("mlflow.parentRunId") == gpu_parent.info.run_id]
    assert sorted(r.data.tags["pepita.seed"] for r in children) == ["0", "1"]
    cpu_parent = parents["tensorflow-cpu"].info.run_id
    cpu_children = [r for r in _runs(client) if r.data.tags.get("mlflow.parentRunId") == cpu_parent]
    assert [r.data.tags["pepita.seed"] for r in cpu_children] == ["0"]
    # The parent's summary is that of both seeds, from the seeds' own metrics.
    finals = np.array([r.data.metrics["final_test_accuracy"] for r in children])
    assert gpu_parent.data.metrics["n_seeds"] == 2
    assert gpu_parent.data.metrics["final_test_accuracy_mean"] == pytest.approx(finals.mean())
    assert gpu_parent.data.metrics["final_test_accuracy_std"] == pytest.approx(finals.std(ddof=1))
    curves = np.array([_values(client, r.info.run_id, "test_accuracy") for r in children])
    assert _steps(client, gpu_parent.info.run_id, "test_accuracy_mean") == [1, 2]
    assert _values(client, gpu_parent.info.run_id, "test_accuracy_mean") == pytest.approx(
        curves.mean(axis=0))
    assert gpu_parent.data.tags[store_merge.MERGED_PARENTS_TAG] == second_parent.info.run_id
    assert gpu_parent.data.tags["pepita.unfinished_seeds"] == "5"


def test_a_second_run_folder_adds_its_seeds_to_the_cells_parent(tmp_path):
    # Seeds of one cell started from two run folders (another --run-root, a
    # fresh machine) share one parent: MLflow shows the cell's mean over all.
    config = experiment_config.load_config("fc_mnist_pepita").smoke_version().replace(epochs=1)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    first, _ = reproduce.reproduce(config, seeds=[0], synthetic=True, run_root=tmp_path / "a",
                                   tracking_uri=uri, verbose=0)
    second, _ = reproduce.reproduce(config, seeds=[1], synthetic=True,
                                    run_root=tmp_path / "b", tracking_uri=uri, verbose=0)
    assert second == first
    client = tracking.client(uri)
    parents = [r for r in _runs(client) if r.data.tags.get("pepita.role") == "cell"]
    assert [p.info.run_id for p in parents] == [first]
    assert parents[0].data.metrics["n_seeds"] == 2
    state = json.loads((tmp_path / "b" / config.run_name / recorder.PARENT_FILE).read_text())
    assert state["run_id"] == first
    # Other settings (real data instead of synthetic, other epochs) stay apart.
    third, _ = reproduce.reproduce(config.replace(epochs=2), seeds=[0], synthetic=True,
                                   run_root=tmp_path / "c", tracking_uri=uri, verbose=0)
    assert third != first


# ---------------------------------------------------------------------------
# migrate-store step 6: the store shows what the table says.
# ---------------------------------------------------------------------------
def test_migrate_store_joins_split_parents_and_tidies_what_older_versions_logged(
        tmp_path, monkeypatch):
    config = experiment_config.load_config("fc_mnist_pepita").smoke_version().replace(epochs=2)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    # One cell, its seeds started from two run folders by a version that gave
    # each folder its own parent: two parents of one name.
    monkeypatch.setattr(recorder, "existing_parent", lambda *args: None)
    reproduce.reproduce(config, seeds=[0], synthetic=True, run_root=tmp_path / "a",
                        tracking_uri=uri, verbose=0)
    reproduce.reproduce(config, seeds=[1], synthetic=True, run_root=tmp_path / "b",
                        tracking_uri=uri, verbose=0)
    client = tracking.client(uri)
    parents = [r for r in _runs(client) if r.data.tags.get("pepita.role") == "cell"]
    assert len(parents) == 2
    first = min(parents, key=lambda r: r.info.start_time)
    # What older versions left: curves re-logged per seed, percent paper tags,
    # seeds without the activation params, runs without a platform tag.
    reproduce_curve = client.get_metric_history(first.info.run_id, "test_accuracy_mean")
    for metric in reproduce_curve:
        tracking.log_metrics(client, first.info.run_id, {"test_accuracy_mean": 0.5},
                             step=metric.step)
    client.set_tag(first.info.run_id, "paper.mean", "98.01")
    seed0 = next(r for r in _runs(client) if r.info.run_name.endswith("seed0"))
    with tracking._sql_store(uri).ManagedSessionMaker() as session:
        from mlflow.store.tracking.dbmodels.models import SqlParam, SqlTag
        session.query(SqlParam).filter(SqlParam.run_uuid == seed0.info.run_id,
                                       SqlParam.key == "hidden_activation").delete()
        session.query(SqlTag).filter(SqlTag.key == "pepita.platform").delete()

    report = migrate.migrate_store(uri, rebuild_artifacts=False)
    assert report["parents_joined"] == 1

    runs = _runs(client)
    parents = [r for r in runs if r.data.tags.get("pepita.role") == "cell"]
    assert [p.info.run_id for p in parents] == [first.info.run_id]
    parent = parents[0]
    seeds = [r for r in runs if r.data.tags.get("pepita.role") == "seed"]
    assert sorted(r.data.tags["mlflow.parentRunId"] for r in seeds) == [parent.info.run_id] * 2
    # Both seeds averaged, one value per epoch.
    assert parent.data.metrics["n_seeds"] == 2
    means = client.get_metric_history(parent.info.run_id, "test_accuracy_mean")
    assert sorted(m.step for m in means) == [1, 2]
    finals = [r.data.metrics["final_test_accuracy"] for r in seeds]
    assert parent.data.metrics["final_test_accuracy_mean"] == pytest.approx(np.mean(finals))
    assert float(parent.data.tags["paper.mean"]) == pytest.approx(0.9801)
    assert all(r.data.tags["pepita.platform"] == tracking.DEFAULT_PLATFORM for r in runs)
    assert client.get_run(seed0.info.run_id).data.params["hidden_activation"] == "relu"
    # The second folder now resumes into the kept parent.
    state = json.loads((tmp_path / "b" / config.run_name / recorder.PARENT_FILE).read_text())
    assert state["run_id"] == parent.info.run_id
    # Idempotent.
    again = migrate.migrate_store(uri, rebuild_artifacts=False)
    assert again["parents_joined"] == again["runs_backfilled"] == 0


def test_joining_parents_settles_a_seed_that_ended_from_the_other_folder(tmp_path, monkeypatch):
    # Seed 0 killed under one parent (KILLED, seed 0 unfinished), then run to
    # the end from another folder by a version that made a second parent: once
    # joined, the cell has no unfinished seed and its parent is FINISHED.
    config = experiment_config.load_config("fc_mnist_pepita").smoke_version().replace(epochs=1)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    finalize = recorder.SeedRecorder.completed

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(recorder.SeedRecorder, "completed", killed)
    with pytest.raises(KeyboardInterrupt):
        reproduce.reproduce(config, seeds=[0, 1], synthetic=True, run_root=tmp_path / "a",
                            tracking_uri=uri, verbose=0)
    monkeypatch.setattr(recorder.SeedRecorder, "completed", finalize)
    monkeypatch.setattr(recorder, "existing_parent", lambda *args: None)
    reproduce.reproduce(config, seeds=[0], synthetic=True, run_root=tmp_path / "b",
                        tracking_uri=uri, verbose=0)
    client = tracking.client(uri)
    first = min((r for r in _runs(client) if r.data.tags.get("pepita.role") == "cell"),
                key=lambda r: r.info.start_time)
    assert first.info.status == "KILLED"
    assert first.data.tags["pepita.unfinished_seeds"] == "0,1"

    assert migrate.migrate_store(uri, rebuild_artifacts=False)["parents_joined"] == 1
    parent = client.get_run(first.info.run_id)
    # Seed 1 never ran to its end anywhere: still unfinished, status kept.
    assert parent.data.tags["pepita.unfinished_seeds"] == "1"
    assert parent.info.status == "KILLED"
    # Seed 1 ended later (the folder resumes into the kept parent).
    reproduce.reproduce(config, seeds=[1], synthetic=True, run_root=tmp_path / "a",
                        tracking_uri=uri, verbose=0)
    parent = client.get_run(first.info.run_id)
    assert "pepita.unfinished_seeds" not in parent.data.tags
    assert parent.info.status == "FINISHED"


def test_a_kill_while_the_model_is_logged_leaves_one_complete_model(
        tmp_path, monkeypatch, mlflow_uri):
    from mlflow.entities import LoggedModelStatus

    config = experiment_config.load_config("fc_mnist_bp").smoke_version()
    run = dict(seeds=[0], synthetic=True, run_root=tmp_path / "runs", verbose=0)
    real_log = tracking.log_keras_model

    def killed_while_uploading(client, run_id, model, **kwargs):
        # What MLflow has written when a kill lands mid-upload: a PENDING model.
        experiment_id = client.get_run(run_id).info.experiment_id
        client.create_logged_model(experiment_id, name="model", source_run_id=run_id)
        raise KeyboardInterrupt

    monkeypatch.setattr(tracking, "log_keras_model", killed_while_uploading)
    with pytest.raises(KeyboardInterrupt):
        reproduce.reproduce(config, **run)
    client = tracking.client(mlflow_uri)
    (seed,) = [r for r in _runs(client) if r.data.tags.get("pepita.role") == "seed"]
    run_id = seed.info.run_id
    assert [m.status for m in tracking.logged_models(client, run_id)] == [
        LoggedModelStatus.PENDING]
    assert client.get_run(run_id).info.status == "KILLED"

    monkeypatch.setattr(tracking, "log_keras_model", real_log)
    reproduce.reproduce(config, **run)  # resumes: only the wrap-up was left
    (model,) = tracking.logged_models(client, run_id)
    assert model.status == LoggedModelStatus.READY
    assert client.get_run(run_id).info.status == "FINISHED"
    # Once complete, never logged again.
    assert not tracking.log_keras_model_once(client, run_id, None)
    assert len(tracking.logged_models(client, run_id)) == 1
