"""MLflow helpers shared by the reproductions and the tuner.

Only MLflow's Python API is used (`mlflow.MlflowClient`), with explicit run
ids rather than the fluent "active run" stack, so a run can be reopened by
id after a crash and nested runs are plain `mlflow.parentRunId` tags.

The tracking store is MLflow's default (`sqlite:///mlflow.db` in the
working directory) unless `MLFLOW_TRACKING_URI` or an explicit URI says
otherwise.

Example:

```python
client = tracking.client()
experiment_id = tracking.experiment_id(client, "pepita-reproductions")
parent = tracking.create_run(client, experiment_id, "fc_mnist_pepita")
child = tracking.create_run(client, experiment_id, "seed0", parent_run_id=parent)
tracking.log_params(client, child, {"lr": 0.1})
model.fit(..., callbacks=[tracking.MLflowMetricsCallback(client, child)])
tracking.finish_run(client, child)
```
"""

import contextlib
import fcntl
import functools
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

import keras

from pepita_keras import checkpoints

# MLflow's limits (mlflow.utils.validation): param values up to 6000 chars,
# batches of at most 100 params / 1000 metrics.
_MAX_PARAM_LENGTH = 6000
_PARAM_BATCH = 100
_METRIC_BATCH = 1000


def tracking_uri(uri=None):
    """The tracking URI in effect: `uri`, else `MLFLOW_TRACKING_URI`, else MLflow's default.

    A relative SQLite path is made absolute, so the URI names the same store
    from any working directory (run folders record it).
    """
    import mlflow

    uri = uri or mlflow.get_tracking_uri()
    path = _sqlite_path(uri)
    if path is not None and not path.is_absolute():
        return f"sqlite:///{path.resolve()}"
    return uri


def client(uri=None):
    """An `mlflow.MlflowClient` for `tracking_uri(uri)`, its store ready for use.

    A SQLite store is first opened under a file lock beside it: MLflow
    creates and migrates the schema on first use, and two processes doing
    that at once crash (alembic `CommandError`).
    """
    import mlflow

    uri = tracking_uri(uri)
    with store_lock(uri):
        mlflow_client = mlflow.MlflowClient(tracking_uri=uri)
        mlflow_client.search_experiments(max_results=1)
    return mlflow_client


def _sqlite_path(uri):
    prefix = "sqlite:///"
    if not str(uri).startswith(prefix):
        return None
    return pathlib.Path(str(uri)[len(prefix):].split("?", 1)[0])


@contextlib.contextmanager
def store_lock(uri):
    """Holds an exclusive lock on `<db>.lock` for a SQLite `uri` (no-op otherwise)."""
    path = _sqlite_path(uri)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def experiment_id(mlflow_client, name, artifact_location=None):
    """Id of experiment `name`, created (with `artifact_location`) if missing."""
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return mlflow_client.create_experiment(name, artifact_location=artifact_location)
    except Exception:  # created concurrently by another process
        experiment = mlflow_client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def tag_value(value):
    """A tag's string: booleans as `"true"`/`"false"` everywhere, others `str()`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def tag_is_true(value):
    """Reads a boolean tag, whichever spelling wrote it (`true`, `True`, `1`)."""
    return str(value).lower() in ("true", "1")


def create_run(mlflow_client, experiment, run_name, parent_run_id=None, tags=None):
    """Creates a RUNNING run (nested under `parent_run_id` if given); returns its id."""
    # Stringify here: MLflow's store would turn a bool tag into "1".
    tags = {str(k): tag_value(v) for k, v in (tags or {}).items()}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run = mlflow_client.create_run(experiment, run_name=run_name, tags=tags)
    return run.info.run_id


def reopen_run(mlflow_client, run_id):
    """Marks an existing run RUNNING again (resuming after a crash)."""
    mlflow_client.update_run(run_id, status="RUNNING")


def finish_run(mlflow_client, run_id, status="FINISHED"):
    """Terminates a run with `status` (`FINISHED`, `FAILED`, `KILLED`)."""
    mlflow_client.set_terminated(run_id, status=status)


def run_exists(mlflow_client, run_id):
    """True if `run_id` exists in the store (and is not deleted)."""
    try:
        run = mlflow_client.get_run(run_id)
    except Exception:
        return False
    return run.info.lifecycle_stage != "deleted"


def log_params(mlflow_client, run_id, params):
    """Logs a flat dict of params, values stringified and truncated to MLflow's limit."""
    from mlflow.entities import Param

    items = [
        Param(str(key), param_value(value)) for key, value in sorted(params.items())
    ]
    for start in range(0, len(items), _PARAM_BATCH):
        mlflow_client.log_batch(run_id, params=items[start : start + _PARAM_BATCH])


def param_value(value):
    """How `log_params` writes `value`: JSON for containers, else `str`, truncated."""
    text = json.dumps(value) if isinstance(value, (list, tuple, dict)) else str(value)
    return text[:_MAX_PARAM_LENGTH]


def set_tags(mlflow_client, run_id, tags):
    """Sets several tags at once."""
    from mlflow.entities import RunTag

    mlflow_client.log_batch(
        run_id, tags=[RunTag(str(k), tag_value(v)) for k, v in tags.items()]
    )


def log_metrics(mlflow_client, run_id, metrics, step=None):
    """Logs every numeric value of `metrics` at `step`, NaN and ±Inf included.

    A diverged run's non-finite losses are logged as they are, not dropped.
    """
    from mlflow.entities import Metric

    timestamp = int(time.time() * 1000)
    items = [
        Metric(str(key), float(value), timestamp, step or 0)
        for key, value in metrics.items()
        if _is_number(value)
    ]
    for start in range(0, len(items), _METRIC_BATCH):
        mlflow_client.log_batch(run_id, metrics=items[start : start + _METRIC_BATCH])


def _is_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def logged_steps(mlflow_client, run_id, key):
    """The steps at which metric `key` was logged in `run_id`."""
    return {m.step for m in mlflow_client.get_metric_history(run_id, key)}


def log_json_artifact(mlflow_client, run_id, data, filename, artifact_path=None):
    """Writes `data` as strict JSON (non-finite numbers as null) and logs it."""
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / filename
        path.write_text(checkpoints.dumps(data))
        mlflow_client.log_artifact(run_id, str(path), artifact_path)


class MLflowMetricsCallback(keras.callbacks.Callback):
    """Logs every numeric epoch log to an MLflow run, step = epoch index.

    Keras names validation metrics `val_*`; `rename` maps them (e.g. to
    `test_*` when the validation data is the test set).

    Args:
        mlflow_client: an `mlflow.MlflowClient`.
        run_id: the run to log to.
        rename: optional function `name -> name` applied to each key.
        extra: optional function `(epoch, logs) -> dict` of more metrics
            (e.g. wall time) logged with the epoch.

    Example:

    ```python
    model.fit(x, y, validation_data=(x_test, y_test),
              callbacks=[MLflowMetricsCallback(client, run_id)])
    ```
    """

    def __init__(self, mlflow_client, run_id, rename=None, extra=None):
        super().__init__()
        self.mlflow_client = mlflow_client
        self.run_id = run_id
        self.rename = rename or (lambda name: name)
        self.extra = extra

    def on_epoch_end(self, epoch, logs=None):
        metrics = {self.rename(k): v for k, v in (logs or {}).items()}
        if self.extra is not None:
            metrics.update(self.extra(epoch, logs or {}))
        log_metrics(self.mlflow_client, self.run_id, metrics, step=epoch)


def test_metric_name(name):
    """`val_accuracy` → `test_accuracy`, `loss` → `train_loss`, others unchanged."""
    if name.startswith("val_"):
        return "test_" + name[len("val_") :]
    if name in ("loss", "accuracy"):
        return "train_" + name
    return name


# ---------------------------------------------------------------------------
# Environment and provenance.
# ---------------------------------------------------------------------------
def cpu_model():
    """The CPU model name (from /proc/cpuinfo on Linux), else `platform.processor()`."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_types():
    """Device kinds the Keras backend sees, e.g. `["CPU", "GPU"]` (no TF needed under JAX)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return [device.platform.upper() for device in jax.devices()]
    if backend == "tensorflow":
        import tensorflow as tf

        return [device.device_type for device in tf.config.list_physical_devices()]
    return ["CPU"]


@functools.lru_cache(maxsize=1)
def environment_info():
    """Versions, devices and CPU of this machine, as a flat dict.

    Returns:
        `{"python", "tensorflow", "keras", "numpy", "mlflow", "pepita_keras",
        "platform", "cpu", "cpu_count", "devices", "hardware"}`; `hardware`
        is a one-line summary for results tables.
    """
    import numpy

    import pepita_keras

    try:
        import mlflow

        mlflow_version = mlflow.__version__
    except ImportError:
        mlflow_version = None
    devices = device_types()
    accelerators = [d for d in devices if d != "CPU"]
    cpu_count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    hardware = f"{cpu_model()}, {cpu_count} CPU cores"
    if accelerators:
        hardware += ", " + ", ".join(
            f"{devices.count(kind)}×{kind}" for kind in sorted(set(accelerators))
        )
    return {
        "python": platform.python_version(),
        # The backend module is loaded by pepita_keras.ops; the other may be absent.
        "tensorflow": getattr(sys.modules.get("tensorflow"), "__version__", None),
        "jax": getattr(sys.modules.get("jax"), "__version__", None),
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "numpy": numpy.__version__,
        "mlflow": mlflow_version,
        "pepita_keras": pepita_keras.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": cpu_count,
        "devices": ",".join(devices),
        "hardware": hardware,
    }


def git_info(path=None):
    """Commit and dirty flag of the git checkout holding `path`.

    Args:
        path: a folder inside the checkout; defaults to this package's folder.

    Returns:
        `{"commit": sha or None, "dirty": bool or None, "branch": name or None}`
        (all None outside a git checkout or without git).
    """
    folder = pathlib.Path(path or pathlib.Path(__file__).resolve().parent)

    def git(*args):
        result = subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=30
        )
        if result.returncode != 0:
            raise OSError(result.stderr)
        return result.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        # Untracked files do not change what the committed code computes.
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        branch = git("rev-parse", "--abbrev-ref", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None, "branch": None}
    return {"commit": commit, "dirty": dirty, "branch": branch}


def provenance_tags(command=None):
    """Tags for a run: git commit/dirty (MLflow's own tag names too), command, hardware."""
    info = git_info()
    env = environment_info()
    tags = {
        "git.commit": info["commit"] or "unknown",
        "git.dirty": info["dirty"],
        "git.branch": info["branch"] or "unknown",
        "hardware": env["hardware"],
        "tensorflow": env["tensorflow"],
        "keras": env["keras"],
    }
    if info["commit"]:
        tags["mlflow.source.git.commit"] = info["commit"]
    if command:
        tags["command"] = command
    return tags


def command_line():
    """The command that started this process, as a shell-like string."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("pepita", "cli.py")):
        argv[0] = "pepita"
    return " ".join(argv)


# ---------------------------------------------------------------------------
# Plots.
# ---------------------------------------------------------------------------
def plot_learning_curves(histories, path, title=None, paper=None, metric="accuracy"):
    """Plots train/test curves of one or several runs to a PNG.

    Args:
        histories: `{label: {"train_accuracy": [...], "test_accuracy": [...], ...}}`
            (lists indexed by epoch).
        path: output file.
        title: figure title.
        paper: optional `(mean, std)` in percent drawn as a band on the
            test-accuracy panel.
        metric: `"accuracy"` (plotted in %) or `"loss"`.

    Returns:
        The output path.
    """
    # A bare Figure on the Agg canvas: no pyplot, so the process-wide backend
    # (e.g. a notebook's inline backend) is left alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 3.8))
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2)
    scale = 100.0 if metric == "accuracy" else 1.0
    for label, history in histories.items():
        for axis, split in zip(axes, ("train", "test")):
            values = history.get(f"{split}_{metric}") or []
            epochs = range(1, len(values) + 1)
            axis.plot(epochs, [v * scale for v in values], label=str(label))
    for axis, split in zip(axes, ("train", "test")):
        axis.set_xlabel("epoch")
        axis.set_ylabel(f"{split} {metric}" + (" (%)" if metric == "accuracy" else ""))
        axis.grid(alpha=0.3)
    if paper is not None:
        mean, std = paper
        axes[1].axhline(mean, color="black", linestyle="--", linewidth=1, label="paper")
        axes[1].axhspan(mean - std, mean + std, color="black", alpha=0.1)
        low = min(
            [mean - 3] + [min(h.get("test_accuracy") or [1]) * scale for h in histories.values()]
        )
        axes[1].set_ylim(max(low, mean - 10), min(100, mean + 3))
    axes[1].legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path
