"""Copying the runs of one MLflow store into another (`pepita merge-store`).

Reproductions trained on another machine (a GPU machine without this
repository's store, say) are recorded there in a store of their own; this
module brings them into the committed one. Each run is copied whole: name,
tags, params, the full history of every metric with its steps and
timestamps, dataset inputs, status, start and end times, nesting (a seed
stays under its cell's parent run) and its artifacts, read from the source
store's artifact folders or from an archive of them. MLflow logged models
are not copied (their weights are never committed).

A copied run carries the tag `pepita.merged_from` (the source run's id),
set only once the run is whole: a merge killed midway leaves a run tagged
`pepita.merging_from` instead, which the next merge deletes and copies
again. A run is identified by its origin (the id it was first recorded
under, followed through `pepita.merged_from`), so merging the same store
again, merging a store into itself, or merging back a store that was merged
from this one adds nothing.

Another store is data, never code or paths to follow (`pepita_keras.store.untrusted`):
run ids are checked before any file operation; artifacts are read only from
inside the source store's own folder (the folder of its `.db` file) or from
the given archive, as regular files within a size cap.
Runs keep their `pepita.platform` tag, by which `pepita results` shows runs
of one cell on different platforms side by side.

A cell's seeds often come home in several stores (a device session is short:
seed 0 in one, seeds 1-2 in the next). A source parent run of a cell that
already has a parent here (same name, smoke/synthetic flags and platform,
`tracking.parent_key`) is not copied: its seeds join the parent already
here, which is summarised again over all its seeds and lists the joined
source parents in `pepita.merged_parents`, so that merging again adds
nothing. One cell, one parent, as `pepita migrate-store` leaves a store.

Example:

```python
from pepita_keras.store import merge as store_merge
store_merge.merge_store("gpu/tracking.db", "sqlite:///reproductions/results/tracking.db",
                        artifacts_archive="gpu/artifacts.tgz")
```
"""

import pathlib
import tempfile

from pepita_keras.store import tracking, untrusted

MERGED_FROM_TAG = "pepita.merged_from"
# Set while a run is being copied; replaced by MERGED_FROM_TAG once it is whole.
MERGING_FROM_TAG = "pepita.merging_from"
# On a parent here: the source parents (origins) whose seeds joined it.
MERGED_PARENTS_TAG = "pepita.merged_parents"
_PARENT_TAG = "mlflow.parentRunId"
_UNFINISHED_TAG = "pepita.unfinished_seeds"
_BATCH = 1000


def source_uri(source):
    """A tracking URI for `source`: a URI as given, a path to a `.db` file as SQLite."""
    if "://" in str(source):
        return str(source)
    path = pathlib.Path(source).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no MLflow store at {path} (give a SQLite .db file or a URI)")
    return f"sqlite:///{path}"


def _source_folder(uri):
    """The folder whose contents the source store may name as artifacts (None: none)."""
    path = tracking.sqlite_path(uri)
    return None if path is None else path.parent


def _local_artifacts(run, source_folder, source_root, max_bytes):
    """The run's artifact folder in the source store, if it is a safe one on this machine.

    A relative location is read against the source store's repository root
    (the committed-store layout), never against the working directory.

    Raises:
        UntrustedInputError: for an existing folder outside the source store's folder.
    """
    if source_folder is None:
        return None
    # Remote artifacts (None): only an archive brings them.
    path = tracking.local_artifact_path(run.info.artifact_uri, source_root or source_folder)
    if path is None or (not path.exists() and not path.is_symlink()):
        return None
    if path.parts[-2:] != (run.info.run_id, "artifacts") or not untrusted.is_inside(
            path, source_folder):
        raise untrusted.UntrustedInputError(
            f"run {run.info.run_id} of the source store names {path} as its artifact folder, "
            f"which is not that run's folder inside the store's own folder {source_folder}; "
            "refusing to read it. Pass the artifacts as an archive with --artifacts.")
    untrusted.regular_files(path, f"artifacts of run {run.info.run_id}", max_bytes)
    return path


def _origin(run):
    """The id a run was first recorded under (its own, or the one it was merged from)."""
    return run.data.tags.get(MERGED_FROM_TAG, run.info.run_id)


def _copy_run(source, target, run, experiment_id, parent_id, artifacts):
    from mlflow.entities import Metric, Param

    tags = dict(run.data.tags)
    tags.pop(_PARENT_TAG, None)
    tags.pop(MERGED_FROM_TAG, None)
    if parent_id:
        tags[_PARENT_TAG] = parent_id
    tags[MERGING_FROM_TAG] = _origin(run)
    copy = target.create_run(experiment_id, start_time=run.info.start_time, tags=tags,
                             run_name=run.info.run_name)
    run_id = copy.info.run_id
    params = [Param(key, value) for key, value in run.data.params.items()]
    for start in range(0, len(params), 100):
        target.log_batch(run_id, params=params[start:start + 100])
    metrics = [Metric(m.key, m.value, m.timestamp, m.step)
               for key in run.data.metrics
               for m in source.get_metric_history(run.info.run_id, key)]
    for start in range(0, len(metrics), _BATCH):
        target.log_batch(run_id, metrics=metrics[start:start + _BATCH])
    if run.inputs and run.inputs.dataset_inputs:
        target.log_inputs(run_id, datasets=list(run.inputs.dataset_inputs))
    if artifacts is not None and any(artifacts.iterdir()):
        with tracking.run_artifact_context(target, run_id):
            target.log_artifacts(run_id, str(artifacts))
    target.set_terminated(run_id, status=run.info.status, end_time=run.info.end_time)
    # Whole now: only this tag makes a later merge skip the run.
    target.set_tag(run_id, MERGED_FROM_TAG, _origin(run))
    target.delete_tag(run_id, MERGING_FROM_TAG)
    return run_id


def _listed(value):
    return [item for item in (value or "").split(",") if item]


def _settle_joined(target, parent_id, new_origins, unfinished, say):
    """Records the source parents that joined `parent_id` and summarises it again.

    Seeds the source parents listed as unfinished stay listed on the parent
    here until a run of them ends (as `pepita migrate-store` joins parents).
    """
    from pepita_keras.store import recorder  # Keras and plots: only when a cell is summarised

    run = target.get_run(parent_id)
    listed = _listed(run.data.tags.get(MERGED_PARENTS_TAG))
    target.set_tag(parent_id, MERGED_PARENTS_TAG,
                   ",".join(listed + [o for o in new_origins if o not in listed]))
    if unfinished:
        recorder.mark_unfinished_seeds(target, parent_id, also=unfinished)
    config = recorder.shipped_config_of(run)
    if config is not None:
        recorder.summarize_cell(target, parent_id, config, force=True)
    say(f"  {run.info.run_name}: the other store's parent of this cell joined the one here "
        f"({parent_id}); its seeds are summarised together")


def merge_store(source, target_uri=None, artifacts_archive=None, say=print,
                max_artifact_bytes=untrusted.DEFAULT_MAX_BYTES):
    """Copies every run of `source` into the store `target_uri` (see module docstring).

    Args:
        source: the store to copy from: a tracking URI or a SQLite `.db` path.
        target_uri: the store to copy into (default `tracking.tracking_uri()`).
        artifacts_archive: a `.tar`/`.tgz` of the source's artifact folders
            (`<experiment>/<run_id>/artifacts/...`), for a store whose
            artifacts are not on this machine; without it, artifacts are read
            from where the source store says they are, if that folder exists
            inside the source store's folder.
        say: progress printer (one line per experiment).
        max_artifact_bytes: the most bytes of artifacts read from the
            archive, and from any one run's folder.

    Returns:
        `{"copied": n, "already_merged": m}` (runs); `"joined"` is added when
        source parents joined a parent already here (not counted as copied),
        `"repaired"` when runs half-copied by a killed merge were copied again.

    Raises:
        UntrustedInputError: before anything is written, for a run id that
            is not MLflow's, an artifact folder outside the source store, or
            an archive with links, devices, escaping names or too much data.
    """
    uri = source_uri(source)
    source_client = tracking.read_client(uri)
    target_uri = tracking.tracking_uri(target_uri)
    target = tracking.client(target_uri)
    source_folder = _source_folder(uri)
    source_root = tracking.store_root(uri)
    counts = {"copied": 0, "already_merged": 0}
    repaired = joined_count = 0
    # One merge into a store at a time: two merges of one source would each copy the runs
    # the other has not finished (and delete each other's half-copied runs).
    with tracking.store_lock(target_uri, ".merge.lock"), \
            tempfile.TemporaryDirectory() as scratch:
        archived = {}
        if artifacts_archive:
            untrusted.extract_archive(artifacts_archive, scratch, max_artifact_bytes)
            archived = {path.parent.name: path for path in pathlib.Path(scratch).rglob("artifacts")
                        if path.is_dir() and len(path.parent.name) == 32}
        # Checked in whole before the first write.
        plan = []
        for experiment in source_client.search_experiments():
            runs = source_client.search_runs([experiment.experiment_id], max_results=50000)
            for run in runs:
                untrusted.check_run_id(run.info.run_id, f"source store {uri}")
            artifacts = {run.info.run_id: archived.get(run.info.run_id) or _local_artifacts(
                run, source_folder, source_root, max_artifact_bytes) for run in runs}
            if runs:
                plan.append((experiment, runs, artifacts))
        for experiment, runs, artifacts in plan:
            experiment_id = tracking.experiment_id(target, experiment.name)
            present = target.search_runs([experiment_id], max_results=50000)
            for run in present:
                if MERGING_FROM_TAG not in run.data.tags:
                    continue
                if MERGED_FROM_TAG in run.data.tags:  # killed after it was whole
                    target.delete_tag(run.info.run_id, MERGING_FROM_TAG)
                    del run.data.tags[MERGING_FROM_TAG]
                else:
                    tracking.delete_run_completely(target, run)
                    repaired += 1
            # origin → the target's run of it (a run here is its own origin).
            merged, parents_by_key = {}, {}
            for run in sorted(present, key=lambda run: run.info.start_time or 0):
                if MERGING_FROM_TAG in run.data.tags:
                    continue
                merged[_origin(run)] = run.info.run_id
                merged.setdefault(run.info.run_id, run.info.run_id)
                for origin in _listed(run.data.tags.get(MERGED_PARENTS_TAG)):
                    merged.setdefault(origin, run.info.run_id)
                if tracking.role(run.data.tags) == "cell":
                    parents_by_key.setdefault(tracking.cell_key(run), run.info.run_id)
            # Parents first, so that a child's parent id is known.
            runs.sort(key=lambda run: (_PARENT_TAG in run.data.tags, run.info.start_time or 0))
            origins = {run.info.run_id: _origin(run) for run in runs}
            copied, joined, unfinished = 0, {}, {}
            for run in runs:
                origin = origins[run.info.run_id]
                if origin in merged or run.info.run_id in merged:
                    counts["already_merged"] += 1
                    continue
                is_cell = tracking.role(run.data.tags) == "cell"
                here = parents_by_key.get(tracking.cell_key(run)) if is_cell else None
                if here is not None:  # the cell has a parent here: its seeds join that one
                    merged[origin] = here
                    joined.setdefault(here, []).append(origin)
                    # Seed numbers only: the tag comes from another store.
                    unfinished.setdefault(here, []).extend(
                        seed for seed in _listed(run.data.tags.get(_UNFINISHED_TAG))
                        if seed.isdigit())
                    continue
                parent = origins.get(run.data.tags.get(_PARENT_TAG), run.data.tags.get(_PARENT_TAG))
                merged[origin] = _copy_run(
                    source_client, target, run, experiment_id, merged.get(parent),
                    artifacts[run.info.run_id])
                if is_cell:
                    parents_by_key[tracking.cell_key(run)] = merged[origin]
                copied += 1
            for parent_id, new_origins in joined.items():
                _settle_joined(target, parent_id, new_origins, unfinished.get(parent_id), say)
            joined_count += sum(len(new_origins) for new_origins in joined.values())
            counts["copied"] += copied
            say(f"{experiment.name}: {copied} runs copied, "
                f"{len(runs) - copied} already there or joined")
    if joined_count:
        counts["joined"] = joined_count
    if repaired:
        counts["repaired"] = repaired
        say(f"{repaired} runs left half-copied by an interrupted merge were copied again")
    return counts
