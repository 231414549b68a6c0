"""The `pepita` command line: every subcommand's arguments and what it prints.

```
pepita list
pepita data --data-dir /data                 # what is found where; --fetch mnist downloads
pepita show fc_mnist_drtp --json
pepita reproduce fc_mnist_pepita --seeds 0,1 --data-dir /data
pepita results
pepita figures --output reproductions/results/figures
pepita migrate-store --tracking-uri sqlite:///reproductions/results/tracking.db
pepita tune pepita_fc_mnist --max-trials 10
pepita tune-report
```

All argument parsing lives here; the work is done by the library modules
(`reproduce`, `results`, `migrate`, `tuning.commands`), which know nothing
of `argparse`. A command imports the module it runs when it runs, so
`pepita --help` (and a typo in a command line) answers at once, without
loading TensorFlow, Keras or MLflow.

User errors. A mistake in what the user typed or pointed at (an unknown
config, a malformed `--seeds`, missing data, a bad tuning config) ends the
command like an argparse error: one `pepita <command>: error: <message>` on
stderr and exit status 2, no traceback. The convention that marks such
errors: a `ValueError` or `FileNotFoundError` (e.g.
`datasets.DatasetNotFoundError`) *raised explicitly by package code* — the
package validates user input with `raise ValueError(message)` throughout,
and those messages name the problem and the fix. Anything else keeps its
traceback, because it is a bug or an environment problem to investigate: a
TypeError, a ValueError that Python, TensorFlow, Keras or MLflow raised
(e.g. `int("x")` inside package code), or an error from a user's own config
file. `PEPITA_TRACEBACK=1` shows the traceback of user errors too.
"""

import argparse
import linecache
import os
import pathlib
import sys

from pepita_keras import __version__

STORE_HELP = "MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)"


# ---------------------------------------------------------------------------
# Argument values.
# ---------------------------------------------------------------------------
# The most seeds one command names (a range is expanded before anything runs).
MAX_SEEDS = 1000


def parse_seeds(text):
    """`"0,1,2"` or `"0-4"` → list of ints.

    Raises:
        ValueError: if `text` is malformed, repeats a seed or has a negative one.
    """
    seeds = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part[1:]:
                low, high = part.split("-", 1)
                if int(high) - int(low) + 1 > MAX_SEEDS:
                    raise OverflowError
                seeds.extend(range(int(low), int(high) + 1))
            elif part:
                seeds.append(int(part))
    except ValueError:
        raise ValueError(f"--seeds must look like '0,1,2' or '0-4'; received {text!r}.")
    except OverflowError:
        raise ValueError(f"--seeds names more than {MAX_SEEDS} seeds ({text!r}); a range is "
                         "trained seed by seed, so ask for what you will run.") from None
    if len(seeds) > MAX_SEEDS:
        raise ValueError(f"--seeds names {len(seeds)} seeds; at most {MAX_SEEDS} per command.")
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0 or max(seeds) >= 2**32:
        raise ValueError("--seeds must list distinct integers in [0, 2**32) (NumPy's and "
                         f"Keras's seed range); received {text!r}.")
    return seeds


def non_empty(text):
    """argparse `type` for names: non-empty text."""
    if not str(text).strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def positive_int(text):
    """argparse `type` for counts: a positive integer."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; received {text!r}")
    return value


def _given(**options):
    # Options left unset on the command line keep the library's defaults.
    return {name: value for name, value in options.items() if value is not None}


def configure(config, smoke=False, epochs=None, train_examples=None, test_examples=None,
              overrides=()):
    """Applies the `pepita reproduce` options to a loaded config.

    Args:
        config: an `ExperimentConfig`.
        smoke: use its smoke settings (`--smoke`).
        epochs, train_examples, test_examples: `--epochs`,
            `--train-examples`, `--test-examples` (None: unchanged).
        overrides: `--set key=value` strings.

    Returns:
        The changed `ExperimentConfig`.
    """
    config = config.with_overrides(overrides)
    if smoke:
        overridden = sorted({str(a).partition("=")[0].strip() for a in overrides}
                            & {"epochs", "train_examples", "test_examples"})
        if overridden:
            raise ValueError(
                f"--smoke sets {', '.join(overridden)} itself, so --set {overridden[0]}=… would "
                f"be ignored; use --set smoke.{overridden[0]}=… (or --{overridden[0].replace('_', '-')}) "
                "instead.")
        config = config.smoke_version()
    changes = _given(epochs=epochs, train_examples=train_examples, test_examples=test_examples)
    return config.replace(**changes) if changes else config


# ---------------------------------------------------------------------------
# Commands: each runs the library and prints its outcome.
# ---------------------------------------------------------------------------
def list_command(args):
    """`pepita list`: every reproduction config with its paper number and settings."""
    from pepita_keras import config_files, experiment_config

    configs = experiment_config.list_configs()
    if not configs:
        print("No configs found in: " + ", ".join(map(str, config_files.config_dirs())))
        return 1
    rows = []
    for name in configs:
        config = experiment_config.load_config(configs[name])
        paper = f"{config.paper[0]:.2f} ± {config.paper[1]:.2f}" if config.paper else "—"
        rows.append((name, config.label, f"paper {paper}",
                     f"{config.epochs} epochs, lr {config.learning_rate}, batch {config.batch_size}"))
    # Every column as wide as its longest entry, so long names and labels still line up.
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    return 0


def show_command(args):
    """`pepita show <config>`: the resolved config, every value (`--json` for machines)."""
    import json

    from pepita_keras import experiment_config

    config = configure(experiment_config.load_config(args.config), args.smoke,
                       overrides=args.overrides)
    flat = config.flatten()
    if args.json:
        print(json.dumps(dict(flat, run_name=config.run_name), indent=2, default=str))
        return 0
    print(f"{config.name} — {config.label} (runs as {config.run_name})")
    width = max(len(key) for key in flat)
    for key, value in flat.items():
        if key == "notes":
            continue
        print(f"  {key.ljust(width)}  {value}")
    if config.notes:
        print(f"  notes: {config.notes}")
    return 0


def reproduce_command(args):
    """`pepita reproduce`: trains (or resumes) each named cell, one after another.

    Every cell is loaded and checked before the first one trains, so a typo in the
    third name fails in one line instead of after hours.
    """
    from pepita_keras import experiment_config

    configs = [configure(experiment_config.load_config(name), args.smoke, args.epochs,
                         args.train_examples, args.test_examples, args.overrides)
               for name in args.config]
    failed = [config.name for config in configs if reproduce_cell(args, config)]
    if len(configs) > 1 and failed:
        print(f"No seed completed in: {', '.join(failed)}.", file=sys.stderr)
    return 1 if failed else 0


def reproduce_cell(args, config):
    """One cell of `pepita reproduce`; returns 1 when no seed completed, else 0."""
    from pepita_keras.store import tracking

    if args.run_root is not None and pathlib.Path(args.run_root).exists() \
            and not pathlib.Path(args.run_root).is_dir():
        raise ValueError(f"--run-root {args.run_root} is a file; it names the folder of the "
                         "run folders (created if missing).")
    # The cell's own seed list unless told (`pepita show` lists it; the table's command uses it).
    seeds = parse_seeds(args.seeds) if args.seeds is not None else list(config.seeds)
    if args.plan:
        from pepita_keras import plan

        print("\n".join(plan.describe(config, seeds, args.run_root,
                                      args.tracking_uri, args.experiment)))
        return 0
    from pepita_keras import reproduce

    parent, results = reproduce.reproduce(
        config, seeds, data_dir=args.data_dir,
        tracking_uri=args.tracking_uri, synthetic=args.synthetic, verify=not args.no_verify,
        verbose=args.verbose, system_metrics=args.system_metrics,
        **_given(run_root=args.run_root, experiment=args.experiment),
    )
    print(f"{config.run_name}: MLflow parent run {parent} in "
          f"{tracking.tracking_uri(args.tracking_uri)}")
    for result in results:
        if result.diverged_epoch:
            outcome = f"DIVERGED at epoch {result.diverged_epoch} (not counted)"
        else:
            outcome = f"final test accuracy {100 * result.final_test_accuracy:.2f}%"
        print(f"  seed {result.seed}: {outcome} ({result.wall_time_s:.0f} s, "
              f"run {result.run_id})")
    if not config.matches_shipped():
        print(f"  (settings differ from the shipped {config.name!r} config: "
              f"recorded as {config.run_name!r}, not counted for the paper cell)")
    if all(result.diverged_epoch for result in results):
        print("No seed completed.", file=sys.stderr)
        return 1
    return 0


def is_clone():
    """Whether the working folder is a clone of pepita_keras (it has `reproductions/results`)."""
    return pathlib.Path("reproductions", "results").is_dir()


def in_clone(default):
    """`default` (a path inside a clone's `reproductions/results`) when the working folder
    is a clone of pepita_keras, else a ValueError asking for `--output`.

    Outside a clone the default would create `./reproductions/results/…` in whatever
    folder the command runs in.
    """
    if not is_clone():
        raise ValueError(
            f"{os.getcwd()} is not a clone of pepita_keras (no reproductions/results), so "
            f"the default output {default} would be made up here; pass --output <path>.")
    return default


def results_command(args):
    """`pepita results`: regenerates the results table from the MLflow store."""
    from pepita_keras import results
    from pepita_keras.store import tracking

    uri = tracking.tracking_uri(args.tracking_uri)
    output = args.output or in_clone(results.DEFAULT_OUTPUT)
    cells = results.collect(tracking.read_client(uri), args.experiment,
                            include_smoke=args.include_smoke)
    try:
        # The table names the store as the user gave it, not this machine's path.
        readme = results.write_results(cells, tracking_uri=tracking.named_uri(args.tracking_uri),
                                       plots=not args.no_plots,
                                       force=args.force, output=output)
    except results.ShrinkingResultsError as error:
        print(f"pepita results: error: {error}", file=sys.stderr)
        return 1
    if args.output is None and pathlib.Path("README.md").is_file():
        # The committed table: the repository README's results block follows it.
        if results.update_readme("README.md", results.table_rows(cells)):
            print("Updated the results block of README.md.")
    done = sum(1 for cell in cells.values() if cell.n)
    partial = sum(1 for cell in cells.values() if cell.partial and not cell.n)
    print(f"Wrote {readme} and {readme.parent / 'results.csv'}: {done} cells with completed "
          f"seeds, {partial} partial, {len(cells) - done - partial} not run.")
    outdated = sorted(name for cell in cells.values() for name in cell.outdated_names)
    if outdated:
        print(f"{len(outdated)} runs are named after an earlier version of their config "
              f"({', '.join(outdated)}); `pepita migrate-store` renames them and their run "
              "folders (the table is right either way).")
    return 0


def data_command(args):
    """`pepita data`: where each dataset is looked for and found; `--fetch NAME` downloads it."""
    from pepita_keras import data_fetch

    if args.fetch:
        target = args.data_dir or os.environ.get("PEPITA_DATA_DIR")
        if not target:
            raise ValueError("--fetch needs a folder: pass --data-dir DIR (or set "
                             "PEPITA_DATA_DIR).")
        folder = data_fetch.fetch(args.fetch, target)
        print(f"{args.fetch} is in {folder}; train with --data-dir {target} "
              f"(or PEPITA_DATA_DIR={target}).")
        return 0
    for line in data_fetch.status_lines(args.data_dir):
        print(line)
    return 0


def figures_command(args):
    """`pepita figures`: accuracy curves per rule, alignment angle, slowness, ours vs paper."""
    from pepita_keras import figures, results
    from pepita_keras.store import tracking

    output = args.output or in_clone(figures.DEFAULT_OUTPUT)
    client = tracking.read_client(tracking.tracking_uri(args.tracking_uri))
    cells = results.collect(client, **_given(experiment=args.experiment))
    paths = figures.write_figures(cells, client, output, force=args.force)
    if not paths:
        print(f"No completed seeds in {tracking.named_uri(args.tracking_uri)}: no figures "
              "written.",
              file=sys.stderr)
        return 1
    print(f"Wrote {len(paths)} figures to {output}: " + ", ".join(p.name for p in paths))
    return 0


def ui_command(args):
    """`pepita ui`: the MLflow UI on a private copy of a store (the store is never changed)."""
    import subprocess

    from pepita_keras.store import tracking

    given = args.tracking_uri or (f"sqlite:///{tracking.COMMITTED_STORE}"
                                  if pathlib.Path(tracking.COMMITTED_STORE).is_file() else None)
    uri = tracking.tracking_uri(given)
    served = tracking.read_copy(uri) if tracking.sqlite_path(uri) else uri
    # Relative artifact locations (the committed store's) resolve against the repository root.
    root = tracking.store_root(uri) or pathlib.Path.cwd()
    print(f"MLflow UI on a private copy of {tracking.named_uri(given)} (the store itself is "
          f"never written): http://{args.host}:{args.port}  (Ctrl-C stops it)", flush=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", served,
               "--host", args.host, "--port", str(args.port), "--workers", "1"]
    environment = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    return subprocess.call(command, cwd=root, env=environment)


def migrate_command(args):
    """`pepita migrate-store`: upgrades a store written by an older version."""
    from pepita_keras.store import migrate, tracking

    uri = tracking.tracking_uri(args.tracking_uri)
    report = migrate.migrate_store(uri, data_dir=args.data_dir,
                                   rebuild_artifacts=not args.no_artifacts, stream=sys.stdout)
    print(f"Migrated {uri}: " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                          for k, v in report.items()))
    root = tracking.store_root(uri)
    if root is not None:
        print(f"Browse it from {root}: pepita ui")
    return 0


def merge_command(args):
    """`pepita merge-store`: copies the runs of another store into this one."""
    from pepita_keras.store import merge as store_merge, tracking

    uri = tracking.tracking_uri(args.tracking_uri)
    counts = store_merge.merge_store(args.source, uri, artifacts_archive=args.artifacts,
                                     **_given(max_artifact_bytes=args.max_artifact_bytes))
    joined = (f", {counts['joined']} parent run(s) joined the cell's parent already there"
              if counts.get("joined") else "")
    print(f"Merged {args.source} into {uri}: {counts['copied']} runs copied, "
          f"{counts['already_merged']} already merged{joined}. `pepita results` shows them.")
    return 0


def tune_command(args):
    """`pepita tune`: runs (or resumes) a search and prints its best trials."""
    from pepita_keras.tuning import commands, tuners

    tuner, config, wall = commands.run_search(
        args.config, tuner=args.tuner, max_trials=args.max_trials, epochs=args.epochs,
        smoke=args.smoke, project_name=args.project_name, overwrite=args.overwrite,
        data_dir=args.data_dir, seed=args.seed, experiment=args.experiment,
        train_examples=args.train_examples, val_examples=args.val_examples,
        synthetic=args.synthetic, tracking_uri=args.tracking_uri,
        **_given(directory=args.directory),
    )
    if tuners.is_distributed() and not tuners.is_chief():
        print(f"worker {os.environ.get('KERASTUNER_TUNER_ID')} done in {wall:.0f} s")
        return 0
    # Failed trials have no score; only scored ones are listed.
    best = [t for t in tuners.trial_summary(tuner, 3) if t["score"] is not None]
    print(f"\nSearch {config.name!r}: {len(tuner.oracle.trials)} trials, {wall:.0f} s "
          f"in this process. Best {config.objective}:")
    if not best:
        print(f"pepita tune: no trial of {config.name!r} completed with a score; "
              "see the trial errors above.", file=sys.stderr)
        return 1
    for trial in best:
        # keras-tuner counts trials from 1 on screen ("Trial #2"), its ids from 0.
        number = f" (keras-tuner's Trial #{int(trial['trial_id']) + 1})" \
            if str(trial["trial_id"]).isdigit() else ""
        print(f"  trial_{trial['trial_id']}{number}: {trial['score']:.4f}  "
              f"{trial['hyperparameters']}  (run {tuner.trial_run_id(trial['trial_id'])})")
    print(f"MLflow: {tuner.tracking_uri}, experiment {tuner.experiment!r}, search run "
          f"{tuner.parent_run_id} ({len(tuner.oracle.trials)} trial runs nested under it)")
    return 0


def tune_report_command(args):
    """`pepita tune-report`: prints (and writes) the best trials of every search."""
    from pepita_keras.tuning import report

    output = args.output
    if output is None:
        # The committed report in a clone; elsewhere only printed (never made up here).
        output = report.DEFAULT_REPORT if is_clone() else "-"
    try:
        text = report.write_report(output, args.experiment, args.include_smoke, args.top,
                                   args.tracking_uri, force=args.force)
    except report.ShrinkingReportError as error:
        print(f"pepita tune-report: error: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    if output != "-":
        print(f"\nwritten to {output}")
    return 0


# ---------------------------------------------------------------------------
# The parser.
# ---------------------------------------------------------------------------
def _add_list_and_reproduce(subparsers):
    subparsers.add_parser("list", help="list the reproduction configs").set_defaults(
        func=list_command)

    parser = subparsers.add_parser(
        "show", help="print a config's resolved settings (what `reproduce` would train)")
    parser.add_argument("config", help="config name (see `pepita list`) or path to a .py file")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="as for `pepita reproduce`")
    parser.add_argument("--smoke", action="store_true", help="its smoke version")
    parser.add_argument("--json", action="store_true", help="as JSON")
    parser.set_defaults(func=show_command)

    parser = subparsers.add_parser(
        "reproduce", help="run (or resume) one paper cell, tracked in MLflow",
        description="Train one config for each seed; one MLflow parent run per cell, "
                    "one nested run per seed. Rerun the same command to resume.",
    )
    parser.add_argument("config", nargs="+",
                        help="config name(s) (see `pepita list`) or .py path(s); several cells "
                             "train one after another")
    parser.add_argument("--seeds", default=None,
                        help="comma list or range, e.g. 0,1,2 or 0-4 (default: the cell's seeds, "
                             "as `pepita show` lists them)")
    parser.add_argument("--data-dir", default=None,
                        help="dataset folder (default: $PEPITA_DATA_DIR, then TFDS)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny subset and 1 epoch (the config's smoke settings)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="override the epochs")
    parser.add_argument("--train-examples", type=positive_int, default=None,
                        help="keep only the first N training examples")
    parser.add_argument("--test-examples", type=positive_int, default=None,
                        help="keep only the first N test examples")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override any config field, e.g. --set learning_rate=0.05 "
                             "--set rule_kwargs.feedback_scale=0.1 (repeatable; the run is "
                             "then recorded as <cell>-custom-<digest>)")
    parser.add_argument("--synthetic", action="store_true",
                        help="random learnable data shaped like the dataset (no files needed)")
    parser.add_argument("--no-verify", action="store_true", help="skip dataset checksums")
    parser.add_argument("--run-root", default=None,
                        help="folder for checkpoints/state (default: ./runs)")
    parser.add_argument("--tracking-uri", default=None, help=STORE_HELP)
    parser.add_argument("--experiment", default=None, type=non_empty,
                        help="MLflow experiment name (default: pepita-reproductions)")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2,
                        help="0 silent, 1 Keras progress bar, 2 one line per epoch and a "
                             "live progress line within it (default)")
    parser.add_argument("--system-metrics", action="store_true",
                        help="also record MLflow's system metrics (CPU, memory, GPU) per seed")
    parser.add_argument("--plan", action="store_true",
                        help="print the epochs each seed would train and the estimated time "
                             "(from the epoch times the store recorded); train nothing")
    parser.set_defaults(func=reproduce_command)


def _add_results_and_migrate(subparsers):
    parser = subparsers.add_parser(
        "results", help="build reproductions/results/README.md + results.csv from MLflow")
    parser.add_argument("--output", default=None,
                        help="output folder (default: reproductions/results)")
    parser.add_argument("--tracking-uri", default=None, help=STORE_HELP)
    parser.add_argument("--experiment", default=None, type=non_empty,
                        help="MLflow experiment (default: pepita-reproductions)")
    parser.add_argument("--include-smoke", action="store_true", help="count smoke runs too")
    parser.add_argument("--no-plots", action="store_true", help="skip the curve PNGs")
    parser.add_argument("--force", action="store_true",
                        help="replace the table even if the store has fewer completed seeds")
    parser.set_defaults(func=results_command)

    parser = subparsers.add_parser(
        "data", help="show where each dataset is looked for and found (checksums); "
                     "--fetch NAME downloads it")
    parser.add_argument("--data-dir", default=None,
                        help="the data folder (default: $PEPITA_DATA_DIR)")
    parser.add_argument("--fetch", default=None,
                        choices=("mnist", "fashion_mnist", "cifar10", "cifar100"),
                        help="download this dataset into DATA_DIR/<name>, checksums verified")
    parser.set_defaults(func=data_command)

    parser = subparsers.add_parser(
        "figures", help="draw accuracy curves per rule, the F alignment angle, slowness and "
                        "ours-vs-paper from a store")
    parser.add_argument("--output", default=None,
                        help="folder for the figures (default, in a clone: "
                             "reproductions/results/figures)")
    parser.add_argument("--force", action="store_true",
                        help="replace figures already in the output folder")
    parser.add_argument("--tracking-uri", default=None, help=STORE_HELP)
    parser.add_argument("--experiment", default=None, type=non_empty,
                        help="MLflow experiment (default: pepita-reproductions)")
    parser.set_defaults(func=figures_command)

    parser = subparsers.add_parser(
        "ui", help="browse a store in the MLflow UI without changing it (a private copy)",
        description="Starts `mlflow ui` on a private copy of the store, from the folder its "
                    "artifacts resolve against, so no MLflow version can upgrade or lock the "
                    "store itself. Default store: the committed one in a clone, else "
                    "MLFLOW_TRACKING_URI / ./mlflow.db.")
    parser.add_argument("--tracking-uri", default=None, help=STORE_HELP)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=positive_int, default=5000)
    parser.set_defaults(func=ui_command)

    parser = subparsers.add_parser(
        "migrate-store", help="upgrade an MLflow store written by an older pepita_keras",
        description="Moves artifacts to a location relative to the repository (committed "
                    "store), renames runs and tags to the current vocabulary, moves "
                    "per-epoch metrics to steps 1..N, names each cell's runs (and moves "
                    "their run folders) as today's configs name them, and rebuilds missing "
                    "artifacts from the logged metrics. Safe to run again. Back the store "
                    "up first.")
    parser.add_argument("--tracking-uri", default=None, help=STORE_HELP)
    parser.add_argument("--data-dir", default=None,
                        help="dataset folder: real-data seed runs get their dataset inputs")
    parser.add_argument("--no-artifacts", action="store_true",
                        help="only move locations and upgrade runs; rebuild no artifacts")
    parser.set_defaults(func=migrate_command)

    parser = subparsers.add_parser(
        "merge-store", help="copy the runs of another MLflow store (e.g. a GPU machine's) into this one",
        description="Copies every run of SOURCE (names, tags, params, metric histories, "
                    "dataset inputs, nesting, artifacts; not logged models) into the store. "
                    "Runs copied before are skipped, so merging again is safe; a merge "
                    "that was interrupted is repaired by running it again. The other "
                    "store is read as data: artifacts only from its own folder or the "
                    "archive, regular files only, within --max-artifact-bytes.")
    parser.add_argument("source", help="the other store: a SQLite .db file or a tracking URI")
    parser.add_argument("--max-artifact-bytes", type=positive_int, default=None,
                        help="the most bytes of artifacts read from the archive or from one "
                             "run's folder (default 1 GiB)")
    parser.add_argument("--artifacts", default=None,
                        help="a .tgz of the other store's artifact folders, when they are "
                             "not on this machine")
    parser.add_argument("--tracking-uri", default=None, help=STORE_HELP)
    parser.set_defaults(func=merge_command)


def _add_tuning(subparsers):
    parser = subparsers.add_parser(
        "tune", help="hyperparameter search (keras-tuner), every trial in MLflow",
        description="Search hyperparameters of a rule with keras-tuner. CONFIG is a tuning "
                    "config (reproductions/tuning/), a reproduction config name (`pepita "
                    "list`) or a .py file. Rerun with the same --directory to resume.",
    )
    parser.add_argument("config", help="tuning or reproduction config name, or .py path")
    parser.add_argument("--tuner", choices=("random", "hyperband", "bayesian"), default=None,
                        help="search algorithm (default: the config's)")
    parser.add_argument("--max-trials", type=positive_int, default=None,
                        help="number of trials (Hyperband: a cap)")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="epochs per trial (Hyperband: max_epochs)")
    parser.add_argument("--train-examples", type=positive_int, default=None)
    parser.add_argument("--val-examples", type=positive_int, default=None)
    parser.add_argument("--seed", type=int, default=None, help="oracle and trial seed (0 ok)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny search (few examples, 1 epoch, 2 trials) for tests")
    parser.add_argument("--directory", default=None,
                        help="keras-tuner state folder (default: tuning)")
    parser.add_argument("--project-name", default=None,
                        help="keras-tuner project (default: the config name)")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard a previous search of this project")
    parser.add_argument("--data-dir", default=None, help="dataset folder (else $PEPITA_DATA_DIR)")
    parser.add_argument("--synthetic", action="store_true",
                        help="random learnable data shaped like the dataset (no files needed); "
                             "recorded as such in the runs' datasets")
    parser.add_argument("--tracking-uri", default=None, help=STORE_HELP)
    parser.add_argument("--experiment", default=None, type=non_empty,
                        help="MLflow experiment (default: pepita-tuning)")
    parser.set_defaults(func=tune_command)

    parser = subparsers.add_parser(
        "tune-report", help="table of the best configurations found by `pepita tune`",
        description="Reads the tuning searches from MLflow, prints and writes a markdown report.",
    )
    parser.add_argument("--experiment", default=None, type=non_empty,
                        help="MLflow experiment (default: pepita-tuning)")
    parser.add_argument("--output", default=None,
                        help="markdown file written (default: reproductions/results/tuning.md); "
                             "'-' for none")
    parser.add_argument("--top", type=positive_int, default=5, help="trials listed per search")
    parser.add_argument("--include-smoke", action="store_true", help="include --smoke searches")
    parser.add_argument("--tracking-uri", default=None, help=STORE_HELP)
    parser.add_argument("--force", action="store_true",
                        help="replace the report even if it lists searches the store lacks")
    parser.set_defaults(func=tune_report_command)


def build_parser():
    """Builds the `pepita` argument parser (imports nothing beyond the standard library).

    Returns:
        An `argparse.ArgumentParser`; each subcommand sets `func`, the
        function that runs it and returns the exit code.
    """
    parser = argparse.ArgumentParser(
        prog="pepita",
        description="PEPITA and its rule family: paper reproductions, tracking, tuning.",
        epilog="Run `pepita COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"pepita_keras {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_list_and_reproduce(subparsers)
    _add_results_and_migrate(subparsers)
    _add_tuning(subparsers)
    return parser


# ---------------------------------------------------------------------------
# Running a command.
# ---------------------------------------------------------------------------
# Commands that load Keras and its backend (TensorFlow's start-up lines filtered).
_TRAINING_COMMANDS = ("reproduce", "tune", "migrate-store")
# What a command may raise for bad user input (see the module docstring).
USER_ERROR_TYPES = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
                    IsADirectoryError)
_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent


def is_user_error(error):
    """Whether `error` is a message for the user rather than a bug.

    True for a `USER_ERROR_TYPES` exception raised by an explicit `raise`
    statement in this package's code (the innermost traceback frame).

    Args:
        error: a caught exception (with its `__traceback__`).
    """
    if not isinstance(error, USER_ERROR_TYPES):
        return False
    traceback = error.__traceback__
    if traceback is None:
        return False
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    filename = traceback.tb_frame.f_code.co_filename
    try:
        pathlib.Path(filename).resolve().relative_to(_PACKAGE_DIR)
    except ValueError:
        return False  # raised by Python, a library, or a user's config file
    line = linecache.getline(filename, traceback.tb_lineno).strip()
    return line.startswith("raise ")


def main(argv=None):
    """Entry point of the `pepita` console script.

    Args:
        argv: argument list (defaults to `sys.argv[1:]`).

    Returns:
        The process exit code: the command's, or 2 for a usage or user
        error (printed as `pepita <command>: error: <message>`).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    from pepita_keras import console

    if args.command in _TRAINING_COMMANDS and not getattr(args, "plan", False):
        with console.quiet_native_startup():
            import keras  # noqa: F401  (loads the backend once, quietly)
    try:
        # `reproduce` stops at its next checkpointed epoch on a first Ctrl-C / SIGTERM.
        with console.graceful_interrupts(at_safe_points=args.command == "reproduce"):
            return int(args.func(args) or 0)
    except BrokenPipeError:
        # Output piped into `head` and the like: the reader left, nothing to report.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"\n{parser.prog} {args.command}: interrupted. Runs that were training are "
              "marked KILLED in MLflow and every completed epoch is checkpointed; "
              f"rerun the same command to resume:\n  {_command_line(argv)}", file=sys.stderr)
        return 130
    except USER_ERROR_TYPES as error:
        if not is_user_error(error) or os.environ.get("PEPITA_TRACEBACK"):
            raise
        print(f"{parser.prog} {args.command}: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        problem = _store_problem(error, args)
        if problem is None or os.environ.get("PEPITA_TRACEBACK"):
            raise
        print(f"{parser.prog} {args.command}: error: {problem}", file=sys.stderr)
        return 1


def _store_problem(error, args):
    """`tracking.store_problem` of a database error, or None (also for anything else).

    MLflow raises some of them wrapped (an `MlflowException` from the SQLAlchemy error).
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if type(error).__module__.split(".")[0] in ("sqlalchemy", "sqlite3"):
            from pepita_keras.store import tracking

            uri = tracking.named_uri(getattr(args, "tracking_uri", None))
            return tracking.store_problem(error, uri)
        error = error.__cause__ or error.__context__
    return None


def _command_line(argv):
    import shlex

    words = sys.argv[1:] if argv is None else list(argv)
    return "pepita " + " ".join(shlex.quote(str(word)) for word in words)


if __name__ == "__main__":
    sys.exit(main())
