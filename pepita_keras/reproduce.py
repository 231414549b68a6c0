"""Running paper reproductions: kill-safe training tracked in MLflow.

`reproduce(config, seeds)` trains one cell of the paper's table for each
seed. Each seed is one nested MLflow run under one parent run per cell; each
epoch is checkpointed, so rerunning the same command after a crash (or
`kill -9`) resumes from the last completed epoch into the *same* MLflow runs
and ends with the same numbers as an uninterrupted run.

How exact resumption works:

- the run directory `<run_root>/<cell>/seed<k>/` holds `state.json` (last
  completed epoch, per-epoch history, MLflow run id, wall time, config) and
  `checkpoint-eNNNN.npz` (every model variable, including the dropout seed
  generators and feedback matrices, and every optimizer variable, including
  `iterations` that the step-keyed learning-rate schedule reads). The
  checkpoint is written first and `state.json` is replaced atomically
  after it, so a kill at any moment leaves a consistent pair;
- the training order of epoch `e` is a permutation drawn from
  `numpy.random.default_rng([seed, e])`, independent of what ran before;
- metrics go to MLflow after the checkpoint, and a resumed run first logs
  any epoch of its history that MLflow lacks, so every epoch is logged once.

CLI: `pepita reproduce <config> [--seeds 0,1,2] [--data-dir DIR] [--smoke]
[--epochs N]` and `pepita list`.
"""

import dataclasses
import json
import os
import pathlib
import time

import keras
import numpy as np

from pepita_keras import epoch_data
from pepita_keras import experiment as experiment_lib

DEFAULT_EXPERIMENT = "pepita-reproductions"
DEFAULT_RUN_ROOT = "runs"
STATE_FILE = "state.json"
PARENT_FILE = "parent.json"


@dataclasses.dataclass
class SeedResult:
    """Outcome of one seed.

    Args:
        seed: the seed.
        run_id: its MLflow run id.
        history: per-epoch metrics, `{name: [value per epoch]}`.
        final_test_accuracy: test accuracy after the last epoch (fraction).
        wall_time_s: training wall time summed over all (resumed) sessions.
        resumed_from_epoch: epochs already done when this call started.
        model: the trained Keras model (None if the seed was already done).
    """

    seed: int
    run_id: str
    history: dict
    final_test_accuracy: float
    wall_time_s: float
    resumed_from_epoch: int
    model: object = None


# ---------------------------------------------------------------------------
# Checkpoints.
# ---------------------------------------------------------------------------
def _write_json(path, data):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def _read_json(path):
    return json.loads(path.read_text()) if path.exists() else None


def save_checkpoint(model, folder, epoch):
    """Saves every model and optimizer variable to `checkpoint-e{epoch}.npz`.

    Returns:
        The file name (relative to `folder`).
    """
    arrays = {f"model/{i:04d}": v.numpy() for i, v in enumerate(model.variables)}
    arrays.update(
        {f"optimizer/{i:04d}": v.numpy() for i, v in enumerate(model.optimizer.variables)}
    )
    name = f"checkpoint-e{epoch:04d}.npz"
    tmp = folder / (name + ".tmp")
    with open(tmp, "wb") as file:
        np.savez(file, **arrays)
    os.replace(tmp, folder / name)
    return name


def restore_checkpoint(model, path):
    """Restores what `save_checkpoint` saved into a freshly built model."""
    with np.load(path) as data:
        for prefix, variables in (
            ("model", model.variables),
            ("optimizer", model.optimizer.variables),
        ):
            keys = sorted(k for k in data.files if k.startswith(prefix + "/"))
            if len(keys) != len(variables):
                raise ValueError(
                    f"Checkpoint {path} holds {len(keys)} {prefix} variables but "
                    f"the model has {len(variables)}; it was written by a "
                    "different model. Delete the run directory to start over."
                )
            for key, variable in zip(keys, variables):
                variable.assign(data[key])


# Config fields that do not change what is trained: a run may resume under a
# config whose descriptions or smoke settings were edited since.
_DESCRIPTIVE_FIELDS = ("notes", "paper", "paper_source")


def _config_fingerprint(config):
    return json.dumps(config.flatten(), sort_keys=True, default=str)


def _training_settings(fingerprint):
    settings = json.loads(fingerprint)
    return {
        key: value for key, value in settings.items()
        if key not in _DESCRIPTIVE_FIELDS and not key.startswith("smoke.")
    }


def _check_same_config(state, config, where):
    if _training_settings(state["config"]) != _training_settings(_config_fingerprint(config)):
        raise ValueError(
            f"{where} was started with a different config than {config.name!r} "
            "with the current options (e.g. --epochs, --smoke, subset sizes). "
            "Rerun with the original options, pass another --run-root, or "
            "delete that directory to start over."
        )


class EpochCheckpoint(keras.callbacks.Callback):
    """After each epoch: append the logs to the history, checkpoint, write state.

    Args:
        folder: the seed's run directory.
        state: the dict saved as `state.json` (updated in place).
    """

    def __init__(self, folder, state):
        super().__init__()
        self.folder = folder
        self.state = state

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        logs = dict(logs or {})
        logs["epoch_time_s"] = seconds
        for key, value in logs.items():
            self.state["history"].setdefault(key, []).append(float(value))
        old = self.state.get("checkpoint")
        self.state["checkpoint"] = save_checkpoint(self.model, self.folder, epoch + 1)
        self.state["epoch"] = epoch + 1
        self.state["wall_time_s"] += seconds
        # state.json is the commit point: it names the checkpoint just written.
        _write_json(self.folder / STATE_FILE, self.state)
        if old and old != self.state["checkpoint"]:
            (self.folder / old).unlink(missing_ok=True)


class EpochPrinter(keras.callbacks.Callback):
    """Prints one line per epoch with its time and metrics."""

    def __init__(self, prefix, epochs):
        super().__init__()
        self.prefix, self.epochs = prefix, epochs

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        parts = [f"{time.perf_counter() - self.started:.1f}s"]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in logs:
                parts.append(f"{key} {float(logs[key]):.4f}")
        print(f"{self.prefix} epoch {epoch + 1}/{self.epochs} - " + " - ".join(parts),
              flush=True)


def alignment_callbacks(probe=None):
    """`pepita_keras.callbacks.AlignmentDiagnostics`, if this install has it.

    It adds per-epoch alignment angles (and, with `probe`, per-layer update
    norms) to the Keras logs, which are then logged to MLflow with the other
    metrics, kept in the history, and saved as `alignment.json`. It computes
    without randomness, so it does not change training or resumption.

    Args:
        probe: optional fixed `(x, y)` batch for the update norms.
    """
    module = experiment_lib.import_optional("pepita_keras.callbacks")
    cls = getattr(module, "AlignmentDiagnostics", None)
    return [] if cls is None else [cls(probe=probe)]


# ---------------------------------------------------------------------------
# Running.
# ---------------------------------------------------------------------------
def _history_metrics(history, epoch):
    from pepita_keras import tracking

    return {
        tracking.test_metric_name(key): values[epoch]
        for key, values in history.items()
        if epoch < len(values)
    }


def _sync_logged_epochs(client, run_id, history):
    """Logs epochs of `history` that MLflow lacks (killed between checkpoint and log)."""
    from pepita_keras import tracking

    epochs = len(history.get("val_accuracy", []))
    logged = tracking.logged_steps(client, run_id, "test_accuracy")
    for epoch in range(epochs):
        if epoch not in logged:
            tracking.log_metrics(client, run_id, _history_metrics(history, epoch), step=epoch)


def _parent_run(client, experiment_id, config, cell_dir, uri, command):
    from pepita_keras import tracking

    path = cell_dir / PARENT_FILE
    state = _read_json(path)
    if state is not None:
        _check_same_config(state, config, str(cell_dir))
        if state["tracking_uri"] != uri or not tracking.run_exists(client, state["run_id"]):
            raise ValueError(
                f"{cell_dir} belongs to MLflow run {state['run_id']} in "
                f"{state['tracking_uri']}, which is not in the current store {uri}. "
                "Set MLFLOW_TRACKING_URI to the original store, or use another "
                "--run-root / delete that directory to start over."
            )
        tracking.reopen_run(client, state["run_id"])
        return state["run_id"]
    tags = {
        "pepita.kind": "cell",
        "pepita.cell": config.name,
        "pepita.smoke": config.is_smoke,
        "pepita.label": config.label,
        "run_dir": str(cell_dir.resolve()),
        **tracking.provenance_tags(command),
    }
    if config.paper:
        tags.update({"paper.mean": config.paper[0], "paper.std": config.paper[1],
                     "paper.source": config.paper_source})
    run_id = tracking.create_run(client, experiment_id, config.run_name, tags=tags)
    tracking.log_params(client, run_id, config.flatten())
    cell_dir.mkdir(parents=True, exist_ok=True)
    _write_json(path, {"run_id": run_id, "tracking_uri": uri,
                       "config": _config_fingerprint(config)})
    return run_id


def run_seed(config, seed, data, client, experiment_id, parent_run_id, cell_dir,
             command=None, verbose=2):
    """Trains one seed with per-epoch checkpoints, resuming if a checkpoint exists.

    Args:
        config: an `ExperimentConfig`.
        seed: integer seed.
        data: an `EpochData`.
        client: an `mlflow.MlflowClient`.
        experiment_id: MLflow experiment id.
        parent_run_id: the cell's parent run.
        cell_dir: the cell's run directory.
        command: the command line, recorded as a tag.
        verbose: 0 silent, 1 Keras progress bar, 2 one line per epoch.

    Returns:
        A `SeedResult`.
    """
    from pepita_keras import tracking

    folder = cell_dir / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    state = _read_json(folder / STATE_FILE)
    prefix = f"[{config.run_name} seed {seed}]"
    if state is not None:
        _check_same_config(state, config, str(folder))
        if not tracking.run_exists(client, state["run_id"]):
            raise ValueError(
                f"{folder} refers to MLflow run {state['run_id']}, missing from the "
                "current store; delete that directory to start over."
            )
        if state.get("finished"):
            print(f"{prefix} already finished ({state['epoch']} epochs); skipping.", flush=True)
            return SeedResult(seed, state["run_id"], state["history"],
                              state["history"]["val_accuracy"][-1], state["wall_time_s"],
                              state["epoch"])
    keras.utils.set_random_seed(seed)
    model = experiment_lib.build_model(config, seed, data.steps_per_epoch)
    if state is None:
        tags = {
            "pepita.kind": "seed",
            "pepita.cell": config.name,
            "pepita.seed": seed,
            "pepita.smoke": config.is_smoke,
            "run_dir": str(folder.resolve()),
            **tracking.provenance_tags(command),
        }
        run_id = tracking.create_run(client, experiment_id, f"seed{seed}",
                                     parent_run_id=parent_run_id, tags=tags)
        params = dict(config.flatten(), seed=seed, num_train=data.num_train,
                      num_test=data.num_test, steps_per_epoch=data.steps_per_epoch)
        tracking.log_params(client, run_id, params)
        state = {"run_id": run_id, "epoch": 0, "history": {}, "wall_time_s": 0.0,
                 "checkpoint": None, "finished": False, "seed": seed,
                 "config": _config_fingerprint(config)}
        _write_json(folder / STATE_FILE, state)
        resumed_from = 0
    else:
        run_id = state["run_id"]
        tracking.reopen_run(client, run_id)
        resumed_from = state["epoch"]
        if state.get("checkpoint"):
            restore_checkpoint(model, folder / state["checkpoint"])
        _sync_logged_epochs(client, run_id, state["history"])
        tracking.set_tags(client, run_id, {f"resumed.epoch{resumed_from}":
                                           tracking.git_info()["commit"] or "unknown"})
        print(f"{prefix} resuming after epoch {resumed_from}/{config.epochs}", flush=True)
    callbacks = alignment_callbacks(data.probe) + [
        EpochCheckpoint(folder, state),
        tracking.MLflowMetricsCallback(client, run_id, rename=tracking.test_metric_name),
    ]
    if verbose == 2:
        callbacks.append(EpochPrinter(prefix, config.epochs))
    try:
        for epoch in range(state["epoch"], config.epochs):
            # One fit() per epoch: each epoch gets its own (seed, epoch) order.
            model.fit(data.train(seed, epoch), validation_data=data.test,
                      initial_epoch=epoch, epochs=epoch + 1, shuffle=False,
                      verbose=1 if verbose == 1 else 0, callbacks=callbacks)
    except BaseException:
        # Ctrl-C / errors: mark the run; a rerun reopens it. (SIGKILL skips this.)
        tracking.finish_run(client, run_id, status="KILLED")
        raise
    _finalize_seed(config, seed, model, folder, state, client, run_id)
    return SeedResult(seed, run_id, state["history"], state["history"]["val_accuracy"][-1],
                      state["wall_time_s"], resumed_from, model)


def _finalize_seed(config, seed, model, folder, state, client, run_id):
    """Final metrics and artifacts of a seed; idempotent, so safe to redo after a kill."""
    from pepita_keras import tracking

    history = state["history"]
    curves = {tracking.test_metric_name(k): v for k, v in history.items()}
    tracking.log_metrics(client, run_id, {
        "final_test_accuracy": history["val_accuracy"][-1],
        "final_train_accuracy": history["accuracy"][-1],
        "wall_time_s": state["wall_time_s"],
        "epochs_completed": state["epoch"],
    }, step=state["epoch"])
    model_path = folder / "model.keras"
    model.save(model_path)
    client.log_artifact(run_id, str(model_path), "model")
    plot = tracking.plot_learning_curves(
        {f"seed {seed}": curves}, folder / "learning_curves.png",
        title=f"{config.label} (seed {seed})",
        paper=config.paper,
    )
    client.log_artifact(run_id, str(plot))
    tracking.log_json_artifact(client, run_id, curves, "history.json")
    alignment = {k: v for k, v in curves.items()
                 if any(word in k for word in ("angle", "align", "norm"))}
    tracking.log_json_artifact(
        client, run_id,
        alignment or {"note": "no alignment callback available in this version"},
        "alignment.json",
    )
    tracking.log_json_artifact(
        client, run_id,
        {"environment": tracking.environment_info(), "git": tracking.git_info(),
         "config": config.to_dict()},
        "environment.json",
    )
    tracking.set_tags(client, run_id, {"pepita.complete": True})
    tracking.finish_run(client, run_id)
    state["finished"] = True
    _write_json(folder / STATE_FILE, state)


def smoke_run(config, data_dir=None, synthetic=False, verify=True, seed=0):
    """Trains `config` in memory, without checkpoints or MLflow (for quick checks).

    Uses the same data pipeline, model and optimizer as `reproduce`.

    Returns:
        The Keras history dict, `{metric: [value per epoch]}`.
    """
    arrays = epoch_data.load_config_arrays(config, data_dir, synthetic=synthetic, verify=verify)
    data = epoch_data.EpochData(arrays, config.batch_size, config.eval_batch_size)
    keras.utils.set_random_seed(seed)
    model = experiment_lib.build_model(config, seed, data.steps_per_epoch)
    history = {}
    for epoch in range(config.epochs):
        logs = model.fit(data.train(seed, epoch), validation_data=data.test,
                         initial_epoch=epoch, epochs=epoch + 1, shuffle=False, verbose=0)
        for key, values in logs.history.items():
            history.setdefault(key, []).extend(values)
    return history


def summarize_parent(client, parent_run_id, config):
    """Logs mean/std/n of the finished seeds' final test accuracy on the parent run."""
    from pepita_keras import tracking

    finals = []
    for run in child_runs(client, parent_run_id):
        if run.data.tags.get("pepita.complete") == "True":
            finals.append(run.data.metrics["final_test_accuracy"])
    if not finals:
        return None
    values = np.array(finals) * 100
    summary = {"test_accuracy_mean": float(values.mean()), "n_seeds": len(values)}
    if len(values) > 1:
        summary["test_accuracy_std"] = float(values.std(ddof=1))
    tracking.log_metrics(client, parent_run_id, summary)
    return summary


def child_runs(client, parent_run_id):
    """All runs nested under `parent_run_id` (any status)."""
    parent = client.get_run(parent_run_id)
    return client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
        max_results=1000,
    )


def reproduce(config, seeds=(0,), data_dir=None, run_root=DEFAULT_RUN_ROOT,
              tracking_uri=None, experiment=DEFAULT_EXPERIMENT, synthetic=False,
              verify=True, command=None, verbose=2):
    """Runs (or resumes) one reproduction for several seeds.

    Args:
        config: an `ExperimentConfig` (e.g. from `experiment.load_config`).
        seeds: integer seeds, one nested MLflow run each.
        data_dir: dataset folder (see `pepita_keras.datasets`).
        run_root: folder of the run directories (checkpoints, state).
        tracking_uri: MLflow store; default `MLFLOW_TRACKING_URI` or MLflow's default.
        experiment: MLflow experiment name.
        synthetic: train on `synthetic_arrays` instead of the dataset.
        verify: check dataset checksums.
        command: the command line recorded with the runs.
        verbose: 0, 1 (progress bar) or 2 (one line per epoch).

    Returns:
        `(parent_run_id, [SeedResult per seed])`.

    Example:

    ```python
    config = experiment.load_config("fc_mnist_pepita").smoke_version()
    parent, results = reproduce(config, seeds=[0, 1], data_dir="/data")
    ```
    """
    from pepita_keras import tracking

    uri = tracking.tracking_uri(tracking_uri)
    client = tracking.client(uri)
    experiment_id = tracking.experiment_id(client, experiment)
    cell_dir = pathlib.Path(run_root) / config.run_name
    command = command or tracking.command_line()
    arrays = epoch_data.load_config_arrays(config, data_dir, synthetic=synthetic, verify=verify)
    data = epoch_data.EpochData(arrays, config.batch_size, config.eval_batch_size)
    parent_run_id = _parent_run(client, experiment_id, config, cell_dir, uri, command)
    results = []
    try:
        for seed in seeds:
            results.append(run_seed(config, seed, data, client, experiment_id,
                                    parent_run_id, cell_dir, command, verbose))
    finally:
        summarize_parent(client, parent_run_id, config)
        tracking.finish_run(client, parent_run_id)
    return parent_run_id, results


# ---------------------------------------------------------------------------
# CLI.
# ---------------------------------------------------------------------------
def parse_seeds(text):
    """`"0,1,2"` or `"0-4"` → list of ints."""
    seeds = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part[1:]:
                low, high = part.split("-", 1)
                seeds.extend(range(int(low), int(high) + 1))
            elif part:
                seeds.append(int(part))
    except ValueError:
        raise ValueError(f"--seeds must look like '0,1,2' or '0-4'; received {text!r}.")
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"--seeds must list distinct non-negative integers; received {text!r}.")
    return seeds


def configure(config, smoke=False, epochs=None, train_examples=None, test_examples=None):
    """Applies the CLI options to a loaded config."""
    if smoke:
        config = config.smoke_version()
    changes = {}
    if epochs is not None:
        changes["epochs"] = epochs
    if train_examples is not None:
        changes["train_examples"] = train_examples
    if test_examples is not None:
        changes["test_examples"] = test_examples
    return config.replace(**changes) if changes else config


def _reproduce_command(args):
    config = configure(
        experiment_lib.load_config(args.config), args.smoke, args.epochs,
        args.train_examples, args.test_examples,
    )
    parent, results = reproduce(
        config, parse_seeds(args.seeds), data_dir=args.data_dir, run_root=args.run_root,
        tracking_uri=args.tracking_uri, experiment=args.experiment,
        synthetic=args.synthetic, verify=not args.no_verify, verbose=args.verbose,
    )
    print(f"{config.run_name}: MLflow parent run {parent}")
    for result in results:
        print(f"  seed {result.seed}: final test accuracy "
              f"{100 * result.final_test_accuracy:.2f}% ({result.wall_time_s:.0f} s, "
              f"run {result.run_id})")
    return 0


def _list_command(args):
    configs = experiment_lib.list_configs()
    if not configs:
        print("No configs found in: " + ", ".join(map(str, experiment_lib.config_dirs())))
        return 1
    width = max(len(name) for name in configs)
    for name in configs:
        config = experiment_lib.load_config(configs[name])
        paper = f"{config.paper[0]:.2f} ± {config.paper[1]:.2f}" if config.paper else "—"
        print(f"{name:<{width}}  {config.label:<28} paper {paper:<14} "
              f"{config.epochs} epochs, lr {config.learning_rate}, batch {config.batch_size}")
    return 0


def add_subparser(subparsers):
    """Registers `reproduce` and `list` on the `pepita` CLI."""
    parser = subparsers.add_parser(
        "reproduce", help="run (or resume) one paper cell, tracked in MLflow",
        description="Train one config for each seed; one MLflow parent run per cell, "
                    "one nested run per seed. Rerun the same command to resume.",
    )
    parser.add_argument("config", help="config name (see `pepita list`) or path to a .py file")
    parser.add_argument("--seeds", default="0", help="comma list or range, e.g. 0,1,2 or 0-4")
    parser.add_argument("--data-dir", default=None,
                        help="dataset folder (default: $PEPITA_DATA_DIR, then TFDS)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny subset and 1 epoch (the config's smoke settings)")
    parser.add_argument("--epochs", type=int, default=None, help="override the epochs")
    parser.add_argument("--train-examples", type=int, default=None,
                        help="keep only the first N training examples")
    parser.add_argument("--test-examples", type=int, default=None,
                        help="keep only the first N test examples")
    parser.add_argument("--synthetic", action="store_true",
                        help="random learnable data shaped like the dataset (no files needed)")
    parser.add_argument("--no-verify", action="store_true", help="skip dataset checksums")
    parser.add_argument("--run-root", default=DEFAULT_RUN_ROOT,
                        help="folder for checkpoints/state (default: ./runs)")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="MLflow experiment name")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2,
                        help="0 silent, 1 progress bar, 2 one line per epoch")
    parser.set_defaults(func=_reproduce_command)

    parser = subparsers.add_parser("list", help="list the reproduction configs")
    parser.set_defaults(func=_list_command)
