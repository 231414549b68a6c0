"""Upgrades an MLflow store written by older versions of this package.

`pepita migrate-store --tracking-uri URI` (or `migrate_store(uri)`) brings
every run of a store to `tracking.SCHEMA_VERSION`, without re-running
anything, and can be run any number of times (runs already upgraded are left
alone, artifacts already present are not logged again):

1. **Artifact location.** Each experiment (and each of its runs) moves to
   `tracking.default_artifact_location`: for the committed store the
   relative `reproductions/results/artifacts/<experiment>`, so the store
   works from the root of any clone (`pepita ui`, or `mlflow ui --backend-store-uri
   sqlite:///reproductions/results/tracking.db`). Files already at the old
   location, if it still exists on this machine, are copied over.
2. **Names and tags.** Seed runs `seed0` → `<cell>/seed0`, trials
   `trial_3` → `<search>/trial_3`; `pepita.kind` → `pepita.role`;
   `pepita.rule` / `pepita.dataset` / `pepita.architecture` added from the
   params; boolean tags spelled `"true"` / `"false"`.
3. **Metrics.** Per-epoch metrics move from step = epoch index (0 … N−1) to
   step = epoch number (1 … N); a parent's old summary (`test_accuracy_mean`
   / `_std` in percent, `n_seeds`, logged again by every call) is replaced by
   one `final_test_accuracy_mean` / `_std` (fractions, as the seeds'
   accuracies) / `n_seeds` / `n_diverged` at the last epoch's step, and
   `test_accuracy_mean` / `_std` become the per-epoch curves over seeds;
   tuning trials' `loss` / `accuracy` become `train_loss` / `train_accuracy`.
4. **Artifacts re-created from what the store holds.** Seeds:
   `history.json` and `learning_curves.png` from the metric histories,
   `alignment.json` from the alignment metrics, `environment.json` from the
   provenance tags and params (marked as rebuilt). Parents: per-epoch mean /
   std over the completed seeds and `cell_curves.png`. With `--data-dir`,
   seeds on a real dataset also get their dataset inputs (digests from the
   files' SHA-256).
5. **Names follow today's configs.** A shipped config can change after runs
   were made with it (conv BP and conv DRTP took the settings of earlier
   `--set` runs). A cell's parent run is named as `pepita reproduce` would
   name it today: `<cell>` when its recorded settings are the shipped
   config's, else `<cell>-custom-<digest>`; its seeds follow
   (`<name>/seed<k>`), the tag `pepita.settings` is brought up to date, and
   `pepita.previous_name` keeps the old name. Its run folder (the `run_dir`
   tag), when it is on this machine, moves along unless a folder already
   holds the new name, so `pepita reproduce <cell> --seeds <more>` adds
   seeds to the same parent.

Metric steps, metric names and artifact locations have no MLflow API to
change them, so those edits go through MLflow's own SQLAlchemy models in one
transaction per run; names and tags use `MlflowClient`.

Example:

```bash
cp reproductions/results/tracking.db /tmp/backup.db
pepita migrate-store --tracking-uri sqlite:///reproductions/results/tracking.db \\
    --data-dir ../shared/data
```
"""

import pathlib
import tempfile

from pepita_keras import input_pipeline
from pepita_keras.store import checkpoints, dataset_inputs, recorder, tracking
from pepita_keras import experiment_config
from pepita_keras.store import json_files, untrusted

# Seed metrics logged once at the end (step = epochs), not per epoch.
_FINAL_METRICS = ("final_test_accuracy", "final_train_accuracy", "wall_time_s",
                  "epochs_completed")
_BOOLEAN_TAGS = ("pepita.smoke", "pepita.complete", "pepita.diverged", "git.dirty",
                 "pepita.best_trial", "pepita.distributed", "pepita.synthetic")
# Parent summary metrics of schema 1 (accuracies in percent, logged at step 0
# by every call); schema 2 logs final_test_accuracy_mean / _std (fractions).
_OLD_PARENT_SUMMARY = ("test_accuracy_mean", "test_accuracy_std", "n_seeds", "n_diverged")
_TRIAL_RENAMES = {"loss": "train_loss", "accuracy": "train_accuracy"}


def _shift_steps(session, run_id, keys):
    """step → step + 1 for `keys` of a run (metric history and latest value)."""
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric

    for model in (SqlMetric, SqlLatestMetric):
        rows = session.query(model).filter(model.run_uuid == run_id, model.key.in_(keys))
        # Through negative values: step 0 → 1 must not collide with the
        # existing row at step 1 inside one UPDATE.
        rows.update({model.step: -(model.step + 1)}, synchronize_session=False)
        session.query(model).filter(model.run_uuid == run_id, model.key.in_(keys),
                                    model.step < 0).update(
            {model.step: -model.step}, synchronize_session=False)


def _rename_metric_keys(session, run_id, renames):
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric

    for old, new in renames.items():
        for model in (SqlMetric, SqlLatestMetric):
            session.query(model).filter(model.run_uuid == run_id, model.key == old).update(
                {model.key: new}, synchronize_session=False)


def _parent_of(client, tags, cache):
    parent_id = tags.get("mlflow.parentRunId")
    if not parent_id:
        return None
    if parent_id not in cache:
        cache[parent_id] = client.get_run(parent_id) if tracking.run_exists(
            client, parent_id) else None
    return cache[parent_id]


# Set with a run's step shift, in the same transaction (see `upgrade_run`).
_STEPS_SHIFTED_TAG = "pepita.steps_shifted"


def upgrade_run(uri, run_id, _parents=None):
    """Upgrades one run to `tracking.SCHEMA_VERSION` (names, tags, steps, units).

    A run already at that version is left unchanged.

    Args:
        uri: the store.
        run_id: the run.

    Returns:
        True if the run was changed.
    """
    client = tracking.client(uri)
    run = client.get_run(run_id)
    tags, params = run.data.tags, run.data.params
    if tracking.run_schema(tags) >= tracking.SCHEMA_VERSION:
        return False
    role = tracking.role(tags)
    parent = _parent_of(client, tags, {} if _parents is None else _parents)
    store = tracking._sql_store(uri)
    shifted = tracking.tag_is_true(tags.get(_STEPS_SHIFTED_TAG))
    with store.ManagedSessionMaker(read_only=False) as session:
        metrics = set(run.data.metrics)
        if role == "seed" and not shifted:
            _shift_steps(session, run_id, [k for k in metrics if k not in _FINAL_METRICS
                                           and not k.startswith("system/")])
        elif role == "trial" and not shifted:
            _rename_metric_keys(session, run_id,
                                {k: v for k, v in _TRIAL_RENAMES.items() if k in metrics})
            per_epoch = [_TRIAL_RENAMES.get(k, k) for k in metrics
                         if k != "objective" and not k.startswith("system/")]
            _shift_steps(session, run_id, per_epoch)
        if role in ("seed", "trial") and not shifted:
            # Recorded in the shift's own transaction: a migration killed after it (before
            # the schema tag) finishes the run's upgrade without shifting its steps again.
            from mlflow.store.tracking.dbmodels.models import SqlTag

            session.merge(SqlTag(key=_STEPS_SHIFTED_TAG, value="true", run_uuid=run_id))
    if role == "cell":
        # The old summary (percent, logged again by every call) goes;
        # `recorder.summarize_cell` logs it once in the new form.
        tracking.delete_metric_history(client, run_id, _OLD_PARENT_SUMMARY)
    new_tags = {}
    if "pepita.kind" in tags and tracking.ROLE_TAG not in tags:
        new_tags[tracking.ROLE_TAG] = tags["pepita.kind"]
    # A trial's params are its hyperparameters: the setting is the search's.
    inherited = parent.data.params if parent else {}
    for key in ("rule", "dataset", "architecture"):
        value = params.get(key, inherited.get(key))
        if f"pepita.{key}" not in tags and value is not None:
            new_tags[f"pepita.{key}"] = value
    for key in _BOOLEAN_TAGS:
        if key in tags and tags[key] in ("0", "1", "True", "False", "TRUE", "FALSE"):
            new_tags[key] = tracking.tag_is_true(tags[key])
    new_tags[tracking.SCHEMA_TAG] = tracking.SCHEMA_VERSION
    tracking.set_tags(client, run_id, new_tags)
    if "pepita.kind" in tags:
        client.delete_tag(run_id, "pepita.kind")
    name = _new_name(run, role, parent)
    if name and name != run.info.run_name:
        client.update_run(run_id, name=name)
    return True


def _new_name(run, role, parent):
    """`<cell>/seed<k>` or `<search>/trial_<id>` for a run named the old way."""
    if parent is None:
        return None
    name, tags = run.info.run_name, run.data.tags
    if role == "seed" and "/" not in name:
        return f"{parent.info.run_name}/seed{tags.get('pepita.seed', name[len('seed'):])}"
    if role == "trial" and "/" not in name:
        return f"{parent.info.run_name}/trial_{tags.get('pepita.trial_id', name[6:])}"
    return None


def _copy_old_artifacts(run_id, old_uri, new_location, root):
    """Copies files from a run's old local artifact folder, if it is still on this machine.

    The store may hold runs merged from someone else's store, so its values
    are data: the run id must be an MLflow id, the old folder must be that
    run's own MLflow artifact folder (`.../<run id>/artifacts`), and only
    regular files are copied (`untrusted.copy_regular_files`).
    """
    from mlflow.utils.file_utils import local_file_uri_to_path

    untrusted.check_run_id(run_id, "migrate-store")
    try:
        old = pathlib.Path(local_file_uri_to_path(old_uri))
    except Exception:
        return 0
    if not old.is_absolute() or not old.is_dir():
        return 0
    if old.parts[-2:] != (run_id, "artifacts"):
        return 0  # not an MLflow artifact folder of this run: never read
    target = pathlib.Path(new_location)
    if not target.is_absolute():
        target = pathlib.Path(root) / target
    if target.resolve() == old.resolve():
        return 0
    return untrusted.copy_regular_files(old, target, f"artifacts of run {run_id}")


def _artifact_names(client, run_id):
    return {item.path for item in tracking.list_artifacts(client, run_id)}


def _rebuilt_environment(run):
    tags, params = run.data.tags, run.data.params
    return {
        "rebuilt_by": "pepita migrate-store, from the run's tags and params (the original "
                      "environment.json was not attached to this run)",
        "environment": {key: tags.get(key) for key in ("hardware", "tensorflow", "keras")},
        "git": {"commit": tags.get("git.commit"),
                "dirty": tracking.tag_is_true(tags.get("git.dirty")),
                "branch": tags.get("git.branch")},
        "command": tags.get("command"),
        "config": dict(params),
    }


def _rebuild_seed_artifacts(client, run, config, data_inputs):
    run_id = run.info.run_id
    present = _artifact_names(client, run_id)
    wanted = {"history.json", "learning_curves.png", "alignment.json", "environment.json"}
    logged = 0
    if not wanted <= present:
        curves = tracking.metric_histories(client, run_id, [
            key for key in run.data.metrics
            if key not in _FINAL_METRICS and not key.startswith("system/")])
        seed = run.data.tags.get("pepita.seed")
        environment = _rebuilt_environment(run)
        if data_inputs:
            environment["data"] = dataset_inputs.describe(data_inputs)
        paper = config.paper if config is not None else None
        label = config.label if config is not None else run.data.tags.get("pepita.cell")
        with tempfile.TemporaryDirectory() as folder:
            for path in recorder.seed_artifacts(folder, curves, f"seed {seed}",
                                                 f"{label} (seed {seed})", paper, environment):
                if path.name not in present:
                    tracking.log_artifact(client, run_id, path)
                    logged += 1
    if data_inputs and not run.inputs.dataset_inputs:
        dataset_inputs.log_dataset_inputs(client, run_id, data_inputs)
    return logged


def _data_inputs(run, config, data_dir, cache):
    """Dataset inputs of an old real-data seed run (needs the files), else None."""
    if data_dir is None or config is None:
        return None
    if tracking.tag_is_true(run.data.tags.get("pepita.smoke")):
        return None  # smoke runs may have been synthetic: unknown, so nothing is claimed
    params = run.data.params
    key = (config.dataset, params.get("num_train"), params.get("num_test"))
    if key not in cache:
        sized = config.replace(train_examples=int(params["num_train"]),
                               test_examples=int(params["num_test"]))
        arrays = input_pipeline.load_config_arrays(sized, data_dir)
        cache[key] = dataset_inputs.of_arrays(sized, arrays, data_dir)
    return cache[key]


def migrate_store(uri, artifact_location=None, data_dir=None, rebuild_artifacts=True,
                  experiments=None, stream=None):
    """Upgrades every run of a store (see module docstring); idempotent.

    Args:
        uri: the tracking URI of a database-backed store.
        artifact_location: `{experiment name: location}` overriding
            `tracking.default_artifact_location`.
        data_dir: dataset folder; given, real-data seed runs get their
            dataset inputs.
        rebuild_artifacts: re-create missing artifacts from the metrics.
        experiments: names to migrate (default: all).
        stream: where progress lines go (default: none).

    Returns:
        `{"experiments_moved", "runs_upgraded", "artifacts_logged",
        "files_copied", "parents_summarized", "runs_renamed", "parents_joined",
        "runs_backfilled"}` counts.
    """
    def say(text):
        if stream is not None:
            print(text, file=stream, flush=True)

    uri = tracking.tracking_uri(uri)
    path = tracking.sqlite_path(uri)
    if path is not None and not path.is_file():
        raise FileNotFoundError(
            f"no MLflow store at {path}: nothing to migrate (nothing was created). Check "
            "--tracking-uri / MLFLOW_TRACKING_URI.")
    client = tracking.client(uri, allow_schema_upgrade=True)
    root = tracking.store_root(uri)
    report = dict.fromkeys(("experiments_moved", "runs_upgraded", "artifacts_logged",
                            "files_copied", "parents_summarized", "runs_renamed",
                            "parents_joined", "runs_backfilled"), 0)
    for experiment in client.search_experiments():
        if experiments and experiment.name not in experiments:
            continue
        eid = experiment.experiment_id
        runs = client.search_runs([eid], max_results=50000)
        location = (artifact_location or {}).get(experiment.name) or \
            tracking.default_artifact_location(uri, experiment.name)
        for run in runs:  # before any file is touched
            untrusted.check_run_id(run.info.run_id, f"store {uri}")
        if location and experiment.artifact_location != location:
            for run in runs:
                report["files_copied"] += _copy_old_artifacts(
                    run.info.run_id, run.info.artifact_uri, f"{location}/{run.info.run_id}/artifacts",
                    root or pathlib.Path.cwd())
            tracking.set_artifact_location(uri, eid, location,
                                           runs=[r.info.run_id for r in runs])
            client.set_experiment_tag(eid, tracking.SCHEMA_TAG, str(tracking.SCHEMA_VERSION))
            report["experiments_moved"] += 1
            say(f"{experiment.name}: artifacts now at {location} "
                f"({experiment.artifact_location} before)")
        parents = {}
        for run in runs:
            if upgrade_run(uri, run.info.run_id, parents):
                report["runs_upgraded"] += 1
        report["runs_renamed"] += follow_current_configs(client, eid, say)
        tidied = tidy_cells(client, eid, say)
        report["parents_joined"] += tidied["parents_joined"]
        report["runs_backfilled"] += tidied["runs_backfilled"]
        if not rebuild_artifacts:
            continue
        runs = client.search_runs([eid], max_results=50000)
        data_cache = {}
        for run in runs:
            role = tracking.role(run.data.tags)
            finished = run.info.status in ("FINISHED", "FAILED")
            if role == "seed" and finished and tracking.seed_ended(run.data.tags):
                config = recorder.shipped_config_of(run)
                inputs = _data_inputs(run, config, data_dir, data_cache)
                count = _rebuild_seed_artifacts(client, run, config, inputs)
                report["artifacts_logged"] += count
                if count:
                    say(f"  {run.info.run_name}: {count} artifacts rebuilt")
        for run in runs:
            if tracking.role(run.data.tags) != "cell":
                continue
            config = recorder.shipped_config_of(run)
            if config is None:
                continue
            before = run.data.tags.get("pepita.summarized_seeds")
            recorder.summarize_cell(client, run.info.run_id, config)
            if client.get_run(run.info.run_id).data.tags.get("pepita.summarized_seeds") != before:
                report["parents_summarized"] += 1
                say(f"  {run.info.run_name}: per-epoch mean/std and cell_curves.png")
    return report


# ---------------------------------------------------------------------------
# Step 5: names follow today's configs.
# ---------------------------------------------------------------------------
def current_run_name(run, config):
    """The name `pepita reproduce` would give a cell's parent run today.

    Args:
        run: a parent run (`pepita.role=cell`) of a real-data, full-size cell.
        config: the shipped config of its `pepita.cell`.

    Returns:
        `(name, settings_digest)`: `(config.name, its digest)` when the run's
        recorded params have the shipped training settings; else the
        `<cell>-custom-<digest>` of a config rebuilt from those params (the
        name a `--set` run with them gets), or, when a setting was not
        recorded, the run's own name if already custom, else one with the
        digest it was tagged with.
    """
    params = run.data.params
    differences = experiment_config.settings_differences(params, config, tracking.param_value)
    if not differences:
        return config.name, config.settings_digest()
    if all(recorded != "(not recorded)" for recorded, _ in differences.values()):
        try:
            rebuilt = config.with_overrides(
                f"{key}={recorded}" for key, (recorded, _) in sorted(differences.items()))
        except (TypeError, ValueError):
            rebuilt = None  # a value this version cannot set: keep a tagged digest
        if rebuilt is not None and not experiment_config.settings_differences(
                params, rebuilt, tracking.param_value):
            digest = rebuilt.settings_digest()
            return f"{config.name}-custom-{digest}", digest
    name = run.info.run_name
    if name.startswith(f"{config.name}-custom-"):
        return name, name.rsplit("-", 1)[-1]
    digest = run.data.tags.get("pepita.settings_digest", run.info.run_id[:8])
    return f"{config.name}-custom-{digest}", digest


def _renamed_folder(path_text, run_id, old_name, new_name):
    """Moves the run folder of parent `run_id` from `old_name` to `new_name` beside it.

    Only a folder named `old_name` whose `parent.json` names this run moves
    (a folder moved by hand may have left its name to another run); never
    onto an existing one, nor while a process trains in it (a held seed lock).

    Returns:
        `(new path or None, why it did not move or "")`.
    """
    if not path_text:
        return None, ""
    folder = pathlib.Path(path_text)
    if folder.name != old_name or not folder.is_dir():
        return None, ""
    state = json_files.read_json(folder / recorder.PARENT_FILE)
    if state is None or state.get("run_id") != run_id:
        return None, ""
    target = folder.with_name(new_name)
    if target.exists():
        return None, f"folder {folder} kept: {target} exists"
    for lock in [folder / checkpoints.LOCK_FILE, *folder.glob(f"*/{checkpoints.LOCK_FILE}")]:
        holder = checkpoints.lock_holder(lock)
        if holder:
            return None, f"folder {folder} kept: in use by {holder}"
    folder.rename(target)
    return target, ""


def follow_current_configs(client, experiment_id, say=lambda text: None):
    """Renames the cell parents of one experiment as today's configs name them (step 5).

    Runs without a shipped config (a user's own file), smoke and synthetic
    runs keep their names. Parents that must give up a name are renamed
    before those that take one, so one pass frees and reuses a folder name.

    Args:
        client: an `mlflow.MlflowClient`.
        experiment_id: the reproductions experiment.
        say: called with one line per renamed run.

    Returns:
        The number of parent runs renamed.
    """
    plans = []
    for run in client.search_runs([experiment_id], max_results=50000):
        tags = run.data.tags
        if (tracking.role(tags) != "cell" or tracking.tag_is_true(tags.get("pepita.smoke"))
                or tracking.tag_is_true(tags.get("pepita.synthetic"))):
            continue
        config = experiment_config.shipped_config(tags.get("pepita.cell", ""))
        if config is None:
            continue
        name, digest = current_run_name(run, config)
        shipped = name == config.name
        if name != run.info.run_name or tags.get("pepita.settings") != (
                "shipped" if shipped else "custom"):
            plans.append((shipped, run, name, digest))
    # Custom first: a parent leaving `<cell>` frees that name (and folder).
    renamed = 0
    for shipped, run, name, digest in sorted(plans, key=lambda plan: plan[0]):
        old = run.info.run_name
        tags = {"pepita.settings": "shipped" if shipped else "custom",
                "pepita.settings_digest": digest}
        old_folder, folder = run.data.tags.get("run_dir"), None
        if name != old:
            renamed += 1
            tags["pepita.previous_name"] = old
            folder, kept = _renamed_folder(old_folder, run.info.run_id, old, name)
            if folder is not None:
                tags["run_dir"] = str(folder)
            client.update_run(run.info.run_id, name=name)
            say(f"  {old} → {name}" + (f" (folder {folder})" if folder else "")
                + (f"; {kept}" if kept else ""))
        tracking.set_tags(client, run.info.run_id, tags)
        for seed_run in recorder.child_runs(client, run.info.run_id):
            seed = seed_run.data.tags.get("pepita.seed")
            if seed_run.info.run_name != f"{name}/seed{seed}":
                client.update_run(seed_run.info.run_id, name=f"{name}/seed{seed}")
            # Only the seed folders that moved with their parent's folder.
            seed_dir = pathlib.Path(seed_run.data.tags.get("run_dir", ""))
            if folder is not None and seed_dir.parent == pathlib.Path(old_folder):
                tracking.set_tags(client, seed_run.info.run_id,
                                  {"run_dir": str(folder / seed_dir.name)})
    return renamed


# ---------------------------------------------------------------------------
# Step 6: one parent per cell, complete params and tags, one value per step.
# ---------------------------------------------------------------------------
# Seed params added to the config after the first runs, with the value every
# earlier run trained with (the fields' defaults then).
_BACKFILLED_PARAMS = {"hidden_activation": "relu", "output_activation": "softmax",
                      "kernel_initializer": "he_uniform"}


def _curves_logged_more_than_once(client, run_id):
    history = client.get_metric_history(run_id, "test_accuracy_mean")
    steps = [metric.step for metric in history]
    return len(steps) != len(set(steps))


def tidy_cells(client, experiment_id, say=lambda text: None):
    """Step 6: what the results table says, the store shows; idempotent.

    - Parent runs of one cell with the same name and settings (a cell whose
      seeds were started from two run folders) become one: the seeds of the
      later parents move under the earliest, the emptied parents are deleted.
    - Seed runs recorded before `hidden_activation`, `output_activation` and
      `kernel_initializer` existed get those params (the values they trained
      with); runs without `pepita.platform` get `tracking.DEFAULT_PLATFORM`
      (every run before that tag was TensorFlow on a CPU); `paper.mean` /
      `paper.std` tags in percent become fractions, as every MLflow number.
    - A parent whose per-epoch curves hold several values per step (re-logged
      by older versions at every seed's end) or that gained seeds is
      summarised again, once per epoch.

    Returns:
        `{"parents_joined": n, "runs_backfilled": m}`.
    """
    counts = {"parents_joined": 0, "runs_backfilled": 0}
    resummarize, joined = set(), set()
    for run in client.search_runs([experiment_id], max_results=50000):
        tags, changed = run.data.tags, False
        if tracking.role(tags) == "seed":
            missing = {k: v for k, v in _BACKFILLED_PARAMS.items() if k not in run.data.params}
            if missing:
                tracking.log_params(client, run.info.run_id, missing)
                changed = True
        new_tags = {}
        if tracking.PLATFORM_TAG not in tags:
            new_tags[tracking.PLATFORM_TAG] = tracking.DEFAULT_PLATFORM
        for key in ("paper.mean", "paper.std"):
            try:
                value = float(tags[key])
            except (KeyError, ValueError):
                continue
            if value > 1:
                new_tags[key] = value / 100
        if new_tags:
            tracking.set_tags(client, run.info.run_id, new_tags)
            changed = True
        counts["runs_backfilled"] += changed
        if tracking.role(tags) == "cell" and _curves_logged_more_than_once(
                client, run.info.run_id):
            resummarize.add(run.info.run_id)
    runs = client.search_runs([experiment_id], max_results=50000)
    parents = {}
    for run in sorted(runs, key=lambda r: r.info.start_time or 0):
        if tracking.role(run.data.tags) == "cell":
            parents.setdefault(tracking.cell_key(run), []).append(run)
    for group in parents.values():
        keep, extras = group[0], group[1:]
        for extra in extras:
            for child in recorder.child_runs(client, extra.info.run_id):
                client.set_tag(child.info.run_id, "mlflow.parentRunId", keep.info.run_id)
            # A run folder of the extra parent on this machine resumes into the kept one.
            state_path = pathlib.Path(extra.data.tags.get("run_dir", "")) / recorder.PARENT_FILE
            state = json_files.read_json(state_path) if extra.data.tags.get("run_dir") else None
            if state is not None and state.get("run_id") == extra.info.run_id:
                json_files.write_json(state_path, dict(state, run_id=keep.info.run_id))
            tracking.set_tags(client, keep.info.run_id,
                              {"pepita.joined_parents": ",".join(
                                  r.info.run_id for r in extras)})
            if extra.data.tags.get("pepita.unfinished_seeds"):
                recorder.mark_unfinished_seeds(
                    client, keep.info.run_id,
                    also=extra.data.tags["pepita.unfinished_seeds"].split(","))
            tracking.delete_run_completely(client, extra)
            counts["parents_joined"] += 1
            resummarize.add(keep.info.run_id)
            joined.add(keep.info.run_id)
            say(f"  {keep.info.run_name}: parent {extra.info.run_id} joined into "
                f"{keep.info.run_id}")
    for run_id in sorted(resummarize):
        run = client.get_run(run_id)
        config = recorder.shipped_config_of(run)
        if config is not None:
            recorder.summarize_cell(client, run_id, config, force=True)
            say(f"  {run.info.run_name}: per-epoch mean/std rewritten, one value per epoch")
        if run_id in joined:
            _settle_joined_parent(client, run)
    return counts


def _settle_joined_parent(client, parent):
    """Unfinished seeds that ended under a joined parent stop counting as unfinished.

    A parent left KILLED/FAILED by an interrupted seed, whose seed later ended
    from another run folder, becomes FINISHED once no seed of it is unfinished
    or running.
    """
    if "pepita.unfinished_seeds" not in parent.data.tags:
        return  # nothing known to be unfinished: the status stays what the last call left
    if recorder.mark_unfinished_seeds(client, parent.info.run_id):
        return
    children = recorder.child_runs(client, parent.info.run_id)
    running = any(child.info.status == "RUNNING" for child in children)
    if parent.info.status in ("KILLED", "FAILED") and not running:
        tracking.finish_run(client, parent.info.run_id, status="FINISHED")
