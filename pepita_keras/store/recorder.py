"""What a reproduction records: the cell's parent run and each seed's run, in MLflow and the run folder.

`reproduce` trains; this module is everything it tells the store about it,
in the order it happens:

- `open_cell`: the cell's parent run, from the run folder's `parent.json`,
  else the store's parent of the same settings (another run folder joins
  it), else a new one; a folder of other settings or another store is
  refused in one line;
- `open_seed`: a seed folder's `SeedState` to resume, under the same refusals;
- `SeedRecorder.start` / `SeedRecorder.resume`: a seed's run, created with
  its tags, params and dataset inputs, or reopened after a kill (epochs the
  store missed are logged first);
- `SeedRecorder.diverged` / `SeedRecorder.completed` / `SeedRecorder.killed`:
  how the seed ended (each idempotent, so a kill during the wrap-up is
  redone by the rerun);
- `summarize_cell` and `finish_cell`: the parent's mean/std curves over the
  completed seeds, its unfinished seeds and its status.

`pepita migrate-store` reuses `summarize_cell`, `child_runs` and
`seed_artifacts`; nothing here imports the training code.

Example:

```python
parent = recorder.open_cell(client, experiment_id, config, cell_dir, uri, command)
seed_run, state = recorder.SeedRecorder.start(client, experiment_id, parent, config, 0,
                                              folder, params, inputs)
...  # train, with checkpoints.EpochCheckpoint(folder, state)
seed_run.completed(config, model, state, inputs)
recorder.finish_cell(client, parent, config, asked=[0], ended=[0], status="FINISHED")
```
"""

import pathlib
import tempfile

import numpy as np

from pepita_keras import experiment_config, slowness
from pepita_keras.store import (dataset_inputs, json_files, plots, provenance, safe_files,
                                 seed_state, tracking)
from pepita_keras.store.seed_state import SeedState

# Per-epoch metrics of a parent run: mean and std over its completed seeds.
PARENT_CURVES = ("train_accuracy", "test_accuracy", "train_loss", "test_loss")
# A cell's run folder: the parent run it belongs to, and the settings it started with.
PARENT_FILE = "parent.json"


# ---------------------------------------------------------------------------
# Resuming: a run folder must belong to the same config and data.
# ---------------------------------------------------------------------------
def check_same_config(settings, legacy_config, config, where):
    """Refuses to resume a run folder started with other training settings than `config`'s.

    Args:
        settings: the settings the folder recorded (`SeedState.settings` or
            `parent.json`'s), or None for folders from before they existed.
        legacy_config: those folders' JSON text of the flattened config.
        config: the `ExperimentConfig` about to train.
        where: the folder, for the message.

    Raises:
        ValueError: naming each differing setting (old → new) and the ways out.
    """
    changed = seed_state.changed_settings(settings, legacy_config, config)
    if changed:
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


def check_same_data(was_synthetic, synthetic, where):
    """Refuses to resume a folder started on synthetic data with real data, or the reverse."""
    if bool(was_synthetic) != bool(synthetic):
        was = "synthetic data" if was_synthetic else "the real dataset"
        raise ValueError(
            f"{where} was started on {was}; rerun with"
            f"{'' if was_synthetic else 'out'} --synthetic, or pass another "
            "--run-root / delete that directory to start over.")


def open_seed(client, folder, config, synthetic=False):
    """A seed folder's record to resume (or skip, if finished), or None for a new seed.

    Args:
        client: an `mlflow.MlflowClient`.
        folder: the seed's run folder (`<cell dir>/seed<k>`).
        config: the `ExperimentConfig` about to train.
        synthetic: whether the data is synthetic.

    Returns:
        The folder's `SeedState`, or None if it has none yet.

    Raises:
        ValueError: if the folder was started with other settings or data, its
            run is not in this store, its state names a checkpoint that is not
            its own (another folder's file, a link), the folder was copied from
            another seed, or the run trained on another platform.
    """
    state = SeedState.load(folder)
    if state is not None:
        check_same_config(state.settings, state.config, config, str(folder))
        check_same_data(state.synthetic, synthetic, str(folder))
        check_own_files(state, folder)
        if not tracking.run_exists(client, state.run_id):
            raise ValueError(
                f"{folder} refers to MLflow run {state.run_id}, missing from the "
                "current store; delete that directory to start over.")
        check_same_seed_and_platform(client.get_run(state.run_id), state, folder)
    return state


def check_own_files(state, folder):
    """Refuses a `state.json` whose checkpoint is not this folder's own file for its epoch.

    The state is data: its checkpoint name is only ever `checkpoint-eNNNN.npz`
    of the epoch it records, a regular file in the folder itself. Anything
    else (a path, `..`, a link to another seed's file) would load foreign
    weights and later delete that file.
    """
    folder = pathlib.Path(folder)
    state_file = folder / seed_state.STATE_FILE
    safe_files.refuse_link(state_file, "run state")
    if state.checkpoint is None:
        return
    expected = f"checkpoint-e{int(state.epoch):04d}.npz"
    path = folder / str(state.checkpoint)
    if state.checkpoint != expected or path.is_symlink() or not path.is_file():
        raise ValueError(
            f"{state_file} names the checkpoint {state.checkpoint!r}, but a seed's state can only "
            f"name its own regular file {expected} (epoch {state.epoch}) in {folder}; the folder "
            "was edited or assembled by hand. Restore it, or delete it to train that seed again.")


def check_same_seed_and_platform(run, state, folder):
    """Refuses a seed folder whose run is another seed's, or trained on another platform.

    A folder copied to another seed's name would train into the first seed's
    MLflow run; a seed interrupted on TensorFlow and resumed on JAX would be
    counted with the platform it started on.
    """
    from pepita_keras.store import provenance

    tags = run.data.tags
    name = pathlib.Path(folder).name
    recorded = tags.get("pepita.seed")
    if name.startswith("seed") and recorded is not None and name != f"seed{recorded}":
        raise ValueError(
            f"{folder} holds the state of seed {recorded} (MLflow run {run.info.run_id}), not "
            f"of {name}: it was copied or renamed. Move it back to seed{recorded}, or delete it "
            f"to train {name} afresh.")
    if state.finished:
        return  # nothing more trains in it
    here, there = provenance.platform_name(), tracking.run_platform(tags)
    if here != there:
        raise ValueError(
            f"{folder} was trained on {there} and this process runs {here}: resuming would mix "
            "platforms in one run (and count it with the wrong ones). Resume it where it started "
            f"(e.g. KERAS_BACKEND={there.split('-')[0]}), or use another --run-root to train "
            f"this seed afresh on {here}.")


# ---------------------------------------------------------------------------
# The cell's parent run.
# ---------------------------------------------------------------------------
def open_cell(client, experiment_id, config, cell_dir, uri, command, synthetic=False):
    """The cell's parent run id: the run folder's, else the store's of the same settings, else new.

    Args:
        client: an `mlflow.MlflowClient`.
        experiment_id: the MLflow experiment.
        config: the `ExperimentConfig` trained.
        cell_dir: the cell's run folder (`<run root>/<run name>`).
        uri: the store's tracking URI (recorded in `parent.json`).
        command: the command line, recorded as a tag.
        synthetic: whether the data is synthetic.

    Returns:
        The parent run id, RUNNING.

    Raises:
        ValueError: if the folder was started with other settings or data,
            or belongs to another store, or the run needs `pepita migrate-store`.
    """
    path = cell_dir / PARENT_FILE
    state = json_files.read_json(path)
    if state is not None:
        check_same_config(state.get("settings"), state.get("config"), config, str(cell_dir))
        check_same_data(state.get("synthetic", False), synthetic, str(cell_dir))
        if state["tracking_uri"] != uri or not tracking.run_exists(client, state["run_id"]):
            raise ValueError(
                f"{cell_dir} belongs to MLflow run {state['run_id']} in "
                f"{state['tracking_uri']}, which is not in the current store {uri}. "
                "Set MLFLOW_TRACKING_URI to the original store, or use another "
                "--run-root / delete that directory to start over."
            )
        refuse_old_schema(client, state["run_id"])
        tracking.reopen_run(client, state["run_id"])
        return state["run_id"]
    existing = existing_parent(client, experiment_id, config, synthetic)
    if existing is not None:
        # A new run folder (another --run-root, another machine) adds its seeds
        # to the cell's parent instead of splitting the cell in two.
        refuse_old_schema(client, existing)
        tracking.reopen_run(client, existing)
        write_parent_file(path, existing, uri, config, synthetic)
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
        # Fractions, as every accuracy in MLflow (the paper quotes percent), rounded so the
        # UI shows 0.9801, not 0.9801000000000001.
        tags.update({"paper.mean": round(config.paper[0] / 100, 6),
                     "paper.std": round(config.paper[1] / 100, 6),
                     "paper.source": config.paper_source})
    run_id = tracking.create_run(client, experiment_id, config.run_name, tags=tags)
    tracking.log_params(client, run_id, config.flatten())
    write_parent_file(path, run_id, uri, config, synthetic)
    return run_id


def write_parent_file(path, run_id, uri, config, synthetic):
    json_files.write_json(path, {"run_id": run_id, "tracking_uri": uri,
                                 "settings": config.training_settings(),
                                 "synthetic": bool(synthetic)})


def shipped_config_of(run):
    """The shipped config of a cell run, with the run's epoch count (None if unknown)."""
    # By name only: the tag comes from the store, which may be someone else's.
    config = experiment_config.config_by_name(run.data.tags.get("pepita.cell", ""))
    if config is None:
        return None
    epochs = int(run.data.params.get("epochs", config.epochs))
    return config if epochs == config.epochs else config.replace(epochs=epochs)


def existing_parent(client, experiment_id, config, synthetic):
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
    key = (config.run_name, bool(config.is_smoke), bool(synthetic), provenance.platform_name())
    same = [run for run in runs if tracking.parent_key(run) == key]
    if not same:
        return None
    return min(same, key=lambda run: run.info.start_time or 0).info.run_id


def refuse_old_schema(client, run_id):
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


def summarize_cell(client, parent_run_id, config, folder=None, force=False):
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


def mark_unfinished_seeds(client, parent_run_id, also=()):
    """Updates the parent's `pepita.unfinished_seeds`: listed or `also`, minus seeds that ended.

    A seed ended when a child run of it completed or diverged (from any run
    folder). Returns the unfinished seeds (strings, in order).
    """
    tags = client.get_run(parent_run_id).data.tags
    ended = {child.data.tags.get("pepita.seed") for child in child_runs(client, parent_run_id)
             if tracking.seed_ended(child.data.tags)}
    listed = [seed for seed in tags.get("pepita.unfinished_seeds", "").split(",") if seed]
    unfinished = [seed for seed in dict.fromkeys([*listed, *map(str, also)])
                  if seed not in ended]
    if unfinished:
        tracking.set_tags(client, parent_run_id,
                          {"pepita.unfinished_seeds": ",".join(unfinished)})
    elif listed:
        client.delete_tag(parent_run_id, "pepita.unfinished_seeds")
    return unfinished


def finish_cell(client, parent_run_id, config, asked, ended, status="FINISHED"):
    """Ends a `reproduce` call on the parent: summary, unfinished seeds, status.

    Args:
        client: an `mlflow.MlflowClient`.
        parent_run_id: the cell's parent run.
        config: its `ExperimentConfig`.
        asked: the seeds this call was asked for.
        ended: those of them that completed or diverged.
        status: `FINISHED`, `KILLED` (Ctrl-C, `kill`) or `FAILED` (an error).
    """
    summarize_cell(client, parent_run_id, config)
    mark_unfinished_seeds(client, parent_run_id, [seed for seed in asked if seed not in ended])
    tracking.finish_run(client, parent_run_id, status=status)


# ---------------------------------------------------------------------------
# A seed's run.
# ---------------------------------------------------------------------------
def seed_run_name(config, seed):
    """The MLflow run name of a seed: `<cell run name>/seed<k>`, e.g. `fc_mnist_pepita/seed0`."""
    return f"{config.run_name}/seed{seed}"


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
        safe_files.write_atomic(folder / name, json_files.dumps(content))
        paths.append(folder / name)
    return paths


class SeedRecorder:
    """A seed's MLflow run and its run folder's `state.json`, from start to end.

    Args:
        client: an `mlflow.MlflowClient`.
        run_id: the seed's run.
        folder: the seed's run folder.
    """

    def __init__(self, client, run_id, folder):
        self.client = client
        self.run_id = run_id
        self.folder = pathlib.Path(folder)

    @classmethod
    def start(cls, client, experiment_id, parent_run_id, config, seed, folder, params,
              inputs=(), synthetic=False, command=None):
        """Creates the seed's run (tags, params, dataset inputs) and its first `state.json`.

        Args:
            params: what is logged besides `config.flatten()` and the seed
                (e.g. the data's sizes).
            inputs: `dataset_inputs.DatasetInput`s of the data it trains and tests on.

        Returns:
            `(SeedRecorder, SeedState)`.
        """
        tags = {
            tracking.ROLE_TAG: "seed",
            **tracking.config_tags(config),
            "pepita.cell": config.name,
            "pepita.seed": seed,
            "pepita.smoke": config.is_smoke,
            "pepita.synthetic": bool(synthetic),
            "run_dir": str(pathlib.Path(folder).resolve()),
            **provenance.provenance_tags(command),
        }
        run_id = tracking.create_run(client, experiment_id, seed_run_name(config, seed),
                                     parent_run_id=parent_run_id, tags=tags)
        tracking.log_params(client, run_id, dict(config.flatten(), seed=seed, **params))
        if inputs:
            dataset_inputs.log_dataset_inputs(client, run_id, inputs)
        state = SeedState(run_id, seed=seed, settings=config.training_settings(),
                          synthetic=bool(synthetic))
        state.save(folder)
        return cls(client, run_id, folder), state

    @classmethod
    def resume(cls, client, state, folder, inputs=()):
        """Reopens the seed's run after a kill; logs the epochs the store missed.

        Raises:
            ValueError: if the run was written before `tracking.SCHEMA_VERSION`.
        """
        refuse_old_schema(client, state.run_id)
        tracking.reopen_run(client, state.run_id)
        if inputs and not client.get_run(state.run_id).inputs.dataset_inputs:
            dataset_inputs.log_dataset_inputs(client, state.run_id, inputs)  # started before inputs
        _sync_logged_epochs(client, state.run_id, state.history)
        tracking.set_tags(client, state.run_id, {f"resumed.epoch{state.epoch}":
                                                 provenance.git_info()["commit"] or "unknown"})
        return cls(client, state.run_id, folder)

    def diverged(self, state):
        """Marks a diverged seed: FAILED in MLflow, tagged, never counted; idempotent."""
        diverged = state.diverged
        tracking.set_tags(self.client, self.run_id, {
            "pepita.diverged": True,
            "pepita.diverged_epoch": diverged["epoch"],
            "pepita.non_finite": ", ".join(diverged["non_finite"]),
        })
        tracking.log_metrics(self.client, self.run_id, {"epochs_completed": state.epoch,
                                                        "wall_time_s": state.wall_time_s},
                             step=state.epoch)
        tracking.log_json_artifact(self.client, self.run_id, _tracked_history(state.history),
                                   "history.json")
        tracking.finish_run(self.client, self.run_id, status="FAILED")
        state.finished = True
        state.save(self.folder)

    def completed(self, config, seed, model, state, inputs=(), example=None):
        """Final metrics, the model and the artifacts of a seed; idempotent (redone after a kill)."""
        client, run_id, history = self.client, self.run_id, state.history
        tracking.log_metrics(client, run_id, {
            "final_test_accuracy": history["val_accuracy"][-1],
            "final_train_accuracy": history["accuracy"][-1],
            "wall_time_s": state.wall_time_s,
            "epochs_completed": state.epoch,
        }, step=state.epoch)
        # Exactly one complete model per seed, whenever a kill came during the wrap-up.
        tracking.log_keras_model_once(client, run_id, model, input_example=example)
        tracking.set_tags(client, run_id, {"pepita.model_logged": True})
        environment = {"environment": provenance.environment_info(),
                       "git": provenance.git_info(), "config": config.to_dict(),
                       "data": dataset_inputs.describe(inputs)}
        for path in seed_artifacts(self.folder / "artifacts", _tracked_history(history),
                                   f"seed {seed}", f"{config.label} (seed {seed})",
                                   config.paper, environment):
            tracking.log_artifact(client, run_id, path)
        tracking.set_tags(client, run_id, {"pepita.complete": True})
        tracking.finish_run(client, run_id)
        state.finished = True
        state.save(self.folder)

    def killed(self):
        """Ctrl-C, `kill` or an error before the seed ended: KILLED until a rerun reopens it."""
        tracking.finish_run(self.client, self.run_id, status="KILLED")


def unfinished_elsewhere(client, parent_run_id, seed, folder):
    """Another run folder on this machine holding an unfinished checkpoint of this seed, or None.

    A seed started under one `--run-root` and rerun under another starts
    over (its checkpoints are per folder); `reproduce` says where the
    unfinished one is, so its epochs are not lost unknowingly.

    Returns:
        `(folder, epochs done)` of the unfinished run, or None.
    """
    here = pathlib.Path(folder).resolve()
    for child in child_runs(client, parent_run_id):
        tags = child.data.tags
        if (tags.get("pepita.seed") != str(seed) or not tags.get("run_dir")
                or tracking.seed_ended(tags)):
            continue
        other = pathlib.Path(tags["run_dir"])
        if other.resolve() == here:
            continue
        try:
            state = SeedState.load(other)
        except (OSError, ValueError):
            continue  # unreadable: nothing to point at
        if state is not None and state.run_id == child.info.run_id and not state.finished:
            return other, state.epoch
    return None
