"""Tests of the paper reproductions: configs, runner, MLflow records, resume, results.

Expectations come from the paper (its Table 1 and stated settings,
transcribed independently below), from the schedule's definition, and from
the MLflow store queried directly (`MlflowClient.search_runs`), never from
what the runner returns about itself.

Datasets are tiny files written in the genuine formats (MNIST IDX, CIFAR
python pickles) in a temporary folder, so the real loaders parse them.
"""

import ast
import re
import dataclasses
import json
import os
import pathlib
import pickle
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from pepita_keras import (build, cli, config_files, experiment_config, input_pipeline, reproduce,
                          results)
from pepita_keras.store import provenance, recorder, tracking

# The shipped cells' helpers and paper numbers (reproductions/configs/common.py).
COMMON = experiment_config.shipped_common()

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "reproductions" / "configs"

# The paper's Table 1, transcribed from the issue text (test accuracy %).
PAPER_TABLE = """
BP     98.63 0.03  55.27 0.32  27.58 0.09  98.86 0.04  64.99 0.32  34.20 0.20
FA     98.42 0.07  53.82 0.24  24.61 0.28  98.50 0.06  57.51 0.57  27.15 0.53
DRTP   95.10 0.10  45.89 0.16  18.32 0.18  97.32 0.25  50.53 0.81  20.14 0.68
PEPITA 98.01 0.09  52.57 0.36  24.91 0.22  98.29 0.13  56.33 1.35  27.56 0.60
"""
COLUMNS = [("fc", "mnist"), ("fc", "cifar10"), ("fc", "cifar100"),
           ("conv", "mnist"), ("conv", "cifar10"), ("conv", "cifar100")]


def paper_table():
    table = {}
    for line in PAPER_TABLE.strip().splitlines():
        rule, *numbers = line.split()
        for index, (arch, dataset) in enumerate(COLUMNS):
            mean, std = float(numbers[2 * index]), float(numbers[2 * index + 1])
            table[f"{arch}_{dataset}_{rule.lower()}"] = (mean, std)
    return table


# ---------------------------------------------------------------------------
# Fixtures: fake datasets in the real formats, a template MLflow store.
# ---------------------------------------------------------------------------
def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_fake_datasets(root, n_train=300, n_test=100, seed=0, cifar=True):
    """MNIST (IDX), CIFAR-10 and CIFAR-100 (python pickles) with learnable classes."""
    rng = np.random.default_rng(seed)

    def images(n, shape, classes):
        labels = rng.integers(0, classes, n)
        prototypes = rng.integers(0, 256, (classes,) + shape)
        noise = rng.integers(0, 256, (n,) + shape)
        return ((prototypes[labels] + noise) // 2).astype(np.uint8), labels

    mnist = root / "mnist"
    mnist.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x, y = images(n, (28, 28), 10)
        _write_idx(mnist / f"{prefix}-images-idx3-ubyte", x)
        _write_idx(mnist / f"{prefix}-labels-idx1-ubyte", y)
    if not cifar:
        return root
    for name, folder, classes, members, key in (
        ("cifar10", "cifar-10-batches-py", 10,
         [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], b"labels"),
        ("cifar100", "cifar-100-python", 100, ["train", "test"], b"fine_labels"),
    ):
        target = root / name / folder
        target.mkdir(parents=True)
        for member in members:
            n = n_test if "test" in member else n_train // (len(members) - 1)
            x, y = images(n, (3, 32, 32), classes)  # CIFAR rows are channel planes
            batch = {b"data": x.reshape(n, 3072), key: [int(v) for v in y]}
            (target / member).write_bytes(pickle.dumps(batch, protocol=2))
    return root


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
    return write_fake_datasets(tmp_path_factory.mktemp("data"))


# ---------------------------------------------------------------------------
# Configs.
# ---------------------------------------------------------------------------
ALL_CONFIGS = sorted(config_files.list_config_files([CONFIG_DIR]))


def test_one_config_per_table_cell_and_iclr_rows():
    expected = set(paper_table())
    assert expected <= set(ALL_CONFIGS), sorted(expected - set(ALL_CONFIGS))
    iclr = [name for name in ALL_CONFIGS if name.startswith("iclr_")]
    assert len(iclr) >= 3
    # One row per conv PEPITA dataset for the package's local conv rule.
    local = {f"conv_{dataset}_pepita_local" for dataset in ("mnist", "cifar10", "cifar100")}
    # Our deeper-network rows (issue 24): 2 and 3 hidden layers, PEPITA and BP.
    deeper = {f"fc_mnist_{rule}_h{depth}" for rule in ("pepita", "bp") for depth in (2, 3)}
    # Forward-Forward in the family (issue 24), the keras-io example's setup.
    # Our own cells on graph architectures (issue 33): six rules on a ResNet and a ViT.
    modern = {f"{architecture}_mnist_{rule}" for architecture in ("resnet", "vit")
              for rule in ("bp", "fa", "dfa", "pepita", "usf", "kp")}
    assert set(ALL_CONFIGS) == expected | set(iclr) | local | deeper | {"ff_mnist"} | modern


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_config_loads_with_documented_command_and_paper_settings(name):
    config = experiment_config.load_config(CONFIG_DIR / f"{name}.py")
    assert config.name == name
    doc = ast.get_docstring(ast.parse((CONFIG_DIR / f"{name}.py").read_text()))
    # The docstring is for people; it shows the command the typed fields give.
    assert f"Command: {config.command}" in doc.splitlines()
    assert "Runtime:" in doc and "Gap:" not in doc  # a gap is the config's `gap` field
    if config.rule == "ff":  # not a paper cell: the keras-io example's setup (test_forward_forward)
        assert "keras-io" in doc.splitlines()[0] and "keras-io" in config.paper_source
        return
    if config.architecture in experiment_config.GRAPH_ARCHITECTURES:
        # Our own cells: no paper number, the common 5-epoch constant-rate setting, the
        # learning rate its search chose (quoted in the file), three seeds.
        assert config.paper is None and "no paper number" in doc.splitlines()[0]
        assert (config.epochs, config.momentum, tuple(config.lr_decay_epochs)) == (5, 0.9, ())
        assert config.batch_size == 64 and tuple(config.seeds) == (0, 1, 2)
        source = (CONFIG_DIR / f"{name}.py").read_text()
        assert f"`pepita tune {name}`" in source and f"learning_rate={config.learning_rate}" in source
        return
    if config.paper:  # the title quotes the paper's number as PAPER_RESULTS holds it
        assert f"(paper: {config.paper[0]:.2f} ± {config.paper[1]:.2f})" in doc.splitlines()[0]
    assert (config.epochs, config.momentum, config.lr_decay_factor) == (100, 0.9, 0.1)
    conv = config.architecture == "conv"
    eta = 0.1 if config.dataset == "mnist" else 0.01  # PEPITA's lr (paper / official code)
    if conv and config.rule == "bp":
        # The official conv script's own BP defaults (its README command): lr 0.01,
        # ×0.1 at epochs 10, 30 and 60, PyTorch's default init.
        assert tuple(config.lr_decay_epochs) == (10, 30, 60)
        assert config.kernel_initializer == "torch_default"
        eta = 0.01
    else:
        # The paper's schedule and init: ×0.1 at 60 and 90, He-uniform.
        assert tuple(config.lr_decay_epochs) == (60, 90)
        assert config.kernel_initializer == "he_uniform"
    assert config.batch_size == (50 if conv else 64)
    if name.endswith("_pepita_local"):
        eta = 0.01  # the local conv rule's tuned rate (reproductions/tuning)
        # Its row's "Chosen settings" name its own conv update, not the paper cells'.
        assert dict(config.rule_kwargs)["conv_update"] == "local"
        assert "local conv rule" in config.notes
        assert "official conv script's updates" not in config.notes
    depth = re.search(r"_h(\d)$", name)
    if depth:  # a deeper row: the 1-layer cell's settings with more 1024-unit layers
        assert config.hidden_units == (1024,) * int(depth.group(1)) and config.paper is None
        if config.rule == "pepita":
            # lr 0.1 went non-finite in deeper PEPITA nets, and 0.01 too with 3 layers on
            # the full training set (see the configs).
            eta = 0.01 if depth.group(1) == "2" else 0.003
    if name == "iclr_fc_mnist_pepita_wd_norm":
        eta = 10.0  # normalised activations shrink updates ~85×: tuned (reproductions/tuning)
    if name == "conv_mnist_drtp":
        # The setting the FC cell first shipped (ReLU, softmax error, small feedback): its
        # seed 0 gave the paper's conv number; the DRTP code's setting overshot it by 0.99.
        assert config.learning_rate == 0.01
        assert dict(config.rule_kwargs) == {"feedback_scale": 0.01}
        assert (config.hidden_activation, config.output_activation) == ("relu", "softmax")
    elif config.rule == "drtp":
        # The DRTP code's step at eta (tanh hidden, sigmoid output, BCE): lr eta/C and
        # feedback scale B·C in this package's batch-mean convention.
        assert config.learning_rate == pytest.approx(eta / config.num_classes)
        assert dict(config.rule_kwargs) == {
            "feedback_scale": config.batch_size * config.num_classes}
        assert (config.hidden_activation, config.output_activation) == ("tanh", "sigmoid")
    else:
        assert config.learning_rate == eta
        assert (config.hidden_activation, config.output_activation) == ("relu", "softmax")
    assert config.dropout == (0.1 if config.architecture == "fc" else 0.0)
    if config.rule == "pepita":
        assert dict(config.rule_kwargs)["feedback_scale"] == 0.05
    if config.rule == "pepita" and conv:
        # The official script's updates; the `_local` rows use the package's local rule.
        kwargs = dict(config.rule_kwargs)
        assert kwargs["last_layer_error"] == "clean"
        assert kwargs["conv_update"] == ("local" if name.endswith("_local") else "official")
    assert config.paper == paper_table().get(name)
    if config.rule != "pepita" or config.architecture == "conv" or name.startswith("iclr_"):
        assert config.notes, "settings chosen here must be stated"


def test_learning_rate_schedule_decays_at_epoch_starts():
    config = COMMON.paper_cell("pepita", "fc", "mnist")
    spe = 7
    schedule = build.learning_rate_schedule(config, spe)
    # The batch with optimizer.iterations == step belongs to epoch step // spe.
    for step in (0, 60 * spe - 1, 60 * spe, 90 * spe - 1, 90 * spe, 100 * spe - 1):
        epoch = step // spe
        expected = 0.1 * (0.1 if epoch >= 60 else 1) * (0.1 if epoch >= 90 else 1)
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_config_file_states_every_setting_that_differs_from_the_defaults(name):
    # big_vision style: what a cell changes is written in its own file, not
    # chosen by a branch in a shared helper.
    config = experiment_config.load_config(CONFIG_DIR / f"{name}.py")
    tree = ast.parse((CONFIG_DIR / f"{name}.py").read_text())
    stated = {node.arg for node in ast.walk(tree) if isinstance(node, ast.keyword)}
    defaults = experiment_config.ExperimentConfig(name="-", rule=config.rule,
                                                  architecture=config.architecture,
                                                  dataset=config.dataset)
    for field in ("batch_size", "learning_rate", "dropout", "weight_decay", "epochs",
                  "momentum", "hidden_activation", "output_activation"):
        if getattr(config, field) != getattr(defaults, field):
            assert field in stated, field


def test_config_validation_echoes_bad_values():
    with pytest.raises(ValueError, match="rule='sgd'"):
        COMMON.paper_cell("sgd", "fc", "mnist")
    with pytest.raises(ValueError, match="epochs=0"):
        COMMON.paper_cell("bp", "fc", "mnist", epochs=0)
    with pytest.raises(ValueError, match="nope"):
        experiment_config.load_config("nope")
    with pytest.raises(ValueError, match="'1,1'"):
        cli.parse_seeds("1,1")
    assert cli.parse_seeds("0-2,5") == [0, 1, 2, 5]


def test_flatten_covers_every_field():
    config = COMMON.iclr_variant("mnist", "mirror")
    flat = config.flatten()
    assert flat["rule_kwargs.modulation_sign"] == -1
    assert flat["rule_kwargs.feedback_mirroring.learning_rate"] == 0.1
    assert flat["smoke.epochs"] == 1 and flat["learning_rate"] == 0.1


def test_epoch_order_depends_only_on_seed_and_epoch():
    a = input_pipeline.epoch_order(3, 7, 50)
    assert np.array_equal(a, np.random.default_rng([3, 7]).permutation(50))
    assert not np.array_equal(a, input_pipeline.epoch_order(3, 8, 50))
    assert sorted(a) == list(range(50))


# ---------------------------------------------------------------------------
# Smoke runs: every config trains one epoch on its tiny subset.
# ---------------------------------------------------------------------------
# FF's smoke epoch traces 50 unrolled local steps per layer (~9 s): CI runs it.
@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.slow) if name == "ff_mnist" else name
    for name in ALL_CONFIGS])
def test_smoke(name, fake_data):
    config = experiment_config.load_config(CONFIG_DIR / f"{name}.py").smoke_version()
    history = reproduce.smoke_run(config, data_dir=fake_data, verify=False)
    assert len(history["val_accuracy"]) == config.epochs == 1
    assert np.isfinite(history["loss"]).all()
    assert 0.0 <= history["val_accuracy"][0] <= 1.0


# ---------------------------------------------------------------------------
# MLflow: one parent per cell, one nested run per seed, params/metrics/artifacts.
# ---------------------------------------------------------------------------
def test_mlflow_parent_with_nested_seed_runs(tmp_path, fake_data, mlflow_uri):
    config = experiment_config.load_config("fc_mnist_pepita").smoke_version().replace(epochs=2)
    parent, _ = reproduce.reproduce(config, seeds=[0, 1], data_dir=fake_data, verify=False,
                                    run_root=tmp_path / "runs", verbose=0)
    client = tracking.client(mlflow_uri)
    experiment_id = client.get_experiment_by_name(reproduce.DEFAULT_EXPERIMENT).experiment_id
    runs = client.search_runs([experiment_id])
    assert len(runs) == 3
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.run_id for r in parents] == [parent]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent]
    assert sorted(r.data.tags["pepita.seed"] for r in children) == ["0", "1"]
    # Run names say which cell a seed belongs to, in every view of the UI.
    assert sorted(r.info.run_name for r in children) == [
        "fc_mnist_pepita-smoke/seed0", "fc_mnist_pepita-smoke/seed1"]
    for run in children:
        assert run.info.status == "FINISHED"
        assert run.data.tags["pepita.role"] == "seed" and "pepita.kind" not in run.data.tags
        assert (run.data.tags["pepita.rule"], run.data.tags["pepita.dataset"],
                run.data.tags["pepita.architecture"]) == ("pepita", "mnist", "fc")
        params = run.data.params
        assert params["learning_rate"] == "0.1" and params["rule"] == "pepita"
        assert params["rule_kwargs.feedback_scale"] == "0.05"
        history = client.get_metric_history(run.info.run_id, "test_accuracy")
        assert sorted(m.step for m in history) == [1, 2]  # epochs 1..N, as in the plots
        assert sorted(m.step for m in client.get_metric_history(
            run.info.run_id, "learning_rate")) == [1, 2]
        assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 2
        # The reported number is the final (second) epoch's test accuracy.
        assert run.data.metrics["final_test_accuracy"] == {m.step: m.value for m in history}[2]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"learning_curves.png", "history.json", "alignment.json",
                "environment.json"} <= artifacts
        # The final model is an MLflow model of the run (Models tab, registry).
        models = client.search_logged_models(
            [experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'")
        assert [m.name for m in models] == ["model"]
        assert run.data.tags["git.commit"] == provenance.git_info()["commit"]
        assert run.data.tags["git.dirty"] in ("true", "false")  # one boolean spelling
    finals = sorted(r.data.metrics["final_test_accuracy"] for r in children)
    summary = client.get_run(parent).data.metrics
    assert summary["n_seeds"] == 2
    # Fractions, like the seeds' accuracies (the table shows percent).
    assert summary["final_test_accuracy_mean"] == pytest.approx(np.mean(finals))
    assert summary["final_test_accuracy_std"] == pytest.approx(np.std(finals, ddof=1))
    finals = [100 * value for value in finals]

    # Rerunning the finished command adds nothing.
    reproduce.reproduce(config, seeds=[0, 1], data_dir=fake_data, verify=False,
                        run_root=tmp_path / "runs", verbose=0)
    assert len(client.search_runs([experiment_id])) == 3

    # The results table reads the same store.
    out = tmp_path / "results"
    found = results.collect(client, configs={config.name: config}, include_smoke=True)
    readme = results.write_results(found, out, tracking_uri=mlflow_uri)
    text = readme.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `fc_mnist_pepita`"))
    assert f"{np.mean(finals):.2f} ± {np.std(finals, ddof=1):.2f}" in row
    assert "98.01 ± 0.09" in row
    delta = (np.mean(finals) - 98.01) / 0.09
    assert f"{delta:+.1f}" in row
    assert (out / "curves" / "fc_mnist_pepita.png").exists()
    csv_text = (out / "results.csv").read_text()
    assert "fc_mnist_pepita" in csv_text and provenance.git_info()["commit"][:10] in csv_text


def test_results_marks_cells_not_run(tmp_path, mlflow_uri):
    client = tracking.client(mlflow_uri)
    names = ("fc_cifar10_bp", "fc_mnist_bp", "iclr_fc_mnist_pepita_base",
             "conv_mnist_pepita_local", "ff_mnist")
    configs = {n: experiment_config.load_config(n) for n in names}
    readme = results.write_results(results.collect(client, configs=configs), tmp_path)
    rows = {name: next(line for line in readme.read_text().splitlines()
                       if line.startswith(f"| `{name}`")) for name in names}
    assert results.NOT_RUN_CIFAR in rows["fc_cifar10_bp"]
    assert "| 55.27 ± 0.32 |" in rows["fc_cifar10_bp"]
    # A row with a source but no numbers says so; our own variant rows have no paper.
    assert "| not transcribed |" in rows["iclr_fc_mnist_pepita_base"]
    assert "not transcribed" not in rows["conv_mnist_pepita_local"]
    # keras-io's Forward-Forward number is one stored run: no "± 0.00" claimed for it.
    assert "| 97.64 (one run) |" in rows["ff_mnist"] and "± 0.00" not in rows["ff_mnist"]


_CONFIG_FILE = """\"\"\"{title}

Command: pepita reproduce {name}
{extra}Runtime: 1 min.
\"\"\"
from common import paper_cell


def get_config():
    return paper_cell("bp", "fc", "mnist", name="{name}"{extra_fields})
"""


def test_results_say_whether_each_cell_matches_the_paper_and_why_not(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "near.py").write_text(_CONFIG_FILE.format(title="Near.", name="near", extra="",
                                                        extra_fields=""))
    # Why a cell differs is the config's typed `gap`, never parsed from its docstring.
    (folder / "far.py").write_text(_CONFIG_FILE.format(
        title="Far.", name="far", extra="Gap: only for people; not read.\n",
        extra_fields=', gap="the learning rate overfits; see the curves."'))
    (folder / "unexplained.py").write_text(_CONFIG_FILE.format(
        title="Unexplained.", name="unexplained", extra="", extra_fields=""))
    monkeypatch.setenv("PEPITA_CONFIG_DIR", str(folder))
    paper_mean, paper_std = COMMON.PAPER_RESULTS[("bp", "fc", "mnist")]
    tolerance = max(2 * paper_std, 0.25)  # the bar: max(2 paper σ, 0.25 points)
    curves = {0: {"train_accuracy": [90.0], "test_accuracy": [90.0]}}
    finals = {"near": paper_mean - tolerance, "far": paper_mean - tolerance - 0.01,
              "unexplained": paper_mean + tolerance + 0.01}
    cells = {name: results.CellResult(experiment_config.load_config(name), finals={0: value},
                                      histories=curves)
             for name, value in finals.items()}
    text = results.write_results(cells, tmp_path / "out", plots=False).read_text()
    rows = {name: next(line for line in text.splitlines() if line.startswith(f"| `{name}`"))
            for name in finals}
    assert "matches the paper" in rows["near"]
    assert f"off by {-tolerance - 0.01:+.2f} (tolerance ±{tolerance:.2f}" in rows["far"]
    assert "off by" in rows["unexplained"]
    assert "- Why it differs: the learning rate overfits; see the curves.\n" in text
    assert "- Why it differs: not explained yet" in text
    assert text.count("Why it differs") == 2


# ---------------------------------------------------------------------------
# Kill-safety: SIGKILL a real run after its first checkpoint, rerun, compare.
# ---------------------------------------------------------------------------
def _cli(args, env, **kwargs):
    command = [sys.executable, "-m", "pepita_keras.cli", "reproduce", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


@pytest.mark.slow  # three fresh processes (TF + MLflow imports): ~40 s, ~110 s on a busy box
def test_resume_after_kill_matches_uninterrupted_run(tmp_path, mlflow_template):
    fake_data = write_fake_datasets(tmp_path / "data", n_train=3000, n_test=200, cifar=False)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
    args = ["fc_mnist_pepita", "--smoke", "--epochs", "4", "--train-examples", "3000",
            "--seeds", "0", "--data-dir", str(fake_data), "--no-verify", "--verbose", "0"]
    stores = {}
    for name in ("killed", "clean"):
        shutil.copy(mlflow_template, tmp_path / f"{name}.db")
        stores[name] = f"sqlite:///{tmp_path / name}.db"
    seed_dir = tmp_path / "killed" / "fc_mnist_pepita-smoke" / "seed0"

    # 3000 examples: an epoch takes about a second, while the kill follows
    # the first committed epoch within ~50 ms, so it lands before epoch 4 ends.
    # Waiting for state.json (the commit point), not the checkpoint file: on a
    # busy machine a kill between the two is a kill during epoch 1.
    killed_env = dict(env, MLFLOW_TRACKING_URI=stores["killed"])
    process = _cli(args + ["--run-root", str(tmp_path / "killed")], killed_env)
    deadline = time.time() + 240

    def committed_epoch():
        state_file = seed_dir / "state.json"  # replaced atomically, never half-written
        return json.loads(state_file.read_text())["epoch"] if state_file.exists() else 0

    while committed_epoch() < 1:
        assert process.poll() is None, process.stdout.read()
        assert time.time() < deadline, "no committed epoch after 240 s"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    state = json.loads((seed_dir / "state.json").read_text())
    assert 1 <= state["epoch"] < 4

    resumed = _cli(args + ["--run-root", str(tmp_path / "killed")], killed_env)
    clean = _cli(args + ["--run-root", str(tmp_path / "clean")],
                 dict(env, MLFLOW_TRACKING_URI=stores["clean"]))
    for process in (resumed, clean):
        output = process.communicate(timeout=300)[0]
        assert process.returncode == 0, output

    final = {}
    for name in ("killed", "clean"):
        folder = tmp_path / name / "fc_mnist_pepita-smoke" / "seed0"
        state = json.loads((folder / "state.json").read_text())
        assert state["finished"] and state["epoch"] == 4
        with np.load(folder / state["checkpoint"]) as data:
            final[name] = {key: data[key] for key in data.files}
        client = tracking.client(stores[name])
        runs = client.search_runs(
            [client.get_experiment_by_name(reproduce.DEFAULT_EXPERIMENT).experiment_id])
        seeds = [r for r in runs if r.data.tags.get("pepita.role") == "seed"]
        assert len(seeds) == 1 and len(runs) == 2  # one parent, one run for seed 0
        history = client.get_metric_history(seeds[0].info.run_id, "test_accuracy")
        assert sorted(m.step for m in history) == [1, 2, 3, 4]  # each epoch logged once
        final[name + "_metrics"] = [m.value for m in sorted(history, key=lambda m: m.step)]
        final[name + "_final"] = seeds[0].data.metrics["final_test_accuracy"]
    assert final["killed"].keys() == final["clean"].keys()
    for key in final["clean"]:
        np.testing.assert_array_equal(final["killed"][key], final["clean"][key], err_msg=key)
    assert final["killed_metrics"] == final["clean_metrics"]
    assert final["killed_final"] == final["clean_final"]


# ---------------------------------------------------------------------------
# CLI wiring.
# ---------------------------------------------------------------------------
def test_cli_lists_configs_and_registers_subcommands(capsys):
    assert cli.main(["list"]) == 0
    listed = capsys.readouterr().out
    for name in paper_table():
        assert name in listed
    parser = cli.build_parser()
    choices = parser._subparsers._group_actions[0].choices
    assert {"reproduce", "results", "list"} <= set(choices)


def test_cli_results_writes_table(tmp_path, mlflow_uri, capsys):
    assert cli.main(["results", "--output", str(tmp_path), "--no-plots"]) == 0
    text = (tmp_path / "README.md").read_text()
    for name, (mean, std) in paper_table().items():
        assert f"`{name}`" in text and f"{mean:.2f} ± {std:.2f}" in text


def test_resume_refuses_a_changed_training_setting_but_not_a_changed_note(
        tmp_path, fake_data, mlflow_uri):
    config = experiment_config.load_config("fc_mnist_bp").smoke_version()
    run = dict(data_dir=fake_data, verify=False, run_root=tmp_path, verbose=0)
    reproduce.reproduce(config, seeds=[0], **run)
    reproduce.reproduce(config.replace(notes="edited", smoke=experiment_config.SmokeSettings(9, 9, 1)),
                        seeds=[0], **run)
    with pytest.raises(ValueError, match="different config") as refused:
        reproduce.reproduce(config.replace(learning_rate=0.5), seeds=[0], **run)
    # The way out when the shipped config itself changed: move the folder aside.
    cell_dir = tmp_path / config.run_name
    assert f"learning_rate: {config.learning_rate} → 0.5" in str(refused.value)
    assert f"mv {cell_dir} {cell_dir}-old" in str(refused.value)
    assert "pepita migrate-store" in str(refused.value)
    (cell_dir).rename(f"{cell_dir}-old")
    _, moved = reproduce.reproduce(config.replace(learning_rate=0.5), seeds=[0], **run)
    assert moved[0].resumed_from_epoch == 0 and moved[0].final_test_accuracy is not None


# ---------------------------------------------------------------------------
# Honest recording: divergence, settings, concurrency, tables never shrink.
# ---------------------------------------------------------------------------
def _reject_constant(token):
    raise ValueError(f"bare {token} token: not strict JSON")


def _runs(uri):
    client = tracking.client(uri)
    found = client.get_experiment_by_name(reproduce.DEFAULT_EXPERIMENT)
    return client, client.search_runs([found.experiment_id]) if found else []


@pytest.mark.slow  # two seeds and a rerun (~12 s)
def test_diverged_seeds_stop_fail_and_are_never_averaged(tmp_path, fake_data, mlflow_uri):
    # lr 1e8 blows the weights up within the first epoch (issue: it printed
    # `loss nan`, then "final test accuracy 7.42%", exit 0, FINISHED).
    source = tmp_path / "exploding.py"
    source.write_text(
        "from common import paper_cell\nfrom pepita_keras.experiment_config import SmokeSettings\n\n\n"
        "def get_config():\n"
        "    return paper_cell('pepita', 'fc', 'mnist', learning_rate=1e8,\n"
        "                      smoke=SmokeSettings(train_examples=256, test_examples=64,"
        " epochs=3))\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO),
               MLFLOW_TRACKING_URI=mlflow_uri)
    process = _cli([str(source), "--smoke", "--seeds", "0,1", "--data-dir", str(fake_data),
                    "--no-verify", "--run-root", str(tmp_path / "runs")], env)
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 1, output  # no seed completed
    assert output.count("DIVERGED at epoch 1/3") == 2, output
    assert "final test accuracy" not in output

    client, runs = _runs(mlflow_uri)
    seeds = [r for r in runs if r.data.tags.get("pepita.role") == "seed"]
    assert len(seeds) == 2
    for run in seeds:
        assert run.info.status == "FAILED"
        assert run.data.tags["pepita.diverged_epoch"] == "1"
        assert "pepita.complete" not in run.data.tags
        assert run.data.metrics["epochs_completed"] == 1  # stopped at that epoch
        # The non-finite loss is logged, not dropped.
        losses = client.get_metric_history(run.info.run_id, "train_loss")
        assert len(losses) == 1 and not np.isfinite(losses[0].value)
        history_file = client.download_artifacts(run.info.run_id, "history.json", str(tmp_path))
        history = json.loads(pathlib.Path(history_file).read_text(),
                             parse_constant=_reject_constant)
        assert history["train_loss"] == [None]  # the metrics' names, as in MLflow
    state_text = (tmp_path / "runs" / "exploding-smoke" / "seed0" / "state.json").read_text()
    json.loads(state_text, parse_constant=_reject_constant)

    config = experiment_config.load_config(source).smoke_version()
    cell = results.collect(client, configs={config.name: config}, include_smoke=True)[config.name]
    assert cell.n == 0 and cell.mean is None
    assert cell.diverged == {0: 1, 1: 1}
    readme = results.write_results({config.name: cell}, tmp_path / "table", plots=False)
    assert "diverged (2 of 2 seeds)" in readme.read_text()

    # Rerunning does not retrain a diverged seed, and still reports it.
    rerun = _cli([str(source), "--smoke", "--seeds", "0", "--data-dir", str(fake_data),
                  "--no-verify", "--run-root", str(tmp_path / "runs")], env)
    output = rerun.communicate(timeout=300)[0]
    assert rerun.returncode == 1 and "diverged at epoch 1 in an earlier run" in output, output


def test_only_runs_with_the_shipped_settings_count_for_a_cell(tmp_path, mlflow_uri):
    shipped = experiment_config.load_config("fc_mnist_bp")
    changed = cli.configure(shipped, epochs=1, train_examples=300, test_examples=100)
    assert changed.run_name.startswith("fc_mnist_bp-custom-")
    reproduce.reproduce(changed, seeds=[0], synthetic=True, run_root=tmp_path, verbose=0)
    client = tracking.client(mlflow_uri)
    cell = results.collect(client)["fc_mnist_bp"]
    assert cell.n == 0 and not cell.histories  # not listed as the paper cell
    (other,) = cell.other_runs.values()
    assert other.differences["epochs"] == ("1", "100")
    assert other.differences["train_examples"] == ("300", "None")
    assert list(other.finals) == [0]
    readme = results.write_results(results.collect(client), tmp_path / "table", plots=False)
    text = readme.read_text()
    assert "Runs with other settings (not counted)" in text
    assert f"`{changed.run_name}`" in text and "epochs: 1 vs 100" in text


def test_unfinished_runs_with_other_settings_show_their_last_epoch(tmp_path, mlflow_uri,
                                                                  monkeypatch):
    # A custom run stopped before it completed (killed, or still running) is
    # listed with how far it got, never as a completed seed.
    changed = cli.configure(experiment_config.load_config("fc_mnist_bp"), epochs=1,
                            train_examples=300, test_examples=100)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(recorder.SeedRecorder, "completed", killed)
    with pytest.raises(KeyboardInterrupt):
        reproduce.reproduce(changed, seeds=[0], synthetic=True, run_root=tmp_path, verbose=0)
    client = tracking.client(mlflow_uri)
    (other,) = results.collect(client)["fc_mnist_bp"].other_runs.values()
    assert other.finals == {} and list(other.partial) == [0]
    epochs, accuracy = other.partial[0]
    (run,) = [r for r in client.search_runs(
        [client.get_experiment_by_name(tracking.REPRODUCTIONS_EXPERIMENT).experiment_id])
        if r.data.tags.get("pepita.seed") == "0"]
    assert epochs == 1
    assert accuracy == pytest.approx(100 * run.data.metrics["test_accuracy"])
    text = results.write_results(results.collect(client), tmp_path / "table",
                                 plots=False).read_text()
    (row,) = [line for line in text.splitlines() if line.startswith(f"| `{changed.run_name}`")]
    assert row.endswith(f"| — | seed 0: epoch 1, test {accuracy:.2f} | — |")


def test_a_seed_run_again_from_another_folder_supersedes_its_unfinished_run(
        tmp_path, mlflow_uri, monkeypatch, capsys):
    # Seed 0 killed in one run folder, then run to the end from another: the
    # table counts the completed run (its whole curve), not a partial seed.
    config = cli.configure(experiment_config.load_config("fc_mnist_bp"), epochs=2,
                           train_examples=300, test_examples=100)
    finalize = recorder.SeedRecorder.completed

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(recorder.SeedRecorder, "completed", killed)
    with pytest.raises(KeyboardInterrupt):
        reproduce.reproduce(config, seeds=[0], synthetic=True, run_root=tmp_path / "a",
                            verbose=0)
    monkeypatch.setattr(recorder.SeedRecorder, "completed", finalize)
    _, (result,) = reproduce.reproduce(config, seeds=[0], synthetic=True,
                                       run_root=tmp_path / "b", verbose=0)
    # The rerun said where the unfinished checkpoint was, and how to resume it instead.
    said = capsys.readouterr().out
    assert (f"an unfinished run of this seed is checkpointed after epoch 2 in "
            f"{tmp_path / 'a' / config.run_name / 'seed0'}") in said
    assert f"rerun with --run-root {tmp_path / 'a'}" in said
    client = tracking.client(mlflow_uri)
    seed_runs = [r for r in client.search_runs(
        [client.get_experiment_by_name(tracking.REPRODUCTIONS_EXPERIMENT).experiment_id])
        if r.data.tags.get("pepita.role") == "seed"]
    assert sorted(r.info.status for r in seed_runs) == ["FINISHED", "KILLED"]
    (other,) = results.collect(client)["fc_mnist_bp"].other_runs.values()
    assert other.partial == {}
    assert other.finals == {0: pytest.approx(100 * result.final_test_accuracy)}


def test_runs_of_one_name_with_different_settings_are_listed_apart(tmp_path, mlflow_uri):
    # A config edited after it ran (a new learning rate) keeps its name: each
    # earlier setting is its own row, with its own seeds, never merged.
    base = COMMON.paper_cell("bp", "fc", "mnist", name="my_cell", epochs=1,
                                 train_examples=300, test_examples=100)
    for rate in (0.1, 0.2):
        config = dataclasses.replace(base, learning_rate=rate)
        assert config.run_name == "my_cell"
        reproduce.reproduce(config, seeds=[0], synthetic=True, run_root=tmp_path / str(rate),
                            verbose=0)
    now = dataclasses.replace(base, learning_rate=0.3)
    cell = results.collect(tracking.client(mlflow_uri), configs={"my_cell": now},
                           include_smoke=True)["my_cell"]
    assert cell.n == 0
    rates = sorted(other.differences["learning_rate"][0] for other in cell.other_runs.values())
    assert rates == ["0.1", "0.2"]
    assert all(list(other.finals) == [0] for other in cell.other_runs.values())
    text = results.write_results({"my_cell": cell}, tmp_path / "table", plots=False).read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `my_cell` | `my_cell` |")]
    assert len(rows) == 2
    assert "learning_rate: 0.1 vs 0.3" in rows[0] and "learning_rate: 0.2 vs 0.3" in rows[1]


def test_a_user_copy_of_a_config_runs_under_its_own_name(tmp_path):
    source = tmp_path / "my_faster_bp.py"
    source.write_text(
        "from common import paper_cell\n\n\n"
        "def get_config():\n"
        "    return paper_cell('bp', 'fc', 'mnist', learning_rate=0.5)\n"
    )
    config = experiment_config.load_config(source)
    assert config.name == config.run_name == "my_faster_bp"
    assert "my_faster_bp" not in results.shipped_configs()
    # The same edit in a file named like the shipped cell is a custom run of it.
    twin = tmp_path / "fc_mnist_bp.py"
    twin.write_text(source.read_text())
    assert experiment_config.load_config(twin).run_name.startswith("fc_mnist_bp-custom-")
    assert experiment_config.load_config("fc_mnist_bp").run_name == "fc_mnist_bp"


def test_results_never_replace_a_table_with_fewer_completed_seeds(tmp_path, mlflow_uri):
    output = tmp_path / "results"
    output.mkdir()
    table = "cell,n_seeds\nfc_mnist_pepita,2\nfc_mnist_bp,2\n"
    (output / "results.csv").write_text(table)
    (output / "README.md").write_text("committed table")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO),
               MLFLOW_TRACKING_URI=mlflow_uri)
    command = [sys.executable, "-m", "pepita_keras.cli", "results", "--output", str(output),
               "--no-plots"]
    process = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert process.returncode != 0
    assert "Refusing to overwrite" in process.stderr and "4 completed seeds" in process.stderr
    assert "Traceback" not in process.stderr
    assert (output / "results.csv").read_text() == table
    assert (output / "README.md").read_text() == "committed table"
    forced = subprocess.run(command + ["--force"], env=env, capture_output=True, text=True,
                            timeout=300)
    assert forced.returncode == 0, forced.stderr
    assert (output / "results.csv").read_text() != table


@pytest.mark.slow  # two fresh processes (TF + MLflow imports) racing: ~30 s
def test_two_processes_of_one_cell_train_each_seed_once(tmp_path):
    # A fresh folder: both processes also race to create the SQLite store.
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO),
               MLFLOW_TRACKING_URI=uri)
    args = ["fc_mnist_bp", "--smoke", "--synthetic", "--seeds", "0,1",
            "--run-root", str(tmp_path / "runs")]
    processes = [_cli(args, env) for _ in range(2)]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output
    _, runs = _runs(uri)
    parents = [r for r in runs if r.data.tags.get("pepita.role") == "cell"]
    seeds = [r for r in runs if r.data.tags.get("pepita.role") == "seed"]
    assert len(parents) == 1
    assert sorted(int(r.data.tags["pepita.seed"]) for r in seeds) == [0, 1]
    assert all(r.data.tags.get("pepita.complete") == "true" for r in seeds)
    both = "\n".join(outputs)
    assert both.count("already finished") == 2  # each seed skipped by the other process


def test_set_overrides_any_config_field_and_refuses_unknown_keys():
    config = experiment_config.load_config("conv_mnist_pepita")
    changed = config.with_overrides([
        "learning_rate=0.05", "lr_decay_epochs=(20, 40)", "rule_kwargs.conv_update=local",
        "rule_kwargs.feedback_scale=0.1", "smoke.epochs=2", "train_examples=None",
        "kernel_initializer=torch_default",
    ])
    assert changed.learning_rate == 0.05 and changed.lr_decay_epochs == (20, 40)
    assert dict(changed.rule_kwargs) == {"feedback_scale": 0.1, "last_layer_error": "clean",
                                         "conv_update": "local"}
    assert changed.smoke.epochs == 2 and changed.train_examples is None
    assert changed.kernel_initializer == "torch_default"
    assert changed.run_name.startswith("conv_mnist_pepita-custom-")  # never the paper cell
    assert config.with_overrides([]) == config
    with pytest.raises(ValueError, match="Unknown config key 'lr'.*learning_rate"):
        config.with_overrides(["lr=0.1"])
    with pytest.raises(ValueError, match="key=value"):
        config.with_overrides(["learning_rate"])
    with pytest.raises(ValueError, match="epochs=0"):  # the config's own validation
        config.with_overrides(["epochs=0"])


@pytest.mark.slow  # a fresh `pepita reproduce` process
def test_cli_set_runs_a_custom_version_of_a_cell(tmp_path, mlflow_uri):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO),
               MLFLOW_TRACKING_URI=mlflow_uri)
    process = _cli(["fc_mnist_bp", "--smoke", "--synthetic", "--set", "learning_rate=0.05",
                    "--set", "hidden_units=(16,)", "--run-root", str(tmp_path)], env)
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 0, output
    _, runs = _runs(mlflow_uri)
    (seed,) = [r for r in runs if r.data.tags.get("pepita.seed") == "0"]
    assert seed.data.params["learning_rate"] == "0.05"
    assert seed.data.params["hidden_units"] == "[16]"
    bad = _cli(["fc_mnist_bp", "--smoke", "--synthetic", "--set", "lr=0.05"], env)
    output = bad.communicate(timeout=300)[0]
    assert bad.returncode == 2 and "Unknown config key 'lr'" in output, output
