"""User errors on the command line: one argparse-style line, exit status 2.

The end-to-end tests run the `pepita` CLI's `main` in this process (fast);
`test_in_process_equals_a_fresh_process` (slow) checks that a real
`python -m pepita_keras.cli` prints the same lines, and the import tests run
fresh processes because what a process imports is what they are about. The
remaining in-process tests pin down which exceptions count as user errors and
which keep their traceback.
"""

import argparse
import contextlib
import importlib.metadata
import io
import os
import pathlib
import re
import sqlite3
import subprocess
import sys
import textwrap
import traceback
import types

import keras
import numpy as np
import pytest

from pepita_keras import cli
from pepita_keras.store import dataset_inputs
from tests.test_datasets import write_mnist


def _environment(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    env.pop("PEPITA_DATA_DIR", None)
    env.pop("PEPITA_TRACEBACK", None)
    return env


def _pepita_process(tmp_path, *args):
    """`pepita ARGS` as a user runs it: a fresh process (slow: TensorFlow starts each time)."""
    return subprocess.run(
        [sys.executable, "-m", "pepita_keras.cli", *map(str, args)],
        cwd=tmp_path, env=_environment(tmp_path), capture_output=True, text=True, timeout=300,
    )


def _pepita(tmp_path, *args):
    """`pepita ARGS` in this process: what the console script's `main` prints and returns.

    An exception that escapes `main` is shown as Python shows it (traceback,
    exit status 1), as the console script would; `test_in_process_equals_a_fresh_process`
    pins that the two agree.
    """
    previous_env, previous_cwd = dict(os.environ), os.getcwd()
    stdout, stderr = io.StringIO(), io.StringIO()
    os.environ.clear()
    os.environ.update(_environment(tmp_path))
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = cli.main([str(arg) for arg in args])
            except SystemExit as exit_:
                code = exit_.code
            except Exception:  # noqa: BLE001 - shown as the interpreter would
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(previous_cwd)
        os.environ.clear()
        os.environ.update(previous_env)
    return types.SimpleNamespace(returncode=code, stdout=stdout.getvalue(),
                                 stderr=stderr.getvalue())


def _assert_user_error(result, command, message):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines()
              if line.startswith(f"pepita {command}: error: ")]
    assert len(errors) == 1, result.stderr
    assert message in errors[0], result.stderr


def test_help_usage_errors_and_list_load_no_tensorflow_keras_or_mlflow(tmp_path):
    # `pepita --help`, a mistyped option and `pepita list` answer at once: the
    # parser imports the standard library only, and configs load without Keras.
    script = textwrap.dedent("""
        import sys
        from pepita_keras import cli
        for argv in (["--help"], ["reproduce", "--help"], ["tune", "x", "--epochs", "0"],
                     ["list"], ["--version"]):
            try:
                code = cli.main(argv)
            except SystemExit as exit:
                code = exit.code
            print("exit", code)
        print("loaded", sorted(m for m in ("tensorflow", "keras", "jax", "mlflow",
                                            "keras_tuner") if m in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "loaded []"
    assert [line for line in lines if line.startswith("exit")] == ["exit 0", "exit 0", "exit 2",
                                                                   "exit 0", "exit 0"]
    # The installed distribution's version (pyproject.toml), not a second copy of it.
    assert f"pepita_keras {importlib.metadata.version('pepita_keras')}" in lines
    assert any(line.startswith("fc_mnist_drtp ") for line in lines)
    assert "must be a positive integer; received '0'" in result.stderr
    for command in ("list", "reproduce", "results", "migrate-store", "tune", "tune-report"):
        assert command in result.stdout


@pytest.mark.slow  # a fresh process: what it imports is the point
def test_results_reads_the_store_without_tensorflow_or_keras(tmp_path):
    # `pepita results` only reads MLflow and draws plots: a copy of the committed
    # store (real runs, so the table and curve code paths all run) gives a table
    # without TensorFlow or Keras being imported.
    store = pathlib.Path(__file__).resolve().parents[1] / "reproductions/results/tracking.db"
    source, copy = sqlite3.connect(store), sqlite3.connect(tmp_path / "store.db")
    source.backup(copy)
    source.close(), copy.close()
    script = textwrap.dedent(f"""
        import sys
        from pepita_keras import cli
        cli.main(["results", "--tracking-uri", "sqlite:///{tmp_path / 'store.db'}",
                  "--output", "{tmp_path / 'out'}"])
        print("loaded", sorted(m for m in ("tensorflow", "keras", "jax", "keras_tuner")
                               if m in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "loaded []"
    table = (tmp_path / "out" / "README.md").read_text()
    # The committed FC-MNIST PEPITA seeds (about 98%), whatever their number.
    assert re.search(r"\| `fc_mnist_pepita` \| PEPITA \| FC \| MNIST \| 9[78]\.\d\d", table)
    assert (tmp_path / "out" / "curves" / "fc_mnist_pepita.png").stat().st_size > 0


def test_unknown_reproduction_config(tmp_path):
    result = _pepita(tmp_path, "reproduce", "no_such_config", "--synthetic")
    _assert_user_error(result, "reproduce", "Unknown config 'no_such_config'")


def test_malformed_seeds(tmp_path):
    result = _pepita(tmp_path, "reproduce", "fc_mnist_pepita", "--smoke", "--synthetic",
                     "--seeds", "0,x")
    _assert_user_error(result, "reproduce", "--seeds must look like '0,1,2' or '0-4'; "
                                            "received '0,x'")


def test_missing_data(tmp_path):
    empty = tmp_path / "no_data_here"
    result = _pepita(tmp_path, "reproduce", "fc_mnist_pepita", "--smoke",
                     "--data-dir", empty)
    _assert_user_error(result, "reproduce", "Dataset 'mnist' not found")
    assert str(empty) in result.stderr  # the paths searched follow on their own lines


def test_unknown_tuning_config(tmp_path):
    result = _pepita(tmp_path, "tune", "no_such_search")
    _assert_user_error(result, "tune", "Unknown tuning config 'no_such_search'")


_TUNING_CONFIG = """
from pepita_keras.tuning.configs import TuningConfig


def get_config():
    {body}
    return TuningConfig(name="bad_search", experiment="fc_mnist_pepita",
                        objective="val_acc", max_trials=2, epochs=1,
                        train_examples=64, val_examples=32)
"""


def test_tune_checks_the_objective_before_the_first_trial(tmp_path):
    config = tmp_path / "bad_search.py"
    config.write_text(textwrap.dedent(_TUNING_CONFIG.format(body="pass")))
    search = tmp_path / "search"
    # No data anywhere: the objective is checked before data is loaded.
    result = _pepita(tmp_path, "tune", config, "--directory", search)
    _assert_user_error(
        result, "tune",
        "objective='val_acc' is not a metric the trials log, so every trial would "
        "fail; they log accuracy, loss, val_accuracy, val_loss.",
    )
    assert not search.exists()  # no trial, no keras-tuner state


def test_an_error_in_the_users_own_config_file_keeps_its_traceback(tmp_path):
    config = tmp_path / "broken_search.py"
    config.write_text(textwrap.dedent(
        _TUNING_CONFIG.format(body='raise ValueError("my own bug")')
    ))
    result = _pepita(tmp_path, "tune", config)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "broken_search.py" in result.stderr and "my own bug" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ("reproduce", "no_such_config", "--synthetic"),
    ("reproduce", "fc_mnist_pepita", "--smoke", "--synthetic", "--seeds", "0,x"),
    ("tune", "no_such_search"),
])
def test_in_process_equals_a_fresh_process(tmp_path, args):
    process = _pepita_process(tmp_path, *args)
    here = _pepita(tmp_path, *args)
    assert process.returncode == here.returncode == 2
    errors = [[line for line in result.stderr.splitlines() if line.startswith("pepita ")]
              for result in (process, here)]
    assert errors[0] == errors[1] and len(errors[0]) == 1


# ---------------------------------------------------------------------------
# Which exceptions are user errors (in process).
# ---------------------------------------------------------------------------
def _raising(error_fn):
    def command(args):
        error_fn()

    def build_parser():
        parser = argparse.ArgumentParser(prog="pepita")
        subparsers = parser.add_subparsers(dest="command")
        subparsers.add_parser("demo").set_defaults(func=command)
        return parser

    return build_parser


def test_explicit_package_value_error_is_a_user_error(monkeypatch, capsys):
    from pepita_keras import experiment_config

    monkeypatch.setattr(cli, "build_parser",
                        _raising(lambda: experiment_config.load_config("no_such_config")))
    assert cli.main(["demo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pepita demo: error: Unknown config 'no_such_config'")
    assert err.count("\n") == 1


def test_traceback_on_request(monkeypatch):
    from pepita_keras import experiment_config

    monkeypatch.setattr(cli, "build_parser",
                        _raising(lambda: experiment_config.load_config("no_such_config")))
    monkeypatch.setenv("PEPITA_TRACEBACK", "1")
    with pytest.raises(ValueError, match="Unknown config"):
        cli.main(["demo"])


@pytest.mark.parametrize(
    "error_fn, error_type",
    [
        # Python's own ValueError inside package code (int("x")): a bug.
        (lambda: cli.positive_int("x"),
         ValueError),
        # Raised inside Keras, not by the package.
        (lambda: keras.layers.Dense(3, activation="no_such_activation"), ValueError),
        (lambda: None + 1, TypeError),
    ],
    ids=["implicit_in_package", "library", "type_error"],
)
def test_bugs_keep_their_traceback(monkeypatch, error_fn, error_type):
    monkeypatch.setattr(cli, "build_parser", _raising(error_fn))
    with pytest.raises(error_type):
        cli.main(["demo"])


def test_tune_summary_without_a_scored_trial_is_an_error_not_a_crash(monkeypatch, capsys):
    # keras-tuner lists failed trials with score None; the summary used to
    # format None with ".4f" (TypeError).
    from types import SimpleNamespace

    from pepita_keras.tuning import commands, tuners

    config = SimpleNamespace(name="search", objective="val_accuracy")
    tuner = SimpleNamespace(oracle=SimpleNamespace(trials={"0": None, "1": None}))
    monkeypatch.setattr(commands, "run_search", lambda *a, **k: (tuner, config, 1.0))
    monkeypatch.setattr(tuners, "trial_summary", lambda *a: [
        {"trial_id": "0", "score": None, "status": "FAILED", "hyperparameters": {}},
    ])
    args = argparse.Namespace(**{name: None for name in (
        "config", "tuner", "max_trials", "epochs", "smoke", "directory", "project_name",
        "overwrite", "data_dir", "seed", "experiment", "train_examples", "val_examples",
        "synthetic", "tracking_uri")})
    assert cli.tune_command(args) == 1
    assert "no trial of 'search' completed with a score" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# Bad settings are refused before a run, a run folder or a store exists.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (("--set", "learning_rate=abc"), "learning_rate must be a number > 0"),
    (("--set", "dropout=1.5"), "dropout must be a number in [0, 1)"),
    (("--set", "lr_decay_epochs=5"), "lr_decay_epochs must be a tuple of epoch numbers"),
    (("--set", "rule_kwargs.bogus=1"), "rule_kwargs.bogus is not an argument of PEPITA"),
    (("--seeds", "4294967296"), "--seeds must list distinct integers in [0, 2**32)"),
    (("--set", "epochs=3"), "--smoke sets epochs itself"),
])
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, args, message):
    result = _pepita(tmp_path, "reproduce", "fc_mnist_pepita", "--smoke", "--synthetic",
                     "--run-root", tmp_path / "runs", *args)
    _assert_user_error(result, "reproduce", message)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlflow.db").exists()


def test_more_examples_than_the_data_has_are_refused(tmp_path):
    data = tmp_path / "data" / "mnist"
    write_mnist(data, np.random.default_rng(0), n_train=100, n_test=20)
    result = _pepita(tmp_path, "reproduce", "fc_mnist_pepita", "--data-dir", data.parent,
                     "--no-verify", "--train-examples", "100000", "--epochs", "1",
                     "--run-root", tmp_path / "runs")
    _assert_user_error(result, "reproduce", "train_examples=100000")
    assert "has 100 examples" in result.stderr and not (tmp_path / "runs").exists()


def test_a_smaller_data_folder_trains_a_custom_run_not_the_paper_cell(tmp_path):
    data = tmp_path / "data" / "mnist"
    write_mnist(data, np.random.default_rng(0), n_train=200, n_test=50)
    result = _pepita(tmp_path, "reproduce", "fc_mnist_pepita", "--data-dir", data.parent,
                     "--no-verify", "--epochs", "1", "--run-root", tmp_path / "runs",
                     "--verbose", "0")
    assert result.returncode == 0, result.stderr
    assert "not as the paper cell" in result.stdout
    from pepita_keras import experiment_config

    config = experiment_config.load_config("fc_mnist_pepita").replace(epochs=1)
    sized = config.replace(train_examples=200, test_examples=50)
    # The sizes and the files are part of the recorded settings: not even the
    # plain --epochs 1 run's name, nor that of the same sizes of official files.
    [folder] = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("fc_mnist_pepita-custom-")
    assert folder.name not in (sized.run_name, config.run_name)


def _fake_full_mnist(tmp_path, monkeypatch):
    """A 200/50-example MNIST folder that the package takes for the full dataset's sizes."""
    from pepita_keras import experiment_config, input_pipeline
    from pepita_keras.store import dataset_inputs

    monkeypatch.setitem(experiment_config.FULL_SPLITS, "mnist", (200, 50))
    data = tmp_path / "data" / "mnist"
    write_mnist(data, np.random.default_rng(0), n_train=200, n_test=50)
    config = experiment_config.load_config("fc_mnist_pepita")
    arrays = input_pipeline.load_config_arrays(config, data.parent, verify=False)
    return config, arrays, dataset_inputs.of_arrays(config, arrays, data.parent), data


def test_files_that_are_not_the_official_ones_make_a_custom_run(tmp_path, monkeypatch, capsys):
    from pepita_keras import reproduce

    config, arrays, inputs, data = _fake_full_mnist(tmp_path, monkeypatch)
    # A SHA256SUMS of the user's own does not make the files genuine.
    (data / "SHA256SUMS").write_text("".join(
        f"{digest}  {name}\n" for item in inputs for name, digest in item.file_hashes.items()))
    used = reproduce._with_data_actually_used(config, arrays, inputs)
    assert used.data_digest is not None and used.run_name.startswith("fc_mnist_pepita-custom-")
    assert used.replace(data_digest=None) == config  # only the data identity changed
    assert "is not the official mnist files" in capsys.readouterr().out
    # Other files, another digest, another custom run.
    write_mnist(data, np.random.default_rng(1), n_train=200, n_test=50)
    other = dataset_inputs.of_arrays(config, arrays, data.parent)
    assert dataset_inputs.unofficial_data_digest("mnist", other) != used.data_digest


def test_the_official_files_train_the_paper_cell_even_unverified(tmp_path, monkeypatch, capsys):
    from pepita_keras import dataset_files, reproduce

    config, arrays, inputs, _ = _fake_full_mnist(tmp_path, monkeypatch)
    official = {name: {digest} for item in inputs for name, digest in item.file_hashes.items()}
    assert len(official) == 4
    monkeypatch.setitem(dataset_files._KNOWN_SHA256, "mnist", official)
    used = reproduce._with_data_actually_used(config, arrays, inputs)
    assert used is config and used.run_name == "fc_mnist_pepita"
    assert capsys.readouterr().out == ""
    # The digest of the genuine data is not a recorded setting at all.
    assert "data_digest" not in config.flatten()


# ---------------------------------------------------------------------------
# Stores that cannot be used: one line naming the store and what to do.
# ---------------------------------------------------------------------------
def _assert_store_error(result, command, message):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines()
              if line.startswith(f"pepita {command}: error: ")]
    assert len(errors) == 1 and message in errors[0], result.stderr


def test_a_file_that_is_not_sqlite_is_refused_before_mlflow_opens_it(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"\x00\xffnot a database at all" * 10)
    result = _pepita(tmp_path, "results", "--tracking-uri", f"sqlite:///{junk}", "--output", "-")
    _assert_user_error(result, "results", f"{junk} is not an SQLite database")
    assert junk.read_bytes() == b"\x00\xffnot a database at all" * 10
    assert not (tmp_path / "junk.db.lock").exists()


@pytest.mark.slow  # MLflow waits ~20 s for the lock before it gives up
def test_a_locked_store_says_so_instead_of_a_traceback(tmp_path):
    from pepita_keras.store import tracking

    store = tmp_path / "store.db"
    tracking.client(f"sqlite:///{store}")  # a real, migrated MLflow store
    holder = sqlite3.connect(store, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing it, as SQLite sees it
    try:
        result = _pepita(tmp_path, "results", "--tracking-uri", f"sqlite:///{store}",
                         "--output", "-")
    finally:
        holder.rollback()
        holder.close()
    _assert_store_error(result, "results", f"the MLflow store {store} is locked")


def test_a_store_in_a_read_only_folder_is_read_without_a_lock_file(tmp_path, monkeypatch):
    from pepita_keras.store import tracking

    folder = tmp_path / "readonly"
    store = folder / "store.db"
    tracking.client(f"sqlite:///{store}")
    (folder / "store.db.lock").unlink()
    real_access = os.access
    # Root may write anywhere; the folder is read-only as `os.access` reports it.
    monkeypatch.setattr(os, "access", lambda path, mode: False if pathlib.Path(path) == folder
                        and mode == os.W_OK else real_access(path, mode))
    result = _pepita(tmp_path, "results", "--tracking-uri", f"sqlite:///{store}",
                     "--output", "-")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["store.db"]


@pytest.mark.parametrize("sqlite_message, expected", [
    ("attempt to write a readonly database", "cannot be written here"),
    ("unable to open database file", "cannot be written here"),
    ("database disk image is malformed", "is not a readable SQLite database"),
    ("no such table: runs", None),  # not the user's to fix: keeps its traceback
])
def test_store_errors_a_user_can_fix_are_explained(sqlite_message, expected):
    import sqlalchemy.exc

    from pepita_keras.store import tracking

    error = sqlalchemy.exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError(sqlite_message))
    message = tracking.store_problem(error, "sqlite:////data/store.db")
    if expected is None:
        assert message is None
    else:
        assert expected in message and "/data/store.db" in message


# ---------------------------------------------------------------------------
# Run folders damaged outside pepita: one line naming the file.
# ---------------------------------------------------------------------------
def test_an_empty_state_file_names_the_file_and_the_folder_to_delete(tmp_path):
    runs = tmp_path / "runs"
    argv = ("reproduce", "fc_mnist_pepita", "--smoke", "--synthetic", "--run-root", runs,
            "--verbose", "0")
    assert _pepita(tmp_path, *argv).returncode == 0
    state = runs / "fc_mnist_pepita-smoke" / "seed0" / "state.json"
    state.write_text("")  # e.g. a disk that filled up under another program
    result = _pepita(tmp_path, *argv)
    _assert_user_error(result, "reproduce", f"{state} is empty")
    assert f"delete the folder {state.parent}" in result.stderr


def test_a_truncated_checkpoint_names_the_file(tmp_path):
    from pepita_keras import paper_networks
    from pepita_keras.store import checkpoints

    model = paper_networks.paper_fc(input_shape=(4,), num_classes=3, hidden_units=(5,))
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    model.optimizer.build(model.trainable_variables)
    name = checkpoints.save_checkpoint(checkpoints.variable_arrays(model), tmp_path, 3)
    path = tmp_path / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=f"checkpoint {path} cannot be read .* truncated"):
        checkpoints.restore_checkpoint(model, path)
    # The error is the user's message, not a traceback.
    try:
        checkpoints.restore_checkpoint(model, path)
    except ValueError as error:
        assert cli.is_user_error(error)


@pytest.mark.slow  # a fresh process each (what it imports is the point): ~5 s apiece
@pytest.mark.parametrize("command", [("tune-report", "--output", "-"),
                                     ("results", "--output", "-"),
                                     ("reproduce", "fc_mnist_bp", "--plan")])
def test_commands_that_only_read_the_store_load_no_tensorflow_keras_or_tuner(tmp_path, command):
    # They answer in seconds: the store is read with MLflow alone.
    script = textwrap.dedent(f"""
        import sys
        from pepita_keras import cli
        from pepita_keras.store import tracking
        tracking.client("sqlite:///{tmp_path}/s.db")  # an empty store (a missing one is refused)
        code = cli.main({list(command)!r} + ["--tracking-uri", "sqlite:///{tmp_path}/s.db"])
        print("exit", code)
        print("loaded", sorted(m for m in ("tensorflow", "keras", "jax", "keras_tuner")
                               if m in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["exit 0", "loaded []"], result.stdout
