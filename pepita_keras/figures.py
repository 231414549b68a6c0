"""`pepita figures`: the paper-style figures, drawn from any store.

From the cells `results.collect` reads (only seeds that count for a cell):

- `accuracy_<net>_<dataset>.png`: test accuracy per epoch, one line per rule
  (mean over seeds, ± std band), the paper's final value marked at the last
  epoch (mean ± σ error bar);
- `alignment_angle.png`: the angle between F and the forward path over epochs
  (`alignment_angle_F*`, logged by `callbacks.AlignmentDiagnostics`), mean ±
  std over seeds per PEPITA cell; the paper reports ~90° → ~127° on MNIST;
- `slowness.png`: s (the official code's convergence rate, `slowness`) per
  cell, mean ± std over seeds;
- `results_vs_paper.png`: every cell with a paper number, ours ± std beside
  the paper's ± σ;
- `rules_by_architecture.png`: our own cells on graph architectures, each rule's final
  accuracy beside BP's.

Figures are bare `matplotlib.figure.Figure`s saved at 150 dpi and at most
~1400 px wide (readable at page width), each also as SVG beside its PNG.

Example:

```python
from pepita_keras import figures, results
from pepita_keras.store import tracking

client = tracking.read_client("sqlite:///reproductions/results/tracking.db")
paths = figures.write_figures(results.collect(client), client, "my_figures")
```
"""

import pathlib

import numpy as np

from pepita_keras import experiment_config
from pepita_keras.store import safe_files, tracking

_DPI = 150
# Where `pepita figures` writes in a clone unless told (`--output`).
DEFAULT_OUTPUT = "reproductions/results/figures"


def _figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def _save(figure, path):
    """Writes `figure` as PNG (for pages) and SVG (vector, for papers) beside it."""
    import matplotlib

    safe_files.save_figure(figure, path)
    # No timestamp and fixed element ids: a rerun on the same store gives the same file.
    with matplotlib.rc_context({"svg.hashsalt": "pepita_keras"}):
        safe_files.save_figure(figure, pathlib.Path(path).with_suffix(".svg"),
                               metadata={"Date": None})


def _mean_std(curves):
    """Per-epoch mean and std (ddof 1; 0 for one seed) over curves of unequal length."""
    length = min(len(c) for c in curves)
    values = np.array([c[:length] for c in curves], dtype=float)
    std = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(length)
    return values.mean(axis=0), std


def _counted(cells):
    return {name: cell for name, cell in cells.items() if cell.finals}


def _styles():
    """(colour, line style) pairs that never repeat within a panel of up to 40 series."""
    from matplotlib import colormaps

    colours = list(colormaps["tab10"].colors)
    return [(colour, style) for style in ("-", "--", ":", "-.") for colour in colours]


def accuracy_figures(cells, output):
    """One accuracy-per-epoch figure per (architecture, dataset) with counted seeds.

    Forward-Forward (250 epochs) gets its own figure, so the 100-epoch rules keep the width;
    the reference marker says what it is (a paper's mean ± σ, or one stored keras-io run).
    """
    groups = {}
    for name, cell in _counted(cells).items():
        config = cell.config
        key = ("ff" if config.rule == "ff" else config.architecture, config.dataset)
        groups.setdefault(key, []).append((name, cell))
    paths = []
    for (architecture, dataset), members in sorted(groups.items()):
        figure = _figure(9.0, 4.5)
        axis = figure.add_subplot()
        lowest = 100.0
        for (name, cell), (colour, style) in zip(members, _styles()):
            curves = [100 * np.asarray(cell.histories[s]["test_accuracy"]) for s in cell.finals]
            mean, std = _mean_std(curves)
            epochs = np.arange(1, len(mean) + 1)
            line, = axis.plot(epochs, mean, label=f"{name} (n={cell.n})", linewidth=1.2,
                              color=colour, linestyle=style)
            axis.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.15)
            if cell.config.paper:
                one_run = "keras-io" in cell.config.paper_source
                axis.errorbar([len(mean) + 1.5], [cell.config.paper[0]],
                              yerr=None if one_run else [cell.config.paper[1]],
                              fmt="*" if one_run else "D", markersize=6 if one_run else 4,
                              color=line.get_color(), capsize=3)
            lowest = min(lowest, float(np.percentile(mean, 10)))
        axis.set_ylim(max(0.0, lowest - 1.0), 100.0)
        axis.set_xlabel("epoch")
        axis.set_ylabel("test accuracy (%)")
        label = experiment_config.DATASET_LABELS[dataset]
        reference = ""
        if any(cell.config.paper for _, cell in members):
            reference = (", keras-io's stored run ★" if architecture == "ff"
                         else ", paper's final mean ± σ ◆")
        axis.set_title(f"{architecture.upper()} · {label}: ours (mean ± std over seeds)"
                       f"{reference}", fontsize=9)
        from matplotlib.ticker import MaxNLocator

        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # off the curves
        path = pathlib.Path(output) / f"accuracy_{architecture}_{dataset}.png"
        _save(figure, path)
        paths.append(path)
    return paths


def alignment_figure(cells, client, output):
    """The F–forward-path angle over epochs, per cell that logged it; None if none did."""
    series = {}
    for name, cell in _counted(cells).items():
        for seed, run_id in cell.run_ids.items():
            if seed not in cell.finals:
                continue
            keys = [k for k in client.get_run(run_id).data.metrics
                    if k.startswith("alignment_angle_F")]
            for key, values in tracking.metric_histories(client, run_id, keys).items():
                if values:
                    series.setdefault((name, key), []).append(np.asarray(values, dtype=float))
    if not series:
        return None
    figure = _figure(7.5, 4.5)
    axis = figure.add_subplot()
    for (name, key), curves in sorted(series.items()):
        mean, std = _mean_std(curves)
        epochs = np.arange(1, len(mean) + 1)
        suffix = key[len("alignment_angle_F"):].lstrip("_")
        line, = axis.plot(epochs, mean, label=f"{name}{' ' + suffix if suffix else ''}",
                          linewidth=1.2)
        axis.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    axis.axhline(90, color="gray", linestyle=":", linewidth=1, label="90° (orthogonal)")
    axis.set_xlabel("epoch")
    axis.set_ylabel("angle between F and the forward path (°)")
    axis.set_title("Alignment of F with the forward path (paper: ~90° → ~127° on MNIST)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    path = pathlib.Path(output) / "alignment_angle.png"
    _save(figure, path)
    return path


def slowness_figure(cells, output):
    """Bars of s (mean ± std over seeds) per counted cell; None without any."""
    rows = [(name, [s for _, s in cell.slowness.values()])
            for name, cell in _counted(cells).items() if cell.slowness]
    if not rows:
        return None
    figure = _figure(7.5, 0.35 * len(rows) + 1.2)
    axis = figure.add_subplot()
    names = [name for name, _ in rows]
    means = [float(np.mean(values)) for _, values in rows]
    stds = [float(np.std(values, ddof=1)) if len(values) > 1 else 0.0 for _, values in rows]
    axis.barh(range(len(rows)), means, xerr=stds, color="tab:blue", alpha=0.7, capsize=3)
    axis.set_yticks(range(len(rows)), names, fontsize=8)
    axis.invert_yaxis()
    # s spans decades (≤ 1e-4 for a curve flat from epoch 1, ~2 for Forward-Forward).
    axis.set_xscale("log")
    axis.set_xlabel("s, epochs to half of acc_max (log scale; smaller = faster)")
    axis.set_title("Slowness: acc(t) = acc_max·t/(s+t) before the first LR decay")
    axis.grid(alpha=0.3, axis="x")
    path = pathlib.Path(output) / "slowness.png"
    _save(figure, path)
    return path


def results_vs_paper_figure(cells, output):
    """Every counted cell with a paper number: ours ± std beside the paper's ± σ."""
    rows = [(name, cell) for name, cell in _counted(cells).items() if cell.config.paper]
    if not rows:
        return None
    figure = _figure(7.5, 0.4 * len(rows) + 1.2)
    axis = figure.add_subplot()
    labelled, values = set(), []
    for index, (name, cell) in enumerate(rows):
        paper_mean, paper_std = cell.config.paper
        one_run = "keras-io" in cell.config.paper_source
        kind = "keras-io (one stored run)" if one_run else "paper ± σ"
        axis.errorbar([paper_mean], [index + 0.15], xerr=None if one_run else [paper_std],
                      fmt="*" if one_run else "D", color="gray", capsize=3,
                      label=None if kind in labelled else kind)
        labelled.add(kind)
        axis.errorbar([cell.mean], [index - 0.15], xerr=[cell.std or 0.0], fmt="o",
                      color="tab:red", capsize=3, label="ours ± std" if index == 0 else None)
        values += [paper_mean - paper_std, paper_mean + paper_std,
                   cell.mean - (cell.std or 0.0), cell.mean + (cell.std or 0.0)]
    pad = max(0.2, 0.1 * (max(values) - min(values)))
    axis.set_xlim(min(values) - pad, max(values) + pad)  # neither point clipped
    axis.set_yticks(range(len(rows)), [name for name, _ in rows], fontsize=8)
    axis.set_ylim(len(rows) - 0.5, -0.5)
    axis.set_xlabel("final test accuracy (%)")
    axis.set_title("Ours vs the paper (Table 1) and keras-io's Forward-Forward run")
    axis.grid(alpha=0.3, axis="x")
    # Below the axes: a legend never hides a point or an error bar.
    axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3)
    path = pathlib.Path(output) / "results_vs_paper.png"
    _save(figure, path)
    return path


FIGURE_NAMES = ("accuracy_*.png", "alignment_angle.png", "slowness.png", "results_vs_paper.png",
                "rules_by_architecture.png", "*.svg")


def architecture_figure(cells, output):
    """Final test accuracy of each rule on each graph architecture (our own cells); None if none.

    One panel per architecture (`experiment_config.GRAPH_ARCHITECTURES`), one bar per rule
    (mean ± std over seeds, each seed a dot), BP's mean as a dashed reference line.
    """
    panels = {}
    for name, cell in _counted(cells).items():
        if cell.config.architecture in experiment_config.GRAPH_ARCHITECTURES:
            panels.setdefault(cell.config.architecture, []).append(cell)
    if not panels:
        return None
    figure = _figure(4.2 * len(panels), 3.8)
    axes = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    order = list(experiment_config.RULES)
    for axis, (architecture, members) in zip(axes, sorted(panels.items())):
        members.sort(key=lambda cell: order.index(cell.config.rule))
        labels = [experiment_config.RULE_LABELS[cell.config.rule] for cell in members]
        means = [cell.mean for cell in members]
        stds = [cell.std or 0.0 for cell in members]
        positions = np.arange(len(members))
        axis.bar(positions, means, yerr=stds, color="#4c72b0", alpha=0.75, capsize=3)
        for position, cell in zip(positions, members):
            axis.plot([position] * cell.n, list(cell.finals.values()), "k.", markersize=3)
        reference = [cell.mean for cell in members if cell.config.rule == "bp"]
        if reference:
            axis.axhline(reference[0], color="gray", linestyle="--", linewidth=1,
                         label=f"BP {reference[0]:.2f}%")
            axis.legend(fontsize=8, loc="lower right")
        axis.set_xticks(positions, labels, fontsize=8)
        axis.set_title(f"{architecture.upper()} · MNIST ({members[0].config.epochs} epochs)")
        axis.grid(alpha=0.3, axis="y")
        lowest = min(min(cell.finals.values()) for cell in members)
        axis.set_ylim(max(0.0, lowest - 5.0), 100.0)
    axes[0].set_ylabel("final test accuracy (%), mean ± std, seeds as dots")
    path = pathlib.Path(output) / "rules_by_architecture.png"
    _save(figure, path)
    return path


def write_figures(cells, client, output, force=False):
    """Writes every figure of the module docstring into `output`; returns their paths.

    Args:
        cells: `results.collect`'s cells.
        client: the store's client (alignment curves are read from it).
        output: the folder (created if missing).
        force: replace figures already in `output`; without it a folder that
            holds any is refused before anything is drawn.

    Raises:
        FileExistsError: naming the figures, when `output` holds some and
            `force` is False.
    """
    output = pathlib.Path(output)
    if output.exists() and not output.is_dir():
        raise NotADirectoryError(f"--output {output} is a file; figures go into a folder.")
    existing = sorted(path.name for pattern in FIGURE_NAMES for path in output.glob(pattern))
    if existing and not force:
        raise FileExistsError(
            f"{output} already holds figures ({', '.join(existing)}); pass --force to replace "
            "them, or --output another folder.")
    output.mkdir(parents=True, exist_ok=True)
    paths = accuracy_figures(cells, output)
    for path in (alignment_figure(cells, client, output), slowness_figure(cells, output),
                 results_vs_paper_figure(cells, output), architecture_figure(cells, output)):
        if path is not None:
            paths.append(path)
    return paths
