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
- metrics go to MLflow after the checkpoint (step = epoch number, 1 … N),
  and a resumed run first logs any epoch of its history that MLflow lacks,
  so every epoch is logged once.

What MLflow shows (see `pepita_keras.store.tracking` for the shared vocabulary):

- parent run `<cell>` (tag `pepita.role=cell`) with the config as params,
  per-epoch `test_accuracy_mean` / `test_accuracy_std` (and train) over the
  completed seeds, `final_test_accuracy_mean` / `_std` / `n_seeds` /
  `n_diverged`, and `cell_curves.png` (every seed, their mean ± std, the
  paper's band);
- nested runs `<cell>/seed<k>` (`pepita.role=seed`) with per-epoch
  `train_*` / `test_*` metrics, `learning_rate`, `epoch_time_s`,
  `load_avg_1min`, alignment angles and update norms, the training and test
  data as dataset inputs (`pepita_keras.store.dataset_inputs`), the final model as an
  MLflow model, and the artifacts `learning_curves.png`, `history.json`,
  `alignment.json`, `environment.json`; optionally MLflow's system metrics
  (`--system-metrics`);
- every run is tagged `pepita.rule`, `pepita.dataset`, `pepita.architecture`;
  accuracies are fractions in MLflow, percent in tables and plots.

What is recorded honestly:

- a seed whose loss, metrics or weights become non-finite stops at that
  epoch, is marked FAILED with the tag `pepita.diverged_epoch`, and is never
  averaged into a cell (`pepita results` shows "diverged (k of n seeds)");
- a run whose training settings differ from the shipped config of its name
  (e.g. `--epochs 1`) runs as `<cell>-custom-<digest>`, a separate parent
  run and run directory that the results table does not count for the cell;
- a lock per cell and per seed in the run directory keeps two processes from
  training the same seed twice: the second says who holds it and waits.

The command line (`pepita reproduce <config> [--seeds 0,1,2] [--data-dir DIR]
[--smoke] [--epochs N] [--set key=value] [--system-metrics]`) is
`pepita_keras.cli`. What is recorded, and when, is `pepita_keras.store.recorder`;
`pepita_keras.store.checkpoints` holds the run folder's files and the per-epoch
`EpochCheckpoint` callback.
"""

import dataclasses
import pathlib

import keras

from pepita_keras import build, console, input_pipeline, plan
from pepita_keras import callbacks as callbacks_lib
from pepita_keras.store import checkpoints, dataset_inputs, provenance, recorder, tracking

DEFAULT_EXPERIMENT = tracking.REPRODUCTIONS_EXPERIMENT
DEFAULT_RUN_ROOT = plan.DEFAULT_RUN_ROOT


@dataclasses.dataclass
class SeedResult:
    """Outcome of one seed.

    Args:
        seed: the seed.
        run_id: its MLflow run id.
        history: per-epoch metrics, `{name: [value per epoch]}`.
        final_test_accuracy: test accuracy after the last epoch (fraction;
            None or NaN for a diverged seed).
        wall_time_s: training wall time summed over all (resumed) sessions.
        resumed_from_epoch: epochs already done when this call started.
        model: the trained Keras model (None if the seed was already done).
        diverged_epoch: the epoch at which training went non-finite, or None.
    """

    seed: int
    run_id: str
    history: dict
    final_test_accuracy: float
    wall_time_s: float
    resumed_from_epoch: int
    model: object = None
    diverged_epoch: int = None


def _seed_result(seed, state, resumed_from, model=None):
    diverged = state.diverged
    accuracy = state.history.get("val_accuracy", [None])[-1]
    return SeedResult(seed, state.run_id, state.history, accuracy,
                      state.wall_time_s, resumed_from, model,
                      diverged["epoch"] if diverged else None)


def run_seed(config, seed, data, client, experiment_id, parent_run_id, cell_dir,
             command=None, verbose=2, inputs=(), synthetic=False, system_metrics=False):
    """Trains one seed with per-epoch checkpoints, resuming if a checkpoint exists.

    The seed's folder is locked while it trains: a second process asked for
    the same cell and seed says who holds it and waits, then finds it done.

    Args:
        config: an `ExperimentConfig`.
        seed: integer seed.
        data: an `EpochData`.
        client: an `mlflow.MlflowClient`.
        experiment_id: MLflow experiment id.
        parent_run_id: the cell's parent run.
        cell_dir: the cell's run directory.
        command: the command line, recorded as a tag.
        verbose: 0 silent, 1 Keras progress bar, 2 one line per epoch plus
            a live progress line within it.
        inputs: `dataset_inputs.DatasetInput`s logged on the seed's run.
        synthetic: the data is synthetic (tagged; a resume must match).
        system_metrics: also record MLflow's system metrics.

    Returns:
        A `SeedResult` (`diverged_epoch` set if the seed diverged).
    """
    folder = cell_dir / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    prefix = f"[{config.run_name} seed {seed}]"
    with checkpoints.RunLock(folder / checkpoints.LOCK_FILE, f"{config.run_name} seed {seed}"):
        return _run_seed_locked(config, seed, data, client, experiment_id, parent_run_id,
                                folder, prefix, command, verbose, inputs, synthetic,
                                system_metrics)


def _run_seed_locked(config, seed, data, client, experiment_id, parent_run_id, folder,
                     prefix, command, verbose, inputs, synthetic, system_metrics):
    state = recorder.open_seed(client, folder, config, synthetic)
    if state is not None:
        if state.finished:
            if state.diverged:
                print(f"{prefix} diverged at epoch {state.diverged['epoch']} in an "
                      "earlier run; skipping (not counted).", flush=True)
            else:
                print(f"{prefix} already finished ({state.epoch} epochs); skipping.",
                      flush=True)
            return _seed_result(seed, state, state.epoch)
    keras.utils.set_random_seed(seed)
    model = build.build_model(config, seed, data.steps_per_epoch)
    model.check_batch_values = not data.values_checked
    if state is None:
        elsewhere = recorder.unfinished_elsewhere(client, parent_run_id, seed, folder)
        if elsewhere is not None:
            other, done = elsewhere
            print(f"{prefix} an unfinished run of this seed is checkpointed after epoch {done} "
                  f"in {other}; this one starts over in {folder}. To resume that one instead, "
                  f"stop now (Ctrl-C) and rerun with --run-root {other.parent.parent}.",
                  flush=True)
        record, state = recorder.SeedRecorder.start(
            client, experiment_id, parent_run_id, config, seed, folder,
            dict(num_train=data.num_train, num_test=data.num_test,
                 steps_per_epoch=data.steps_per_epoch),
            inputs, synthetic, command)
        resumed_from = 0
    else:
        record = recorder.SeedRecorder.resume(client, state, folder, inputs)
        resumed_from = state.epoch
        if state.checkpoint:
            checkpoints.restore_checkpoint(model, folder / state.checkpoint)
        print(f"{prefix} resuming after epoch {resumed_from}/{config.epochs}", flush=True)
    tracking.set_tags(client, record.run_id,
                      {tracking.STEPS_PER_CALL_TAG: int(model.steps_per_execution)})
    callbacks = [
        # Stops within an epoch once a batch loss is non-finite (checked after each
        # call of `steps_per_execution` steps); the epoch-end check of
        # checkpoints.EpochCheckpoint then records the divergence.
        keras.callbacks.TerminateOnNaN(),
        callbacks_lib.AlignmentDiagnostics(probe=data.probe),
        checkpoints.EpochCheckpoint(folder, state),
        callbacks_lib.MLflowMetricsCallback(client, record.run_id,
                                            rename=tracking.test_metric_name),
    ]
    if verbose == 2:
        callbacks.append(callbacks_lib.EpochPrinter(prefix, config.epochs, data.steps_per_epoch))
    try:
        with tracking.SystemMetrics(client, record.run_id, enabled=system_metrics):
            for epoch in range(state.epoch, config.epochs):
                # One fit() per epoch: each epoch gets its own (seed, epoch) order.
                model.fit(data.train(seed, epoch), validation_data=data.test,
                          initial_epoch=epoch, epochs=epoch + 1, shuffle=False,
                          verbose=1 if verbose == 1 else 0, callbacks=callbacks)
                if state.diverged:
                    break
                if console.stop_requested():  # a safe point: this epoch is checkpointed
                    raise KeyboardInterrupt
        # The wrap-up is idempotent: a rerun after a kill here redoes it.
        if state.diverged:
            record.diverged(state)
            print(f"{prefix} DIVERGED at epoch {state.diverged['epoch']}/{config.epochs} "
                  f"(non-finite: {', '.join(state.diverged['non_finite'])}); recorded as "
                  "FAILED, not counted in the results.", flush=True)
        else:
            record.completed(config, seed, model, state, inputs, example=data.probe[0][:2])
    except BaseException:
        # Ctrl-C / errors: mark the run; a rerun reopens it. (SIGKILL skips this.)
        if not state.finished:
            record.killed()
        raise
    return _seed_result(seed, state, resumed_from, model)


def smoke_run(config, data_dir=None, synthetic=False, verify=True, seed=0):
    """Trains `config` in memory, without checkpoints or MLflow (for quick checks).

    Uses the same data pipeline, model and optimizer as `reproduce`.

    Returns:
        The Keras history dict, `{metric: [value per epoch]}`.
    """
    arrays = input_pipeline.load_config_arrays(config, data_dir, synthetic=synthetic, verify=verify)
    data = input_pipeline.EpochData(arrays, config.batch_size, config.eval_batch_size)
    keras.utils.set_random_seed(seed)
    model = build.build_model(config, seed, data.steps_per_epoch)
    history = {}
    for epoch in range(config.epochs):
        logs = model.fit(data.train(seed, epoch), validation_data=data.test,
                         initial_epoch=epoch, epochs=epoch + 1, shuffle=False, verbose=0,
                         callbacks=[keras.callbacks.TerminateOnNaN()])
        for key, values in logs.history.items():
            history.setdefault(key, []).extend(values)
    return history


def reproduce(config, seeds=(0,), data_dir=None, run_root=DEFAULT_RUN_ROOT,
              tracking_uri=None, experiment=DEFAULT_EXPERIMENT, synthetic=False,
              verify=True, command=None, verbose=2, system_metrics=False):
    """Runs (or resumes) one reproduction for several seeds.

    A seed whose loss, metrics or weights become non-finite stops at that
    epoch and is recorded as diverged (MLflow status FAILED, tag
    `pepita.diverged_epoch`); it is never averaged into the cell.

    Args:
        config: an `ExperimentConfig` (e.g. from `experiment_config.load_config`).
        seeds: integer seeds, one nested MLflow run each.
        data_dir: dataset folder (see `pepita_keras.datasets`).
        run_root: folder of the run directories (checkpoints, state, locks).
        tracking_uri: MLflow store; default `MLFLOW_TRACKING_URI` or MLflow's default.
        experiment: MLflow experiment name.
        synthetic: train on `synthetic_arrays` instead of the dataset.
        verify: check dataset checksums.
        command: the command line recorded with the runs.
        verbose: 0, 1 (Keras progress bar) or 2 (one line per epoch and a
            live progress line within it).
        system_metrics: also record MLflow's system metrics (CPU, memory,
            GPU, …) on each seed's run.

    Returns:
        `(parent_run_id, [SeedResult per seed])`.

    Example:

    ```python
    config = experiment_config.load_config("fc_mnist_pepita").smoke_version()
    parent, results = reproduce(config, seeds=[0, 1], data_dir="/data")
    ```
    """
    # Everything that can be refused is refused before a run, folder or file exists.
    if system_metrics:
        tracking.check_system_metrics()
    build.check_rule_arguments(config)
    for seed in seeds:
        if not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise ValueError(f"seeds must be integers in [0, 2**32). Received: {seed!r}.")
    arrays = input_pipeline.load_config_arrays(config, data_dir, synthetic=synthetic, verify=verify)
    inputs = dataset_inputs.of_arrays(config, arrays, data_dir, synthetic)
    if not synthetic:
        config = _with_data_actually_used(config, arrays, inputs)
    data = input_pipeline.EpochData(arrays, config.batch_size, config.eval_batch_size)
    data.check_values(config.num_classes)  # once here, instead of inside every step
    uri = tracking.tracking_uri(tracking_uri)
    client = tracking.client(uri)
    experiment_id = tracking.experiment_id(client, experiment)
    cell_dir = pathlib.Path(run_root) / config.run_name
    cell_dir.mkdir(parents=True, exist_ok=True)
    command = command or provenance.command_line()
    if verbose:
        _banner(config, seeds, arrays, inputs, uri, cell_dir, synthetic, data_dir)
    # One parent run per cell, even when two processes start it at once.
    with checkpoints.RunLock(cell_dir / checkpoints.LOCK_FILE, f"{config.run_name} (parent run)"):
        parent_run_id = recorder.open_cell(client, experiment_id, config, cell_dir, uri,
                                           command, synthetic)
    results, status = [], "FINISHED"
    try:
        for seed in seeds:
            results.append(run_seed(config, seed, data, client, experiment_id,
                                    parent_run_id, cell_dir, command, verbose, inputs,
                                    synthetic, system_metrics))
    except KeyboardInterrupt:
        status = "KILLED"  # Ctrl-C or `kill`: every completed epoch is checkpointed
        raise
    except BaseException:
        status = "FAILED"
        raise
    finally:
        recorder.finish_cell(client, parent_run_id, config, seeds,
                             [result.seed for result in results], status)
    return parent_run_id, results


def _with_data_actually_used(config, arrays, inputs):
    """`config` with the split sizes and file digest of the data found, where they differ.

    Fewer examples than the full dataset, or files that are not the official
    ones (`--no-verify`, or a `SHA256SUMS` of the user's own), make a custom
    run (`<cell>-custom-…`), never one that counts as the paper cell.
    """
    changed = input_pipeline.with_data_sizes(config, arrays)
    why = []
    if changed is not config:
        why.append(f"has {len(arrays[0][0])} training and {len(arrays[1][0])} test examples, "
                   "not the full dataset's")
    digest = dataset_inputs.unofficial_data_digest(config.dataset, inputs)
    if digest is not None:
        changed = changed.replace(data_digest=digest)
        why.append(f"is not the official {config.dataset} files (their SHA-256 differ from "
                   "the published checksums)")
    if why:
        print(f"[{config.name}] the data found {' and '.join(why)}: recorded as "
              f"{changed.run_name}, not as the paper cell.", flush=True)
    return changed


def _banner(config, seeds, arrays, inputs, uri, cell_dir, synthetic, data_dir):
    """What this call will do, before the first epoch: config, data, store, folder, platform."""
    from pepita_keras import console

    (x, _), (x_test, _) = arrays
    described = dataset_inputs.describe(inputs)
    digest = ", ".join(f"{context} {item['digest']}" for context, item in described.items())
    source = "synthetic (no files)" if synthetic else str(data_dir or "$PEPITA_DATA_DIR / TFDS")
    console.banner(f"pepita reproduce {config.name} — {config.label}", [
        ("run", f"{config.run_name}, seeds {','.join(map(str, seeds))}, "
                f"{config.epochs} epoch{'s' if config.epochs != 1 else ''}"),
        ("data", f"{source}: {len(x)} train / {len(x_test)} test examples (digests {digest})"),
        ("store", uri),
        ("run folder", str(cell_dir.resolve())),
        ("platform", provenance.platform_name()),
    ])
