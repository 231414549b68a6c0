"""Collecting the results: MLflow runs → one typed `CellResult` per cell.

`collect(client, experiment)` reads every cell's parent run and its nested
seed runs (the rules for what counts are in `pepita_keras.results`);
rendering them is `pepita_keras.results.render`.
"""

import dataclasses
import math
import sys

import numpy as np

from pepita_keras import config_files
from pepita_keras import experiment_config
from pepita_keras import slowness as slowness_lib
from pepita_keras.store import tracking, untrusted

# A cell reproduces when its mean lies within max(2 paper σ, 0.25 points) of the paper's.
TOLERANCE_SIGMAS = 2.0
TOLERANCE_POINTS = 0.25


@dataclasses.dataclass
class CellResult:
    """Aggregated results of one config.

    Args:
        config: the `ExperimentConfig`.
        finals: final test accuracies (%) of the completed seeds, by seed.
        partial: `{seed: (epochs done, last test accuracy %)}` of unfinished seeds.
        histories: `{seed: {"train_accuracy": [...], "test_accuracy": [...]}}`.
        wall_times: training wall time (s) of completed seeds.
        loads: mean 1-minute load average over the epochs of each completed
            seed (runs logged before it was recorded have none).
        commits: git commits the seeds ran at (with `+dirty` if so).
        hardware: hardware strings of the seed runs.
        command: the command recorded on the parent run.
        diverged: `{seed: epoch}` of seeds that went non-finite (not counted).
        other_runs: `{(run name, differences_text): OtherRun}` of this cell's
            runs with other training settings (not counted).
        outdated_names: names of this cell's parent runs named after an
            earlier version of its config (`pepita migrate-store` renames them).
        platforms: `{platform: CellResult}` of this cell's runs with its own
            settings on platforms other than `tracking.DEFAULT_PLATFORM`
            (e.g. `"jax-gpu"`): shown beside the cell, never averaged into it.
        run_ids: `{seed: MLflow run id}` of the seeds read.
    """

    config: object
    finals: dict = dataclasses.field(default_factory=dict)
    partial: dict = dataclasses.field(default_factory=dict)
    histories: dict = dataclasses.field(default_factory=dict)
    wall_times: list = dataclasses.field(default_factory=list)
    loads: list = dataclasses.field(default_factory=list)
    commits: set = dataclasses.field(default_factory=set)
    hardware: set = dataclasses.field(default_factory=set)
    command: str = ""
    diverged: dict = dataclasses.field(default_factory=dict)
    other_runs: dict = dataclasses.field(default_factory=dict)
    outdated_names: list = dataclasses.field(default_factory=list)
    platforms: dict = dataclasses.field(default_factory=dict)
    run_ids: dict = dataclasses.field(default_factory=dict)

    @property
    def n(self):
        return len(self.finals)

    @property
    def mean(self):
        return float(np.mean(list(self.finals.values()))) if self.finals else None

    @property
    def std(self):
        """Sample std (ddof=1) over seeds; None for fewer than two seeds."""
        if len(self.finals) < 2:
            return None
        return float(np.std(list(self.finals.values()), ddof=1))

    @property
    def slowness(self):
        """`{seed: (acc_max, s)}` of the completed seeds (`pepita_keras.slowness`)."""
        return {seed: slowness_lib.seed_slowness(self.config, self.histories[seed]["test_accuracy"])
                for seed in self.finals if self.histories.get(seed, {}).get("test_accuracy")}

    @property
    def delta_sigma(self):
        """(ours − paper) / paper std, or None."""
        if self.mean is None or not self.config.paper or not self.config.paper[1]:
            return None
        return (self.mean - self.config.paper[0]) / self.config.paper[1]

    @property
    def tolerance(self):
        """max(2 paper σ, 0.25 points), or None without a paper number."""
        if not self.config.paper:
            return None
        return max(TOLERANCE_SIGMAS * self.config.paper[1], TOLERANCE_POINTS)

    @property
    def matches_paper(self):
        """Whether the mean lies within `tolerance` of the paper; None if not comparable."""
        if self.mean is None or self.tolerance is None:
            return None
        # Rounded as shown (2 decimals), so the table and the verdict agree.
        return round(abs(self.mean - self.config.paper[0]), 2) <= round(self.tolerance, 2)


@dataclasses.dataclass
class OtherRun:
    """Runs of a cell whose training settings differ from its config.

    Args:
        differences: `{setting: (this run's value, the config's value)}`.
        finals: final test accuracy (%) of its completed seeds, by seed.
        partial: `{seed: (epochs done, last test accuracy %)}` of its
            unfinished seeds (stopped, or still running).
        diverged: `{seed: epoch}` of its diverged seeds.
    """

    differences: dict
    finals: dict = dataclasses.field(default_factory=dict)
    partial: dict = dataclasses.field(default_factory=dict)
    diverged: dict = dataclasses.field(default_factory=dict)


def table_order(config):
    """Sort key: the paper's layout (FC before conv, MNIST → CIFAR-100, BP → PEPITA), ICLR rows last."""
    return (
        config.name.startswith("iclr_"),
        experiment_config.ARCHITECTURES.index(config.architecture),
        list(experiment_config.DATASETS).index(config.dataset),
        list(experiment_config.RULES).index(config.rule),
        config.name,
    )


def _metric_history(client, run_id, key):
    # Values in step order (1 … N; 0 … N−1 in stores not yet migrated), the
    # last logged value of a step winning.
    return tracking.metric_histories(client, run_id, [key])[key]


def shipped_configs():
    """`{name: ExperimentConfig}` of the repository's configs, in table order."""
    files = config_files.list_config_files([config_files.SHIPPED_CONFIG_DIR])
    loaded = [experiment_config.load_config(path) for path in files.values()]
    return {config.name: config for config in sorted(loaded, key=table_order)}


def collect(client, experiment=None, configs=None, include_smoke=False):
    """Reads the reproductions in an MLflow experiment.

    Args:
        client: an `mlflow.MlflowClient`.
        experiment: experiment name (default `tracking.REPRODUCTIONS_EXPERIMENT`).
        configs: `{name: ExperimentConfig}`; default: the repository's
            shipped configs (`shipped_configs()`).
        include_smoke: also count smoke and synthetic-data runs (tests,
            notebooks), compared
            with each config's `smoke_version()` (or the config itself if it
            is a smoke config).

    Returns:
        `{name: CellResult}` for every config (empty results when not run).
    """
    experiment = experiment or tracking.REPRODUCTIONS_EXPERIMENT
    if configs is None:
        configs = shipped_configs()
    results = {name: CellResult(config) for name, config in configs.items()}
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return results
    runs = client.search_runs([found.experiment_id], max_results=50000)
    # parent run id -> (cell name, OtherRun or None if counted, platform)
    parents = {}
    for run in runs:
        tags = run.data.tags
        cell = results.get(tags.get("pepita.cell"))
        if tracking.role(tags) != "cell" or cell is None:
            continue
        smoke = tracking.tag_is_true(tags.get("pepita.smoke"))
        if smoke and not include_smoke:
            continue
        reference = cell.config
        if smoke and not reference.is_smoke:
            reference = reference.smoke_version()
        differences = experiment_config.settings_differences(
            run.data.params, reference, tracking.param_value)
        synthetic = tracking.tag_is_true(tags.get("pepita.synthetic"))
        if synthetic and not include_smoke:
            # Synthetic data never stands for the paper's dataset.
            differences["data"] = ("synthetic", reference.dataset)
        if not (smoke or synthetic) and (run.info.run_name == reference.name) == bool(differences):
            # `<cell>` with other settings, or `<cell>-custom-…` with the shipped ones.
            cell.outdated_names.append(untrusted.display_text(run.info.run_name, 120))
        if differences:
            # A config changed after a run keeps the run's name: runs of one
            # name with different settings stay apart.
            key = (untrusted.display_text(run.info.run_name, 120),
                   untrusted.display_text(differences_text(differences), 1000))
            other = cell.other_runs.setdefault(key, OtherRun(differences))
            parents[run.info.run_id] = (cell.config.name, other, None)
            continue
        platform = untrusted.display_text(tags.get(tracking.PLATFORM_TAG)
                                          or tracking.DEFAULT_PLATFORM, 40)
        parents[run.info.run_id] = (cell.config.name, None, platform)
        _platform_result(cell, platform).command = untrusted.display_text(
            tags.get("command", ""), 1000)

    def ended_last(run):
        # A seed rerun from scratch (e.g. from another run folder) supersedes its
        # unfinished run: partial runs first, ended ones after, each by start.
        return tracking.seed_ended(run.data.tags), run.info.start_time or 0

    for run in sorted(runs, key=ended_last):
        tags = run.data.tags
        name, other, platform = parents.get(tags.get("mlflow.parentRunId"), (None, None, None))
        if name is None or tracking.role(tags) != "seed":
            continue
        try:
            seed, diverged_epoch, final = _seed_outcome(run)
        except untrusted.UntrustedInputError as error:
            print(f"pepita: skipped a seed run of {name}: {error}", file=sys.stderr)
            continue
        complete = tracking.tag_is_true(tags.get("pepita.complete")) and final is not None
        if other is not None:
            for outcome in (other.partial, other.diverged, other.finals):
                outcome.pop(seed, None)
            if diverged_epoch:
                other.diverged[seed] = int(diverged_epoch)
            elif complete:
                other.finals[seed] = 100 * final
            else:
                accuracy = _metric_history(client, run.info.run_id, "test_accuracy")
                if accuracy:
                    other.partial[seed] = (len(accuracy), 100 * accuracy[-1])
            continue
        cell = _platform_result(results[name], platform)
        run_id = run.info.run_id
        curves = {
            key: _metric_history(client, run_id, key)
            for key in ("train_accuracy", "test_accuracy")
        }
        cell.histories[seed] = curves
        cell.run_ids[seed] = run_id
        commit = tags.get("git.commit", "unknown")
        dirty = tracking.tag_is_true(tags.get("git.dirty"))
        # The latest ended run of a seed is its result (runs come ordered).
        for outcome in (cell.partial, cell.diverged, cell.finals):
            outcome.pop(seed, None)
        cell.commits.add(untrusted.display_text(commit[:10], 10) + ("+dirty" if dirty else ""))
        if tags.get("hardware"):
            cell.hardware.add(untrusted.display_text(tags["hardware"]))
        if diverged_epoch:
            cell.diverged[seed] = diverged_epoch
        elif complete:
            cell.finals[seed] = 100 * final
            cell.wall_times.append(run.data.metrics.get("wall_time_s", float("nan")))
            load = _metric_history(client, run_id, "load_avg_1min")
            if load:
                cell.loads.append(float(np.mean(load)))
        elif curves["test_accuracy"]:
            cell.partial[seed] = (len(curves["test_accuracy"]), 100 * curves["test_accuracy"][-1])
    return results


def _seed_outcome(run):
    """`(seed, diverged epoch or None, final test accuracy or None)` of a seed run.

    A merged store is data: a seed or epoch that is not an integer makes the run
    unusable (UntrustedInputError naming it); a final accuracy that is missing or
    not finite leaves the seed unfinished rather than counted.
    """
    where = f"run {untrusted.display_text(run.info.run_id, 40)}"
    tags = run.data.tags
    seed = untrusted.integer_tag(tags, "pepita.seed", where)
    if seed is None:
        raise untrusted.UntrustedInputError(f"{where}: it has no pepita.seed tag")
    diverged = untrusted.integer_tag(tags, "pepita.diverged_epoch", where)
    final = run.data.metrics.get("final_test_accuracy")
    if final is not None and not math.isfinite(final):
        final = None
    return seed, diverged, final


def _platform_result(cell, platform):
    """The `CellResult` that runs of `cell` on `platform` count in."""
    if platform == tracking.DEFAULT_PLATFORM:
        return cell
    return cell.platforms.setdefault(platform, CellResult(cell.config))


def differences_text(differences):
    """`"key: this run's value vs the config's; …"` of `settings_differences` output."""
    return "; ".join(f"{key}: {ours} vs {theirs}"
                     for key, (ours, theirs) in sorted(differences.items()))
