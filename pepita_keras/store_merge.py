"""Copying the runs of one MLflow store into another (`pepita merge-store`).

Reproductions trained on another machine (a GPU machine without this
repository's store, say) are recorded there in a store of their own; this
module brings them into the committed one. Each run is copied whole: name,
tags, params, the full history of every metric with its steps and
timestamps, dataset inputs, status, start and end times, nesting (a seed
stays under its cell's parent run) and its artifacts, read from the source
store's artifact folders or from an archive of them. MLflow logged models
are not copied (their weights are never committed).

A copied run carries the tag `pepita.merged_from` (the source run's id), so
merging the same store again copies only runs it has not copied before.
Runs keep their `pepita.platform` tag, by which `pepita results` shows runs
of one cell on different platforms side by side.

Example:

```python
from pepita_keras import store_merge
store_merge.merge_store("gpu/tracking.db", "sqlite:///reproductions/results/tracking.db",
                        artifacts_archive="gpu/artifacts.tgz")
```
"""

import pathlib
import tarfile
import tempfile

from pepita_keras import tracking

MERGED_FROM_TAG = "pepita.merged_from"
_PARENT_TAG = "mlflow.parentRunId"
_BATCH = 1000


def source_uri(source):
    """A tracking URI for `source`: a URI as given, a path to a `.db` file as SQLite."""
    if "://" in str(source):
        return str(source)
    path = pathlib.Path(source).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no MLflow store at {path} (give a SQLite .db file or a URI)")
    return f"sqlite:///{path}"


def _artifact_folders(archive, into):
    """`{run_id: folder}` of the `<run_id>/artifacts` folders in a tar archive."""
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return {path.parent.name: path for path in pathlib.Path(into).rglob("artifacts")
            if path.is_dir() and len(path.parent.name) == 32}


def _local_artifacts(run):
    path = pathlib.Path(run.info.artifact_uri.removeprefix("file://"))
    return path if path.is_dir() else None


def _copy_run(source, target, run, experiment_id, parent_id, artifacts):
    from mlflow.entities import Metric, Param

    tags = dict(run.data.tags)
    tags.pop(_PARENT_TAG, None)
    if parent_id:
        tags[_PARENT_TAG] = parent_id
    tags[MERGED_FROM_TAG] = run.info.run_id
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
        target.log_artifacts(run_id, str(artifacts))
    target.set_terminated(run_id, status=run.info.status, end_time=run.info.end_time)
    return run_id


def merge_store(source, target_uri=None, artifacts_archive=None, say=print):
    """Copies every run of `source` into the store `target_uri` (see module docstring).

    Args:
        source: the store to copy from: a tracking URI or a SQLite `.db` path.
        target_uri: the store to copy into (default `tracking.tracking_uri()`).
        artifacts_archive: a `.tar`/`.tgz` of the source's artifact folders
            (`<experiment>/<run_id>/artifacts/...`), for a store whose
            artifacts are not on this machine; without it, artifacts are read
            from where the source store says they are, if that folder exists.
        say: progress printer (one line per experiment).

    Returns:
        `{"copied": n, "already_merged": m}` (runs).
    """
    source_client = tracking.client(source_uri(source))
    target = tracking.client(target_uri)
    counts = {"copied": 0, "already_merged": 0}
    with tempfile.TemporaryDirectory() as scratch:
        archived = _artifact_folders(artifacts_archive, scratch) if artifacts_archive else {}
        for experiment in source_client.search_experiments():
            runs = source_client.search_runs([experiment.experiment_id], max_results=50000)
            if not runs:
                continue
            experiment_id = tracking.experiment_id(target, experiment.name)
            merged = {
                run.data.tags[MERGED_FROM_TAG]: run.info.run_id
                for run in target.search_runs([experiment_id], max_results=50000)
                if MERGED_FROM_TAG in run.data.tags
            }
            # Parents first, so that a child's parent id is known.
            runs.sort(key=lambda run: _PARENT_TAG in run.data.tags)
            copied = 0
            for run in runs:
                if run.info.run_id in merged:
                    counts["already_merged"] += 1
                    continue
                parent = run.data.tags.get(_PARENT_TAG)
                artifacts = archived.get(run.info.run_id) or _local_artifacts(run)
                merged[run.info.run_id] = _copy_run(
                    source_client, target, run, experiment_id, merged.get(parent), artifacts)
                copied += 1
            counts["copied"] += copied
            say(f"{experiment.name}: {copied} runs copied, "
                f"{len(runs) - copied} already there")
    return counts
