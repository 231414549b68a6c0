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
  data as dataset inputs (`pepita_keras.store.lineage`), the final model as an
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
`pepita_keras.cli`; `pepita_keras.store.checkpoints` holds the run folder's files
and the per-epoch `EpochCheckpoint` callback.
"""

import dataclasses
import json
import pathlib
import tempfile

import keras
import numpy as np

from pepita_keras import build, console
from pepita_keras import callbacks as callbacks_lib
from pepita_keras import epoch_data, plan, slowness
from pepita_keras.store import checkpoints, json_files, lineage, plots, provenance, tracking
from pepita_keras import experiment as experiment_lib

DEFAULT_EXPERIMENT = tracking.REPRODUCTIONS_EXPERIMENT
DEFAULT_RUN_ROOT = plan.DEFAULT_RUN_ROOT
# Per-epoch metrics of a parent run: mean and std over its completed seeds.
PARENT_CURVES = ("train_accuracy", "test_accuracy", "train_loss", "test_loss")
PARENT_FILE = "parent.json"


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


# ---------------------------------------------------------------------------
# Resuming: a run folder must belong to the same config and data.
# ---------------------------------------------------------------------------
def _recorded_settings(settings, legacy_config=None):
    if settings is not None:
        return settings
    # Written before `settings` existed: a JSON fingerprint of config.flatten().
    return experiment_lib.training_settings(json.loads(legacy_config))


def _check_same_config(settings, legacy_config, config, where):
    differences = experiment_lib.settings_differences(
        # Compared as JSON: the recorded settings went through it (tuples → lists).
        _recorded_settings(settings, legacy_config), config,
        lambda value: json.loads(json_files.dumps(value)))
    if differences:
        changed = "; ".join(f"{key}: {old} → {new}"
                            for key, (old, new) in sorted(differences.items()))
        raise ValueError(
            f"{where} was started with a different config than {config.name!r} "
            f"with the current options ({changed}). "
            "Rerun with the original options, or pass another --run-root. If the "
            "config itself changed since (e.g. a newer shipped config), `pepita "
            "migrate-store` renames that run and its folder after today's configs, or "
            f"move the folder aside yourself: `mv {where} {where}-old`; its MLflow runs "
            "stay in the store, and `pepita results` lists them under \"Runs with "
            "other settings\"."
        )


# ---------------------------------------------------------------------------
# Running.
# ---------------------------------------------------------------------------
def _history_metrics(history, epoch):
    return {
        tracking.test_metric_name(key): values[epoch]
        for key, values in history.items()
        if epoch < len(values)
    }


def _sync_logged_epochs(client, run_id, history):
    """Logs epochs of `history` that MLflow lacks (killed between checkpoint and log).

    Epoch `e` (0-based in `history`) is logged at step `e + 1`.
    """
    epochs = len(history.get("val_accuracy", []))
    logged = tracking.logged_steps(client, run_id, "test_accuracy")
    for epoch in range(epochs):
        if epoch + 1 not in logged:
            tracking.log_metrics(client, run_id, _history_metrics(history, epoch),
                                 step=epoch + 1)


def _check_same_data(was_synthetic, synthetic, where):
    if bool(was_synthetic) != bool(synthetic):
        was = "synthetic data" if was_synthetic else "the real dataset"
        raise ValueError(
            f"{where} was started on {was}; rerun with"
            f"{'' if was_synthetic else 'out'} --synthetic, or pass another "
            "--run-root / delete that directory to start over.")


def _parent_run(client, experiment_id, config, cell_dir, uri, command, synthetic=False):
    path = cell_dir / PARENT_FILE
    state = json_files.read_json(path)
    if state is not None:
        _check_same_config(state.get("settings"), state.get("config"), config, str(cell_dir))
        _check_same_data(state.get("synthetic", False), synthetic, str(cell_dir))
        if state["tracking_uri"] != uri or not tracking.run_exists(client, state["run_id"]):
            raise ValueError(
                f"{cell_dir} belongs to MLflow run {state['run_id']} in "
                f"{state['tracking_uri']}, which is not in the current store {uri}. "
                "Set MLFLOW_TRACKING_URI to the original store, or use another "
                "--run-root / delete that directory to start over."
            )
        _upgrade_if_old(client, state["run_id"])
        tracking.reopen_run(client, state["run_id"])
        return state["run_id"]
    existing = _existing_parent(client, experiment_id, config, synthetic)
    if existing is not None:
        # A new run folder (another --run-root, another machine) adds its seeds
        # to the cell's parent instead of splitting the cell in two.
        _upgrade_if_old(client, existing)
        tracking.reopen_run(client, existing)
        _write_parent_file(path, existing, uri, config, synthetic)
        return existing
    tags = {
        tracking.ROLE_TAG: "cell",
        **tracking.config_tags(config),
        "pepita.cell": config.name,
        "pepita.smoke": config.is_smoke,
        "pepita.synthetic": bool(synthetic),
        "pepita.settings": "shipped" if config.matches_shipped() else "custom",
        "pepita.settings_digest": config.settings_digest(),
        "pepita.label": config.label,
        "run_dir": str(cell_dir.resolve()),
        **provenance.provenance_tags(command),
    }
    if config.paper:
        # Fractions, as every accuracy in MLflow (the paper quotes percent).
        tags.update({"paper.mean": config.paper[0] / 100, "paper.std": config.paper[1] / 100,
                     "paper.source": config.paper_source})
    run_id = tracking.create_run(client, experiment_id, config.run_name, tags=tags)
    tracking.log_params(client, run_id, config.flatten())
    _write_parent_file(path, run_id, uri, config, synthetic)
    return run_id


def _write_parent_file(path, run_id, uri, config, synthetic):
    json_files.write_json(path, {"run_id": run_id, "tracking_uri": uri,
                                 "settings": config.training_settings(),
                                 "synthetic": bool(synthetic)})


def _existing_parent(client, experiment_id, config, synthetic):
    """The earliest parent run of this cell in the store with the same settings, or None.

    Same settings: run name, settings digest, smoke and synthetic flags and
    platform (`migrate.tidy_cells` joins parents by the same key).
    """
    digest = config.settings_digest()
    runs = client.search_runs(
        [experiment_id],
        filter_string=(f"tags.`{tracking.ROLE_TAG}` = 'cell' and "
                       f"tags.`pepita.settings_digest` = '{digest}'"),
        max_results=1000)
    platform = provenance.platform_name()
    same = [run for run in runs
            if run.info.run_name == config.run_name
            and tracking.tag_is_true(run.data.tags.get("pepita.smoke")) == config.is_smoke
            and tracking.tag_is_true(run.data.tags.get("pepita.synthetic")) == bool(synthetic)
            and run.data.tags.get(tracking.PLATFORM_TAG, tracking.DEFAULT_PLATFORM) == platform]
    if not same:
        return None
    return min(same, key=lambda run: run.info.start_time or 0).info.run_id


def _upgrade_if_old(client, run_id):
    """Refuses to resume a run written before `tracking.SCHEMA_VERSION` (one line, no upgrade here).

    Upgrading is `pepita migrate-store`'s job; resuming never runs migration
    code on its own.
    """
    tags = client.get_run(run_id).data.tags
    if tracking.run_schema(tags) < tracking.SCHEMA_VERSION:
        raise ValueError(
            f"run {run_id} in {tracking.client_uri(client)} was written by an older "
            f"pepita_keras (store schema {tracking.run_schema(tags)} < "
            f"{tracking.SCHEMA_VERSION}); upgrade the store first: pepita migrate-store "
            f"--tracking-uri {tracking.client_uri(client)}")


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
        inputs: `lineage.DatasetInput`s logged on the seed's run.
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
    state = checkpoints.SeedState.load(folder)
    if state is not None:
        _check_same_config(state.settings, state.config, config, str(folder))
        _check_same_data(state.synthetic, synthetic, str(folder))
        if not tracking.run_exists(client, state.run_id):
            raise ValueError(
                f"{folder} refers to MLflow run {state.run_id}, missing from the "
                "current store; delete that directory to start over."
            )
        if state.finished:
            if state.diverged:
                print(f"{prefix} diverged at epoch {state.diverged['epoch']} in an "
                      "earlier run; skipping (not counted).", flush=True)
            else:
                print(f"{prefix} already finished ({state.epoch} epochs); skipping.",
                      flush=True)
            return _seed_result(seed, state, state.epoch)
    keras.utils.set_random_seed(seed)
    model = experiment_lib.build_model(config, seed, data.steps_per_epoch)
    model.check_batch_values = not data.values_checked
    if state is None:
        tags = {
            tracking.ROLE_TAG: "seed",
            **tracking.config_tags(config),
            "pepita.cell": config.name,
            "pepita.seed": seed,
            "pepita.smoke": config.is_smoke,
            "pepita.synthetic": bool(synthetic),
            "run_dir": str(folder.resolve()),
            **provenance.provenance_tags(command),
        }
        run_id = tracking.create_run(client, experiment_id, seed_run_name(config, seed),
                                     parent_run_id=parent_run_id, tags=tags)
        params = dict(config.flatten(), seed=seed, num_train=data.num_train,
                      num_test=data.num_test, steps_per_epoch=data.steps_per_epoch)
        tracking.log_params(client, run_id, params)
        if inputs:
            lineage.log_dataset_inputs(client, run_id, inputs)
        state = checkpoints.SeedState(run_id, seed=seed, settings=config.training_settings(),
                                      synthetic=bool(synthetic))
        state.save(folder)
        resumed_from = 0
    else:
        run_id = state.run_id
        _upgrade_if_old(client, run_id)
        tracking.reopen_run(client, run_id)
        if inputs and not client.get_run(run_id).inputs.dataset_inputs:
            lineage.log_dataset_inputs(client, run_id, inputs)  # started before inputs existed
        resumed_from = state.epoch
        if state.checkpoint:
            checkpoints.restore_checkpoint(model, folder / state.checkpoint)
        _sync_logged_epochs(client, run_id, state.history)
        tracking.set_tags(client, run_id, {f"resumed.epoch{resumed_from}":
                                           provenance.git_info()["commit"] or "unknown"})
        print(f"{prefix} resuming after epoch {resumed_from}/{config.epochs}", flush=True)
    callbacks = [
        # Stops within an epoch at the first non-finite batch loss; the
        # epoch-end check of checkpoints.EpochCheckpoint then records the divergence.
        keras.callbacks.TerminateOnNaN(),
        callbacks_lib.AlignmentDiagnostics(probe=data.probe),
        checkpoints.EpochCheckpoint(folder, state),
        callbacks_lib.MLflowMetricsCallback(client, run_id, rename=tracking.test_metric_name),
    ]
    if verbose == 2:
        callbacks.append(callbacks_lib.EpochPrinter(prefix, config.epochs, data.steps_per_epoch))
    try:
        with tracking.SystemMetrics(client, run_id, enabled=system_metrics):
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
            _record_divergence(config, seed, folder, state, client, run_id, prefix)
        else:
            _finalize_seed(config, seed, model, folder, state, client, run_id, inputs,
                           example=data.probe[0][:2])
    except BaseException:
        # Ctrl-C / errors: mark the run; a rerun reopens it. (SIGKILL skips this.)
        if not state.finished:
            tracking.finish_run(client, run_id, status="KILLED")
        raise
    return _seed_result(seed, state, resumed_from, model)


def seed_run_name(config, seed):
    """The MLflow run name of a seed: `<cell run name>/seed<k>`, e.g. `fc_mnist_pepita/seed0`."""
    return f"{config.run_name}/seed{seed}"


def _record_divergence(config, seed, folder, state, client, run_id, prefix):
    """Marks a diverged seed: FAILED in MLflow, tagged, never counted; idempotent."""
    diverged = state.diverged
    what = ", ".join(diverged["non_finite"])
    tracking.set_tags(client, run_id, {
        "pepita.diverged": True,
        "pepita.diverged_epoch": diverged["epoch"],
        "pepita.non_finite": what,
    })
    tracking.log_metrics(client, run_id, {"epochs_completed": state.epoch,
                                          "wall_time_s": state.wall_time_s},
                         step=state.epoch)
    tracking.log_json_artifact(client, run_id, _tracked_history(state.history),
                               "history.json")
    tracking.finish_run(client, run_id, status="FAILED")
    state.finished = True
    state.save(folder)
    print(f"{prefix} DIVERGED at epoch {diverged['epoch']}/{config.epochs} "
          f"(non-finite: {what}); recorded as FAILED, not counted in the results.",
          flush=True)


def _tracked_history(history):
    """The state's Keras-named history under the tracked names (`test_accuracy`, …)."""
    return {tracking.test_metric_name(k): v for k, v in history.items()}


def seed_artifacts(folder, curves, label, title, paper, environment):
    """Writes a seed run's artifacts into `folder`; returns their paths.

    Shared by `reproduce` and `pepita migrate-store` (which rebuilds them
    for runs recorded before artifacts were attached).

    Args:
        folder: where to write.
        curves: `{tracked metric name: [value per epoch]}`.
        label: the curve's legend entry (e.g. `seed 0`).
        title: plot title.
        paper: `(mean, std)` in percent, or None.
        environment: the `environment.json` content.
    """
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [plots.plot_learning_curves({label: curves}, folder / "learning_curves.png",
                                        title=title, paper=paper)]
    alignment = {k: v for k, v in curves.items()
                 if any(word in k for word in ("angle", "align", "norm"))}
    for name, content in (("history.json", curves), ("alignment.json", alignment),
                          ("environment.json", environment)):
        (folder / name).write_text(json_files.dumps(content))
        paths.append(folder / name)
    return paths


def _finalize_seed(config, seed, model, folder, state, client, run_id, inputs=(),
                   example=None):
    """Final metrics and artifacts of a seed; idempotent, so safe to redo after a kill."""
    history = state.history
    curves = _tracked_history(history)
    tracking.log_metrics(client, run_id, {
        "final_test_accuracy": history["val_accuracy"][-1],
        "final_train_accuracy": history["accuracy"][-1],
        "wall_time_s": state.wall_time_s,
        "epochs_completed": state.epoch,
    }, step=state.epoch)
    # Exactly one complete model per seed, whenever a kill came during the wrap-up.
    tracking.log_keras_model_once(client, run_id, model, input_example=example)
    tracking.set_tags(client, run_id, {"pepita.model_logged": True})
    environment = {"environment": provenance.environment_info(), "git": provenance.git_info(),
                   "config": config.to_dict(), "data": lineage.describe(inputs)}
    artifacts = folder / "artifacts"
    for path in seed_artifacts(artifacts, curves, f"seed {seed}",
                               f"{config.label} (seed {seed})", config.paper, environment):
        tracking.log_artifact(client, run_id, path)
    tracking.set_tags(client, run_id, {"pepita.complete": True})
    tracking.finish_run(client, run_id)
    state.finished = True
    state.save(folder)


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
                         initial_epoch=epoch, epochs=epoch + 1, shuffle=False, verbose=0,
                         callbacks=[keras.callbacks.TerminateOnNaN()])
        for key, values in logs.history.items():
            history.setdefault(key, []).extend(values)
    return history


def summarize_parent(client, parent_run_id, config, folder=None, force=False):
    """Summarises the completed seeds on the parent run; logs only what changed.

    Logs, over the seeds that completed (diverged ones are never averaged in;
    their count is `n_diverged`): per-epoch `<metric>_mean` / `<metric>_std`
    for `PARENT_CURVES` (steps 1 … N), the final `final_test_accuracy_mean` /
    `final_test_accuracy_std` (fractions, like the seeds' accuracies),
    `n_seeds`, and the artifact `cell_curves.png`. The seeds it summarised are
    recorded in the tag `pepita.summarized_seeds`, so a rerun that changes
    nothing logs nothing.

    Args:
        client: an `mlflow.MlflowClient`.
        parent_run_id: the cell's parent run.
        config: its `ExperimentConfig`.
        folder: where to write the plot before logging it (default: a
            temporary folder).
        force: summarise again even if these seeds were summarised before
            (`pepita migrate-store` rewrites curves logged by older versions).

    Returns:
        The summary metrics dict.
    """
    finals, curves, diverged = {}, {}, []
    for run in child_runs(client, parent_run_id):
        tags = run.data.tags
        seed = tags.get("pepita.seed")
        if tracking.tag_is_true(tags.get("pepita.diverged")):
            diverged.append(seed)
        elif tracking.tag_is_true(tags.get("pepita.complete")):
            finals[seed] = run.data.metrics["final_test_accuracy"]
            curves[seed] = tracking.metric_histories(client, run.info.run_id, PARENT_CURVES)
    summary = {"n_seeds": len(finals), "n_diverged": len(diverged)}
    if finals:
        values = np.array(list(finals.values()))
        summary["final_test_accuracy_mean"] = float(values.mean())
        if len(values) > 1:
            summary["final_test_accuracy_std"] = float(values.std(ddof=1))
        fits = [slowness.seed_slowness(config, c["test_accuracy"]) for c in curves.values()
                if c.get("test_accuracy")]
        if fits:
            summary["slowness_mean"] = float(np.mean([s for _, s in fits]))
            summary["acc_max_mean"] = float(np.mean([a for a, _ in fits]))
            if len(fits) > 1:
                summary["slowness_std"] = float(np.std([s for _, s in fits], ddof=1))
    parent = client.get_run(parent_run_id)
    key = ",".join(sorted(finals, key=int)) + "|" + ",".join(sorted(diverged, key=int))
    if key == "|" or (parent.data.tags.get("pepita.summarized_seeds") == key and not force):
        return summary  # nothing ended yet, or logged by an earlier call: log once
    # Rewritten, not appended: each step holds one value, over the seeds summarised now.
    tracking.delete_metric_history(
        client, parent_run_id, [*summary, "final_test_accuracy_std", "slowness_std",
                                *(f"{n}_{s}" for n in PARENT_CURVES for s in ("mean", "std"))])
    # At the last epoch's step, like the seeds' final_* metrics.
    tracking.log_metrics(client, parent_run_id, summary, step=config.epochs)
    for name in PARENT_CURVES:
        means, stds = plots.epoch_mean_std({s: c.get(name) for s, c in curves.items()})
        for epoch, (mean, std) in enumerate(zip(means, stds), start=1):
            metrics = {f"{name}_mean": mean}
            if std is not None:
                metrics[f"{name}_std"] = std
            tracking.log_metrics(client, parent_run_id, metrics, step=epoch)
    if curves:
        with tempfile.TemporaryDirectory() as scratch:
            path = plots.plot_cell_curves(
                {s: c["test_accuracy"] for s, c in curves.items()},
                pathlib.Path(folder or scratch) / "cell_curves.png",
                title=f"{config.label}: {len(curves)} seed(s) vs paper", paper=config.paper)
            tracking.log_artifact(client, parent_run_id, path)
    tracking.set_tags(client, parent_run_id, {"pepita.summarized_seeds": key})
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
              verify=True, command=None, verbose=2, system_metrics=False):
    """Runs (or resumes) one reproduction for several seeds.

    A seed whose loss, metrics or weights become non-finite stops at that
    epoch and is recorded as diverged (MLflow status FAILED, tag
    `pepita.diverged_epoch`); it is never averaged into the cell.

    Args:
        config: an `ExperimentConfig` (e.g. from `experiment.load_config`).
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
    config = experiment.load_config("fc_mnist_pepita").smoke_version()
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
    arrays = epoch_data.load_config_arrays(config, data_dir, synthetic=synthetic, verify=verify)
    inputs = lineage.dataset_inputs(config, arrays, data_dir, synthetic)
    if not synthetic:
        config = _with_data_actually_used(config, arrays, inputs)
    data = epoch_data.EpochData(arrays, config.batch_size, config.eval_batch_size)
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
        parent_run_id = _parent_run(client, experiment_id, config, cell_dir, uri, command,
                                    synthetic)
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
        summarize_parent(client, parent_run_id, config)
        _mark_unfinished(client, parent_run_id, seeds, results)
        tracking.finish_run(client, parent_run_id, status=status)
    return parent_run_id, results


def _with_data_actually_used(config, arrays, inputs):
    """`config` with the split sizes and file digest of the data found, where they differ.

    Fewer examples than the full dataset, or files that are not the official
    ones (`--no-verify`, or a `SHA256SUMS` of the user's own), make a custom
    run (`<cell>-custom-…`), never one that counts as the paper cell.
    """
    changed = epoch_data.with_data_sizes(config, arrays)
    why = []
    if changed is not config:
        why.append(f"has {len(arrays[0][0])} training and {len(arrays[1][0])} test examples, "
                   "not the full dataset's")
    digest = lineage.unofficial_data_digest(config.dataset, inputs)
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
    described = lineage.describe(inputs)
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


def _mark_unfinished(client, parent_run_id, seeds, results):
    """Tags the parent with the asked-for seeds that did not end (`pepita.unfinished_seeds`)."""
    ended = {result.seed for result in results}
    mark_unfinished_seeds(client, parent_run_id,
                          [seed for seed in seeds if seed not in ended])


def mark_unfinished_seeds(client, parent_run_id, also=()):
    """Updates the parent's `pepita.unfinished_seeds`: listed or `also`, minus seeds that ended.

    A seed ended when a child run of it completed or diverged (from any run
    folder). Returns the unfinished seeds (strings, in order).
    """
    tags = client.get_run(parent_run_id).data.tags
    ended = {child.data.tags.get("pepita.seed") for child in child_runs(client, parent_run_id)
             if tracking.tag_is_true(child.data.tags.get("pepita.complete"))
             or child.data.tags.get("pepita.diverged_epoch")}
    listed = [seed for seed in tags.get("pepita.unfinished_seeds", "").split(",") if seed]
    unfinished = [seed for seed in dict.fromkeys([*listed, *map(str, also)])
                  if seed not in ended]
    if unfinished:
        tracking.set_tags(client, parent_run_id,
                          {"pepita.unfinished_seeds": ",".join(unfinished)})
    elif listed:
        client.delete_tag(parent_run_id, "pepita.unfinished_seeds")
    return unfinished
