"""Rendering the results: typed cell results → `README.md`, `results.csv` and plots.

`write_results(results, output)` writes the table (and one learning-curve
PNG per run cell) from what `pepita_keras.results.records.collect` returned.
"""

import csv
import datetime
import io
import pathlib

import numpy as np

from pepita_keras import experiment_config
from pepita_keras.store import plots as plots_lib
from pepita_keras.store import safe_files, tracking, untrusted
from pepita_keras.results.records import TOLERANCE_POINTS, TOLERANCE_SIGMAS, differences_text

class ShrinkingResultsError(ValueError):
    """Raised instead of replacing a table with one that has fewer completed seeds."""


NOT_RUN = "not run here"
NOT_RUN_CIFAR = "not run here (no dataset offline)"
DEFAULT_OUTPUT = pathlib.Path("reproductions") / "results"


def _fmt(mean, std):
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def _paper_text(config):
    """The paper column: mean ± std, "not transcribed" (a source without numbers), or —.

    A source with one stored run (std 0, e.g. keras-io's Forward-Forward output)
    shows its number as "one run" rather than as "± 0.00".
    """
    if config.paper:
        mean, std = config.paper
        return f"{mean:.2f} (one run)" if std == 0 else _fmt(mean, std)
    return "not transcribed" if config.paper_source else "—"


def _status(cell):
    parts = []
    if cell.n:
        parts.append("complete" if not cell.partial else "complete + partial seeds")
        if cell.matches_paper is not None:
            gap = cell.mean - cell.config.paper[0]
            parts.append("matches the paper" if cell.matches_paper else
                         f"off by {gap:+.2f} (tolerance ±{cell.tolerance:.2f}; see Runs)")
    elif cell.partial:
        parts.append("partial")
    if cell.diverged:
        total = cell.n + len(cell.partial) + len(cell.diverged)
        parts.append(f"diverged ({len(cell.diverged)} of {total} seeds)")
    if parts:
        return "; ".join(parts)
    return NOT_RUN if cell.config.dataset == "mnist" else NOT_RUN_CIFAR


def table_rows(results):
    """One flat dict per cell (the columns of `results.csv`)."""
    rows = []
    for name, cell in results.items():
        config = cell.config
        command = config.command
        rows.append({
            "cell": name,
            "rule": experiment_config.RULE_LABELS[config.rule],
            "architecture": config.architecture.upper(),
            "dataset": experiment_config.DATASET_LABELS[config.dataset],
            "ours_mean": "" if cell.mean is None else f"{cell.mean:.2f}",
            "ours_std": "" if cell.std is None else f"{cell.std:.2f}",
            "n_seeds": cell.n,
            "seeds": ",".join(str(s) for s in sorted(cell.finals)),
            "paper_mean": f"{config.paper[0]:.2f}" if config.paper else "",
            "paper_std": f"{config.paper[1]:.2f}" if config.paper else "",
            "paper_source": config.paper_source,
            "delta_paper_sigma": "" if cell.delta_sigma is None else f"{cell.delta_sigma:+.1f}",
            "status": _status(cell),
            "partial": "; ".join(
                f"seed {s}: epoch {e}/{config.epochs}, test {a:.2f}"
                for s, (e, a) in sorted(cell.partial.items())
            ),
            "diverged": "; ".join(
                f"seed {s}: non-finite at epoch {e}" for s, e in sorted(cell.diverged.items())
            ),
            **_slowness_columns(cell),
            "epochs": config.epochs,
            "wall_time_s_per_seed": (
                f"{np.nanmean(cell.wall_times):.0f}" if cell.wall_times else ""
            ),
            "load_avg": f"{np.mean(cell.loads):.1f}" if cell.loads else "",
            "command": command,
            "commit": " ".join(sorted(cell.commits)),
            "hardware": " | ".join(sorted(cell.hardware)),
            "notes": config.notes,
            "gap": config.gap if cell.matches_paper is False else "",
        })
    return rows


def _slowness_columns(cell):
    fits = list(cell.slowness.values())
    if not fits:
        return {"slowness_mean": "", "slowness_std": "", "acc_max_mean": ""}
    values = np.array([s for _, s in fits])
    return {"slowness_mean": f"{values.mean():.3g}",
            "slowness_std": f"{values.std(ddof=1):.2g}" if len(values) > 1 else "",
            "acc_max_mean": f"{100 * np.mean([a for a, _ in fits]):.2f}"}


def _duration(seconds):
    if not seconds:
        return "—"
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def completed_seeds_in_table(path):
    """Completed seeds counted by an existing `results.csv` (0 if there is none)."""
    if not path.is_file():
        return 0
    with open(path, newline="") as file:
        return sum(int(row.get("n_seeds") or 0) for row in csv.DictReader(file))


def write_results(results, output=DEFAULT_OUTPUT, tracking_uri="", plots=True, force=False):
    """Writes `README.md`, `results.csv` and curve plots for `results`.

    Args:
        results: `{name: CellResult}` from `collect`.
        output: output folder.
        tracking_uri: the store the numbers came from (stated in the README).
        plots: also write `curves/<cell>.png` for cells with runs.
        force: replace an existing table even if the new one counts fewer
            completed seeds.

    Returns:
        The README path.

    Raises:
        ShrinkingResultsError: if `output` holds a table with more completed
            seeds than `results` and `force` is False; nothing is written.
    """
    output = pathlib.Path(output)
    if output.exists() and not output.is_dir():
        raise NotADirectoryError(f"--output {output} is a file; the table goes into a folder.")
    safe_files.refuse_link(output / "results.csv", "table")
    before = completed_seeds_in_table(output / "results.csv")
    now = sum(cell.n for cell in results.values())
    if now < before and not force:
        raise ShrinkingResultsError(
            f"Refusing to overwrite {output / 'results.csv'}: it counts {before} completed "
            f"seeds, the store {tracking_uri or '(default)'} gives only {now}. Point "
            "--tracking-uri at the store those runs are in (the committed one is "
            "sqlite:///reproductions/results/tracking.db), write elsewhere with --output, "
            "or pass --force to replace it."
        )
    output.mkdir(parents=True, exist_ok=True)
    rows = table_rows(results)
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=list(rows[0]) if rows else ["cell"])
    writer.writeheader()
    writer.writerows(rows)
    safe_files.write_atomic(output / "results.csv", table.getvalue())
    curve_files = {}
    if plots:
        for name, cell in results.items():
            if not cell.histories:
                continue
            path = plots_lib.plot_learning_curves(
                {f"seed {s}": h for s, h in sorted(cell.histories.items())},
                output / "curves" / f"{name}.png",
                title=f"{cell.config.label}: ours vs paper", paper=cell.config.paper,
            )
            curve_files[name] = path.relative_to(output).as_posix()
    # The paper's source and the settings chosen where it is silent: the shipped configs'.
    common = experiment_config.shipped_common()
    lines = [
        "# Reproductions of the PEPITA paper's Table 1",
        "",
        "Generated by `pepita results` from the MLflow store "
        f"`{tracking_uri}` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}. "
        "Do not edit by hand.",
        "",
        "Test accuracy (%) after the final epoch; ours = mean ± sample std (ddof=1) "
        "over the completed seeds (no std for a single seed), n = number of seeds; paper = "
        f"{common.PAPER_SOURCE} (mean ± std, quoted). "
        "Δ = (ours − paper) / paper std. Wall time = training time per seed (sum of epoch "
        "times, incl. the per-epoch test evaluation) on the hardware listed under Runs, "
        "with the machine's mean 1-minute load average during the run where it was "
        "recorded: a load above the core count means other jobs shared the machine. "
        f"A cell matches the paper when its mean lies within max({TOLERANCE_SIGMAS:g} paper σ, "
        f"{TOLERANCE_POINTS:g} points) of the paper's; where it does not, its section under "
        "Runs says why. s = slowness, the official code's convergence rate: acc(t) = "
        "acc_max · t / (s + t) fitted to each seed's test-accuracy curve before the first "
        "learning-rate decay, chance at t = 0 (`pepita_keras.slowness`); epochs to half of "
        "acc_max, smaller = faster; mean ± std over the completed seeds.",
        "",
        "| Cell | Rule | Net | Dataset | Ours | n | Paper | Δ (paper σ) | s (epochs) | "
        "Wall time / seed | Status |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row, cell in zip(rows, results.values()):
        ours = _fmt(cell.mean, cell.std) if cell.n else "—"
        paper = _paper_text(cell.config)
        status = row["status"]
        for detail in ("partial", "diverged"):
            if row[detail]:
                status += f" ({row[detail]})"
        wall = _duration(float(row["wall_time_s_per_seed"])) if row["wall_time_s_per_seed"] else "—"
        if row["load_avg"]:
            wall += f" (load {row['load_avg']})"
        lines.append(
            f"| `{row['cell']}` | {row['rule']} | {row['architecture']} | {row['dataset']} | "
            f"{ours} | {row['n_seeds'] or '—'} | {paper} | {row['delta_paper_sigma'] or '—'} | "
            f"{_slowness_text(row)} | {wall} | {status} |"
        )
    lines += _platforms_section(results)
    lines += [
        "",
        "## Settings",
        "",
        "From the paper and its official code: inputs in [0, 1], He-uniform init, no biases, "
        "F scale 0.05, SGD momentum 0.9, batch 64 (conv 50), 100 epochs, lr ×0.1 at epochs "
        "60 and 90, dropout 0.1 on the FC hidden layer, lr 0.1 (MNIST) / 0.01 (CIFAR). "
        "Chosen here where the sources are silent:",
        "",
    ]
    lines += [f"- {note}" for note in common.OPEN_SETTINGS]
    ran = [(row, cell) for row, cell in zip(rows, results.values()) if cell.histories]
    if ran:
        lines += ["", "## Runs", ""]
        for row, cell in ran:
            lines += [
                f"### `{row['cell']}` — {cell.config.label}",
                "",
                f"- Command: `{row['command']}`",
                f"- Seeds completed: {row['seeds'] or 'none'}"
                + (f"; partial: {row['partial']}" if row["partial"] else ""),
            ]
            for seed, value in sorted(cell.finals.items()):
                lines.append(f"  - seed {seed}: {value:.2f}")
            if row["diverged"]:
                lines.append(f"- Diverged (not averaged): {row['diverged']}")
            if not cell.config.paper and cell.config.paper_source:
                lines.append(f"- Paper: {cell.config.paper_source}: its numbers are not "
                             "transcribed here")
            if cell.matches_paper is not None:
                lines.append(
                    f"- Paper: {_fmt(*cell.config.paper)}; ours {cell.mean:.2f}, "
                    f"{cell.mean - cell.config.paper[0]:+.2f} points (tolerance "
                    f"±{cell.tolerance:.2f}): "
                    + ("matches." if cell.matches_paper else "does not match."))
            if cell.matches_paper is False:
                lines.append("- Why it differs: " + (
                    row["gap"] or "not explained yet (the config sets no `gap`)."))
            lines += [
                f"- Commit: {row['commit'] or 'unknown'}",
                f"- Hardware: {row['hardware'] or 'unknown'}",
            ]
            if row["notes"]:
                lines.append(f"- Chosen settings: {row['notes']}")
            if row["cell"] in curve_files:
                lines += ["", f"![{row['cell']}]({curve_files[row['cell']]})"]
            lines.append("")
    lines += _other_runs_section(results)
    readme = output / "README.md"
    safe_files.write_atomic(readme, "\n".join(lines).rstrip() + "\n")
    return readme


def _slowness_text(row):
    if not row["slowness_mean"]:
        return "—"
    if float(row["slowness_mean"]) <= 1.5e-4:  # the fit's lower bound: flat from epoch 1
        return "≤ 1e-4"
    return row["slowness_mean"] + (f" ± {row['slowness_std']}" if row["slowness_std"] else "")


def _wall_text(cell):
    if not cell.wall_times:
        return "—"
    text = _duration(float(np.nanmean(cell.wall_times)))
    return text + (f" (load {np.mean(cell.loads):.1f})" if cell.loads else "")


def _platforms_section(results):
    """The cells run on other platforms, beside their runs in the main table."""
    entries = [(name, platform, cell, other) for name, cell in results.items()
               for platform, other in sorted(cell.platforms.items())]
    if not entries:
        return []
    lines = [
        "",
        "## The same cells on other platforms",
        "",
        "Runs of a cell with its shipped settings on another Keras backend or device "
        f"(tag `{tracking.PLATFORM_TAG}`), beside the main table's runs "
        f"({tracking.DEFAULT_PLATFORM}). Seeds of different platforms are never averaged "
        "together.",
        "",
        f"| Cell | Platform | Ours there | n | Ours, {tracking.DEFAULT_PLATFORM} | Paper | "
        f"Matches | Wall time / seed there | Wall time / seed, {tracking.DEFAULT_PLATFORM} | "
        "Hardware there |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, platform, cell, other in entries:
        ours = _fmt(other.mean, other.std) if other.n else "—"
        if other.partial:
            ours += " (partial: " + ", ".join(
                f"seed {s} epoch {e}/{other.config.epochs}, {a:.2f}"
                for s, (e, a) in sorted(other.partial.items())) + ")"
        main = _fmt(cell.mean, cell.std) if cell.n else "—"
        verdict = {None: "—", True: "yes", False: "no"}[other.matches_paper]
        lines.append(
            f"| `{name}` | {platform} | {ours} | {other.n or '—'} | {main} | "
            f"{_paper_text(other.config)} | {verdict} | {_wall_text(other)} | "
            f"{_wall_text(cell)} | {'; '.join(sorted(other.hardware)) or 'unknown'} |")
    return lines


def _other_runs_section(results):
    others = [(name, run_name, other) for name, cell in results.items()
              for (run_name, _), other in sorted(cell.other_runs.items())]
    if not others:
        return []
    lines = [
        "## Runs with other settings (not counted)",
        "",
        "These runs used a cell's name with training settings that differ from its "
        "config, so they are not compared with the paper.",
        "",
        "| Run | Cell | Differs in (run vs config) | Completed seeds | Unfinished seeds | Diverged |",
        "|---|---|---|---|---|---|",
    ]
    for name, run_name, other in others:
        differs = untrusted.display_text(differences_text(other.differences), 1000)
        finals = ", ".join(f"seed {s}: {v:.2f}" for s, v in sorted(other.finals.items()))
        partial = ", ".join(f"seed {s}: epoch {e}, test {a:.2f}"
                            for s, (e, a) in sorted(other.partial.items()))
        diverged = ", ".join(f"seed {s} (epoch {e})" for s, e in sorted(other.diverged.items()))
        lines.append(f"| `{run_name}` | `{name}` | {differs} | {finals or '—'} | "
                     f"{partial or '—'} | {diverged or '—'} |")
    return lines + [""]


# The repository README's results block, between these markers, is generated from
# results.csv by `readme_block` (`pepita results` rewrites it; a test compares them).
README_START = "<!-- results: generated by `pepita results` from results.csv; do not edit -->"
README_END = "<!-- results: end -->"


def readme_block(rows):
    """The README's results table: every cell with completed seeds, from `results.csv` rows.

    Args:
        rows: dicts with `results.csv`'s columns (`table_rows` or `csv.DictReader`).

    Returns:
        Markdown text between `README_START` and `README_END` (markers included).
    """
    done = [row for row in rows if int(row["n_seeds"] or 0)]
    lines = [README_START, "",
             "| Cell | Rule · net · data | Ours (%) | n | Paper (%) | Status | s (slowness) |",
             "|---|---|---|---|---|---|---|"]
    for row in done:
        ours = row["ours_mean"] + (f" ± {row['ours_std']}" if row["ours_std"] else "")
        if not row["paper_mean"]:
            paper = "—"
        elif "keras-io" in row["paper_source"]:  # one stored run of an example, not a paper
            paper = f"{row['paper_mean']} (keras-io, one run)"
        else:
            paper = f"{row['paper_mean']} ± {row['paper_std']}"
        status = row["status"].split(";", 1)[-1].strip() if ";" in row["status"] \
            else row["status"]
        slowness = row["slowness_mean"] + (f" ± {row['slowness_std']}"
                                           if row["slowness_std"] else "")
        lines.append(f"| `{row['cell']}` | {row['rule']} · {row['architecture']} · "
                     f"{row['dataset']} | {ours} | {row['n_seeds']} | {paper} | {status} | "
                     f"{slowness or '—'} |")
    papers = [row for row in done if row["paper_mean"] and "keras-io" not in row["paper_source"]]
    matched = sum("matches the paper" in row["status"] for row in papers)
    with_paper = len(papers)
    lines += ["", f"{len(done)} cells have completed seeds; {matched} of the {with_paper} with a "
              "paper number lie within max(2 paper σ, 0.25 points) of it. Ours: mean ± sample std "
              "(ddof 1) over the completed seeds, final epoch; paper numbers are quoted.", "",
              README_END]
    return "\n".join(lines)


def update_readme(readme, rows):
    """Replaces the results block of `readme` (a path) with `readme_block(rows)`.

    Returns:
        True if the file changed; False if it has no block or already holds this one.
    """
    readme = pathlib.Path(readme)
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return False
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    new = head + readme_block(rows) + tail
    if new == text:
        return False
    safe_files.write_atomic(readme, new)
    return True
