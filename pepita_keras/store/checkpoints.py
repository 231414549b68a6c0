"""Kill-safe run state: per-epoch checkpoints and run locks.

`EpochCheckpoint` is the Keras callback that, after every epoch, records the
logs, stops a diverging run and writes the checkpoint and `state.json`.

A reproduction seed's folder holds `state.json` (the commit point: last
completed epoch, history, MLflow run id) and one `checkpoint-eNNNN.npz`
(every model and optimizer variable). Files are written to a temporary name
and renamed into place, so a `kill -9` at any moment leaves the previous
consistent pair.

`RunLock` is an advisory file lock (`fcntl.flock`) that keeps two processes
from training the same cell and seed at once: the second one says in one line
who holds the lock and waits for it. The kernel releases the lock when its
holder dies, so a killed run never leaves a stale lock behind.

Example:

```python
with checkpoints.RunLock(folder / ".lock", "fc_mnist_pepita seed 0"):
    state = checkpoints.SeedState.load(folder)   # None for a new seed
    ...
    name = checkpoints.save_checkpoint(checkpoints.variable_arrays(model), folder, epoch)
```
"""

import fcntl
import io
import math
import os
import pathlib
import socket
import sys
import time
import zipfile

import keras
import numpy as np

from pepita_keras.store import safe_files
from pepita_keras.store.seed_state import STATE_FILE, SeedState  # noqa: F401 (re-exported)

# A seed folder's lock of the process training it (beside its `STATE_FILE`).
LOCK_FILE = ".lock"


def variable_arrays(model):
    """`{"model/0000": array, ..., "optimizer/0000": array, ...}` of a compiled model."""
    arrays = {f"model/{i:04d}": v.numpy() for i, v in enumerate(model.variables)}
    arrays.update(
        {f"optimizer/{i:04d}": v.numpy() for i, v in enumerate(model.optimizer.variables)}
    )
    return arrays


def non_finite_variables(arrays):
    """Keys of the float arrays in `arrays` that hold a NaN or an infinity."""
    return [
        key for key, array in arrays.items()
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all()
    ]


def save_checkpoint(arrays, folder, epoch):
    """Saves `variable_arrays(model)` to `folder/checkpoint-e{epoch:04d}.npz`.

    Returns:
        The file name (relative to `folder`).
    """
    name = f"checkpoint-e{epoch:04d}.npz"
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    safe_files.write_atomic(pathlib.Path(folder) / name, buffer.getvalue())
    return name


def restore_checkpoint(model, path):
    """Restores what `save_checkpoint` saved into a freshly built model.

    Raises:
        ValueError: naming the file, if it is truncated, damaged or was
            written by another model.
    """
    try:
        with np.load(path) as data:
            saved = {key: data[key] for key in data.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"checkpoint {path} cannot be read ({type(error).__name__}: {error}): it is "
            "truncated or damaged (checkpoints are written atomically, so by something "
            f"else). Restore it, or delete the folder {pathlib.Path(path).parent} to "
            "train that seed again from its first epoch.") from None
    for prefix, variables in (
        ("model", model.variables),
        ("optimizer", model.optimizer.variables),
    ):
        keys = sorted(k for k in saved if k.startswith(prefix + "/"))
        if len(keys) != len(variables):
            raise ValueError(
                f"Checkpoint {path} holds {len(keys)} {prefix} variables but "
                f"the model has {len(variables)}; it was written by a "
                "different model. Delete the run directory to start over."
            )
        for key, variable in zip(keys, variables):
            variable.assign(saved[key])


class RunLock:
    """An exclusive advisory lock on `path`, held for a `with` block.

    If another process holds it, prints one line naming the holder (pid,
    host, start time, command) and waits until it is released.

    Args:
        path: the lock file (created if missing; its folder must exist).
        what: what the lock protects, for the waiting message.
        stream: where the waiting message goes (default `sys.stderr`).
    """

    def __init__(self, path, what, stream=None):
        self.path = path
        self.what = what
        self.stream = stream
        self._file = None

    def __enter__(self):
        self._file = safe_files.open_lock(self.path)
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            print(f"{self.what} is being run by {holder}; waiting for it to finish "
                  f"(lock {self.path}).", file=self.stream or sys.stderr, flush=True)
            fcntl.flock(self._file, fcntl.LOCK_EX)
        self._file.seek(0)
        self._file.truncate()
        self._file.write(
            f"pid {os.getpid()} on {socket.gethostname()} since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')} ({' '.join(sys.argv)})"
        )
        self._file.flush()
        return self

    def __exit__(self, *exc_info):
        self._file.seek(0)
        self._file.truncate()
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._file = None
        return False


def lock_holder(path):
    """Who holds the `RunLock` at `path` (its text), or None if nobody does.

    Args:
        path: a lock file; a missing one is not held.

    Returns:
        The holder's line (pid, host, start time, command), or None.
    """
    path = pathlib.Path(path)
    if not path.exists():
        return None
    with safe_files.open_lock(path) as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            return file.read().strip() or "another process"
        fcntl.flock(file, fcntl.LOCK_UN)
    return None


def _non_finite_logs(logs):
    return sorted(key for key, value in logs.items() if not math.isfinite(float(value)))


class EpochCheckpoint(keras.callbacks.Callback):
    """After each epoch: record the logs, stop on divergence, checkpoint, write state.

    A run diverges at the first epoch whose logged loss or metrics, or any
    model or optimizer variable, are not finite: training stops there, the
    epoch is recorded (non-finite values as null) with `state.diverged`
    naming the epoch and what went non-finite, and no checkpoint of the
    broken weights is written.

    Args:
        folder: the seed's run directory.
        state: the seed's `SeedState` (updated in place, saved after each epoch).
    """

    def __init__(self, folder, state):
        super().__init__()
        self.folder = folder
        self.state = state

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        # The rate this epoch's steps use (a schedule reads optimizer.iterations).
        self.learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        # Added in place, so the MLflow callback after this one logs them too.
        logs["epoch_time_s"] = seconds
        logs["learning_rate"] = self.learning_rate
        # The machine's load beside the wall time: a shared box trains slower.
        logs["load_avg_1min"] = os.getloadavg()[0]
        for key, value in logs.items():
            self.state.history.setdefault(key, []).append(float(value))
        self.state.epoch = epoch + 1
        self.state.wall_time_s += seconds
        arrays = variable_arrays(self.model)
        broken = _non_finite_logs(logs) + non_finite_variables(arrays)[:3]
        old = self.state.checkpoint
        if broken:
            self.state.diverged = {"epoch": epoch + 1, "non_finite": broken}
            self.model.stop_training = True
        else:
            self.state.checkpoint = save_checkpoint(arrays, self.folder, epoch + 1)
        # state.json is the commit point: it names the checkpoint just written.
        self.state.save(self.folder)
        if old and old != self.state.checkpoint:
            (self.folder / old).unlink(missing_ok=True)
