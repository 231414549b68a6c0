"""Keras callbacks for the learning rules: alignment diagnostics, epoch progress, MLflow.

`AlignmentDiagnostics` adds, at the end of every epoch, to the epoch's `logs`
(so `History`, `keras.callbacks.CSVLogger`, TensorBoard and MLflow's Keras
callback see them when listed after it):

- `alignment_angle_<name>`: the angle in degrees between a feedback tensor
  and the forward tensor it stands in for, for every pair the rule exposes.
  For PEPITA this is the paper's "soft anti-alignment" diagnostic, the angle
  between F and the product of the forward kernels, `W_1⋯W_L` in Keras's
  (in, out) layout (`(W_L⋯W_1)^T` in the paper's (out, in) notation), which
  Dellaferrera & Kreiman (ICML 2022, Fig. 4) report growing from ~90° to
  ~127° over 50 MNIST epochs.
- `update_norm_<layer name>`: the Frobenius norm of the layer's update
  (kernel and bias together) from `model.compute_updates` on a fixed probe
  batch, if one is given.

The protocol. Every rule has

    def feedback_alignment_pairs(self) -> list[pepita_keras.feedback.AlignmentPair]

each pair `(name, feedback, forward)` holding two tensors of the same shape
whose angle is meaningful (0° when the feedback equals the forward quantity).
Rules returning `[]` (Backprop, which has no feedback matrices; PEPITA on a
convolutional network, where no single matrix maps the input to the output)
get update norms only. Pairs come from: `PEPITA`/`MEMPEPITA` (`F` vs
`W_1⋯W_L`), `FeedbackAlignment` (`B_l` vs `W_l`), `DirectFeedbackAlignment`
and `DRTP` (`D_l` vs `(W_{l+1}⋯W_L)^T` on dense chains).

`EpochPrinter` prints one line per epoch (time and metrics, Keras's `val_*`
named `test_*`) and a live progress line within a long epoch; `pepita
reproduce` uses it.

`MLflowMetricsCallback` logs every epoch's metrics to an MLflow run by id
(`pepita reproduce` does; any `fit` can).
"""

import sys
import time

import keras
import numpy as np
from keras import ops

from pepita_keras.store import tracking
from pepita_keras.feedback import angle_degrees


def alignment_angles(model):
    """`{"alignment_angle_<name>": degrees}` for the rule's alignment pairs.

    Args:
        model: a `LearningRuleModel`.

    Returns:
        A dict of Python floats (`{}` for a rule without pairs).
    """
    angles = {}
    for pair in model.feedback_alignment_pairs():
        if tuple(pair.feedback.shape) != tuple(pair.forward.shape):
            raise ValueError(
                f"Alignment pair {pair.name!r} of {type(model).__name__} has "
                f"feedback of shape {tuple(pair.feedback.shape)} but forward "
                f"of shape {tuple(pair.forward.shape)}; they must match."
            )
        angles[f"alignment_angle_{pair.name}"] = float(
            angle_degrees(pair.feedback, pair.forward)
        )
    return angles


def update_norms(model, x, y):
    """`{"update_norm_<layer>": ‖G‖}` from `model.compute_updates(x, y)`.

    The norm is over the layer's kernel and bias updates together; frozen
    layers (no update) are left out.
    """
    updates = iter(model.compute_updates(x, y))
    norms = {}
    for block in model.blocks:
        if not block.layer.trainable:
            continue
        squares = sum(
            float(ops.sum(ops.square(ops.cast(next(updates), "float64"))))
            for _ in block.variables
        )
        norms[f"update_norm_{block.layer.name}"] = float(np.sqrt(squares))
    return norms


class AlignmentDiagnostics(keras.callbacks.Callback):
    """Logs alignment angles and per-layer update norms once per epoch.

    Args:
        probe: optional `(x, y)` batch, kept fixed, on which the update norms
            are measured (`compute_updates`, no dropout). Without it only
            the angles are logged.

    Example:

    ```python
    diagnostics = pepita_keras.callbacks.AlignmentDiagnostics(
        probe=(x_train[:256], y_train[:256]))
    history = model.fit(x_train, y_train, epochs=50, callbacks=[diagnostics])
    history.history["alignment_angle_F"]  # one angle (degrees) per epoch
    diagnostics.measure()  # the same quantities, now (e.g. before training)
    ```
    """

    def __init__(self, probe=None):
        super().__init__()
        if probe is not None and (not isinstance(probe, (tuple, list)) or len(probe) != 2):
            raise ValueError(
                "probe must be an (x, y) pair of arrays. Received: "
                f"probe of type {type(probe).__name__}."
            )
        self.probe = probe

    def measure(self, model=None):
        """Returns the diagnostics of `model` (default: the fitted model)."""
        model = model if model is not None else self.model
        results = alignment_angles(model)
        if self.probe is not None:
            results.update(update_norms(model, *self.probe))
        return results

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self.measure())


class EpochPrinter(keras.callbacks.Callback):
    """One line per epoch with its time and metrics, and a live line within it.

    On a terminal the current epoch's progress (batches done, elapsed time,
    estimated time left, running loss and accuracy) is redrawn in place about
    twice a second; into a file or pipe a progress line is written every
    `file_interval` seconds instead, so a log shows a long epoch is alive
    without filling up with redraws.

    Args:
        prefix: text before each line (cell and seed).
        epochs: total epochs of the run.
        steps: batches per epoch.
        stream: output (default `sys.stdout`).
        file_interval: seconds between progress lines when not on a terminal.
    """

    def __init__(self, prefix, epochs, steps=None, stream=None, file_interval=60.0):
        super().__init__()
        self.prefix, self.epochs, self.steps = prefix, epochs, steps
        self.stream = stream or sys.stdout
        self.file_interval = file_interval
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty and isatty())
        self._width = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = self.last = time.perf_counter()
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if now - self.last < (0.5 if self.live else self.file_interval):
            return
        self.last = now
        elapsed = now - self.started
        # With k steps per call Keras reports the call's last step index, which
        # for the epoch's final, partial call lies past the epoch's end.
        done = min(batch + 1, self.steps) if self.steps else batch + 1
        parts = [f"{done}/{self.steps or '?'} batches", f"{elapsed:.0f}s"]
        if self.steps:
            parts.append(f"ETA {elapsed / done * (self.steps - done):.0f}s")
        for key in ("loss", "accuracy"):
            if logs and key in logs:
                parts.append(f"{key} {float(logs[key]):.4f}")
        line = f"{self.prefix} epoch {self.epoch + 1}/{self.epochs} - " + " - ".join(parts)
        if self.live:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        parts = [f"{time.perf_counter() - self.started:.1f}s"]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in logs:
                name = tracking.test_metric_name(key)
                parts.append(f"{name} {float(logs[key]):.4f}")
        line = f"{self.prefix} epoch {epoch + 1}/{self.epochs} - " + " - ".join(parts)
        if self.live and self._width:
            line = "\r" + line.ljust(self._width)
            self._width = 0
        print(line, file=self.stream, flush=True)


class MLflowMetricsCallback(keras.callbacks.Callback):
    """Logs every numeric epoch log to an MLflow run, step = epoch number (1 … N).

    Keras's `epoch` argument counts from 0; the step is `epoch + 1`, the
    x-axis of the learning-curve plots.

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
        tracking.log_metrics(self.mlflow_client, self.run_id, metrics, step=epoch + 1)
