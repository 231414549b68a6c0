"""What `pepita reproduce --plan` prints: the epochs a command would train, and for how long.

Nothing is trained, created or written. Each asked-for seed's state comes from
its run folder (`<run root>/<run name>/seed<k>/state.json`: finished,
resumable after epoch k, or new); the time per epoch is the median
`epoch_time_s` that earlier seeds of the same run name recorded in the store
(the same settings, so the same work), else that of other runs of the same
rule, architecture and dataset, else unknown. Keras-free: it answers in
seconds.

Example:

```bash
pepita reproduce conv_mnist_pepita --seeds 0-2 --plan
```
"""

import functools
import pathlib
import statistics

from pepita_keras.store import tracking
from pepita_keras.store import seed_state as seed_state_lib

# Where `pepita reproduce` keeps run folders unless told (`--run-root`).
DEFAULT_RUN_ROOT = "runs"
# Runs read per estimate (newest first): enough for a stable median.
_RUNS_READ = 5
# Runs searched per query to find `_RUNS_READ` of this platform among them.
_RUNS_SCANNED = 200
# Seconds per epoch (test pass included) measured on an idle 2-core CPU under TensorFlow,
# used when the store has no run to go by (a new store): README / benchmarks/RESULTS.md for
# the paper nets, the committed store's runs for the others. Keyed (rule or "*",
# architecture, dataset).
SHIPPED_EPOCH_SECONDS = {
    ("*", "fc", "mnist"): 2.4,
    ("*", "conv", "mnist"): 3.3,
    ("ff", "fc", "mnist"): 90.0,
    ("*", "resnet", "mnist"): 6.0,
    ("*", "vit", "mnist"): 6.0,
}


def shipped_epoch_seconds(config):
    """`(seconds per epoch, where it comes from)` from `SHIPPED_EPOCH_SECONDS`, or `(None, "")`."""
    for rule in (config.rule, "*"):
        seconds = SHIPPED_EPOCH_SECONDS.get((rule, config.architecture, config.dataset))
        if seconds is not None:
            return seconds, ("the figure shipped with the package for this net: an idle 2-core "
                             "CPU under TensorFlow; yours may differ")
    return None, ""


def seed_state(cell_dir, seed, config):
    """What a seed's run folder holds: `"new"`, `"finished"`, `"diverged"`, `"resume"` or `"other"`.

    Returns:
        `(status, epochs done, detail)`; `"other"` when the folder was
        trained with other settings (the detail names them), which
        `pepita reproduce` refuses until the folder is renamed.
    """
    state = seed_state_lib.SeedState.load(pathlib.Path(cell_dir) / f"seed{seed}")
    if state is None:
        return "new", 0, ""
    done = state.epoch
    changed = seed_state_lib.changed_settings(state.settings, state.config, config)
    if changed:
        return "other", done, changed
    if state.finished:
        return ("diverged" if state.diverged else "finished"), done, ""
    return "resume", done, ""


def epoch_seconds(config, uri, experiment=None, platform=None):
    """`(median seconds per epoch, where it comes from)`, or `(None, why not)`.

    Args:
        config: the `ExperimentConfig` the command would train.
        uri: the tracking URI (a SQLite file that does not exist is not created).
        experiment: the MLflow experiment of the reproductions.
        platform: the platform whose runs count first (default: this
            machine's, `tracking.likely_platform()`).
    """
    experiment = experiment or tracking.REPRODUCTIONS_EXPERIMENT
    platform = platform or tracking.likely_platform()
    path = tracking.sqlite_path(uri)
    if path is not None and not path.is_file():
        return None, f"no store at {path} yet"
    client = tracking.read_client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None, f"no {experiment!r} experiment in the store"
    role = f"tags.`{tracking.ROLE_TAG}` = 'seed'"
    same = f"attributes.run_name LIKE '{config.run_name}/seed%'"
    tags = tracking.config_tags(config)
    kin = " AND ".join(f"tags.`{key}` = '{value}'" for key, value in sorted(tags.items()))
    # Among a cell's own runs, those that recorded their steps per call come first: older
    # runs made one call per step, whose epochs were up to 1.4× longer (benchmarks/RESULTS.md).
    current = f"tags.`{tracking.STEPS_PER_CALL_TAG}` LIKE '%'"
    searches = []
    for where, described in ((same, f"earlier {config.run_name} seeds"),
                             (kin, f"other {config.rule} {config.architecture} "
                                   f"{config.dataset} runs")):
        searches += [(f"{where} AND {current}", described),
                     (where, f"{described} (one step per call)")]

    @functools.lru_cache(maxsize=None)
    def newest_runs(where):  # each search once, for both passes below
        return client.search_runs([found.experiment_id], f"{role} AND {where}",
                                  max_results=_RUNS_SCANNED,
                                  order_by=["attributes.start_time DESC"])

    def platform_of(run):
        return tracking.run_platform(run.data.tags)

    for on_this_platform in (True, False):
        for where, described in searches:
            runs = newest_runs(where)
            if on_this_platform:
                runs = [run for run in runs if platform_of(run) == platform]
            elif runs:  # the newest run's platform only: a median across platforms means nothing
                runs = [run for run in runs if platform_of(run) == platform_of(runs[0])]
            runs = runs[:_RUNS_READ]
            times = [metric.value for run in runs
                     for metric in client.get_metric_history(run.info.run_id, "epoch_time_s")]
            if times:
                where_from = ("" if on_this_platform else
                              f", recorded on {platform_of(runs[0])}"
                              f", not on this machine's {platform}")
                return statistics.median(times), (
                    f"median of {len(times)} epochs of {len(runs)} {described} in the store"
                    f"{where_from}")
    return None, f"no run of {config.run_name} or of its rule and architecture in the store"


def describe(config, seeds, run_root=None, uri=None, experiment=None):
    """The lines `--plan` prints: one per seed, then the total.

    Args:
        config: the `ExperimentConfig` the command would train.
        seeds: the seeds asked for.
        run_root: the run folders' root (default `DEFAULT_RUN_ROOT`).
        uri: the store (default: `tracking.tracking_uri()`).
        experiment: the MLflow experiment (default: the reproductions').
    """
    uri = tracking.tracking_uri(uri)
    cell_dir = pathlib.Path(run_root or DEFAULT_RUN_ROOT) / config.run_name
    seconds, source = epoch_seconds(config, uri, experiment)
    if seconds is None:
        shipped, shipped_source = shipped_epoch_seconds(config)
        if shipped is not None:
            seconds, source = shipped, f"{source}, so {shipped_source}"
    lines, total_epochs = [], 0
    for seed in seeds:
        status, done, detail = seed_state(cell_dir, seed, config)
        where = f"  seed {seed} ({cell_dir / f'seed{seed}'})"
        if status in ("finished", "diverged"):
            outcome = "finished" if status == "finished" else f"diverged at epoch {done}"
            lines.append(f"{where}: {outcome}; skipped")
            continue
        if status == "other":
            lines.append(f"{where}: trained with other settings ({detail}); refused until "
                         "`pepita migrate-store` (or you) renames that folder")
            continue
        left = config.epochs - done
        total_epochs += left
        start = f"resumes after epoch {done}" if done else "new"
        lines.append(f"{where}: {start}: {_epochs(left)}"
                     + (f", about {_duration(left * seconds)}" if seconds else ""))
    if seconds:
        total = (f"about {_duration(total_epochs * seconds)} for {_epochs(total_epochs)} at "
                 f"{seconds:.1f} s/epoch ({source})")
    else:
        total = f"{_epochs(total_epochs)}; time unknown ({source})"
    header = f"pepita reproduce {config.run_name}: plan (nothing is trained)"
    return [header, *lines, f"  total: {total}"]


def _epochs(count):
    return f"{count} epoch{'s' if count != 1 else ''}"


def _duration(seconds):
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"
