"""Learning-curve plots of reproduction runs (matplotlib, Agg canvas).

`plot_learning_curves` draws one seed's (or several runs') train/test accuracy
and loss per epoch; `plot_cell_curves` draws a cell's mean ± std over seeds
with the paper's band. Accuracies arrive as fractions (as MLflow stores them)
and are shown in percent. Figures are bare `matplotlib.figure.Figure`s, so no
pyplot backend is touched (a notebook's inline backend stays as it was).

Example:

```python
path = plots.plot_learning_curves({"seed 0": histories}, folder / "learning_curves.png",
                                  title="fc_mnist_pepita", paper=(98.01, 0.09))
```
"""

import math
import pathlib

import numpy as np

from pepita_keras.store import safe_files


def accuracy_limits(values, paper=None, margin=2.0):
    """Y range (percent) that shows `values` and, if given, the paper's band.

    The range comes from the data: a run at 7.8% gets an axis around 7.8%,
    not the 90–100% window of a finished MNIST run. With `paper`, the band is
    included only when the data come within 20 points of it, so a short or
    failed run is not squeezed into a sliver at the bottom.

    Args:
        values: accuracies in percent (non-finite ones are ignored).
        paper: optional `(mean, std)` in percent.
        margin: points added above and below.

    Returns:
        `(low, high)` within [0, 100].
    """
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return (0.0, 100.0)
    low, high = min(finite), max(finite)
    if paper is not None and paper[0] - paper[1] - 20 <= high:
        low, high = min(low, paper[0] - paper[1]), max(high, paper[0] + paper[1])
    span = max(high - low, 1.0)
    return (max(0.0, low - margin - 0.05 * span), min(100.0, high + margin + 0.05 * span))


def _figure(columns):
    # A bare Figure on the Agg canvas: no pyplot, so the process-wide backend
    # (e.g. a notebook's inline backend) is left alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5 * columns, 3.8))
    FigureCanvasAgg(figure)
    return figure, figure.subplots(1, columns)


def _save(figure, path, title):
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    safe_files.save_figure(figure, path, dpi=100)
    return path


def _epoch_axis(axis, epochs):
    from matplotlib.ticker import MaxNLocator

    axis.set_xlabel("epoch")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    if epochs <= 1:  # a single point needs room on both sides
        axis.set_xlim(0.5, 1.5)


def plot_learning_curves(histories, path, title=None, paper=None, metric="accuracy"):
    """Plots train/test curves of one or several runs to a PNG.

    Every epoch is a marker (a 1- or 2-epoch run is a visible point, not an
    invisible line), epochs are numbered 1 … N, and the accuracy axis is set
    from the data (`accuracy_limits`).

    Args:
        histories: `{label: {"train_accuracy": [...], "test_accuracy": [...], ...}}`
            (lists indexed by epoch, accuracies as fractions).
        path: output file.
        title: figure title.
        paper: optional `(mean, std)` in percent drawn as a band on the
            test-accuracy panel.
        metric: `"accuracy"` (plotted in %) or `"loss"`.

    Returns:
        The output path.
    """
    figure, axes = _figure(2)
    scale = 100.0 if metric == "accuracy" else 1.0
    longest = 1
    for label, history in histories.items():
        for axis, split in zip(axes, ("train", "test")):
            values = [v * scale if v is not None else float("nan")
                      for v in history.get(f"{split}_{metric}") or []]
            longest = max(longest, len(values))
            axis.plot(range(1, len(values) + 1), values, marker="o",
                      markersize=3 if len(values) > 30 else 5, label=str(label))
    for axis, split in zip(axes, ("train", "test")):
        _epoch_axis(axis, longest)
        axis.set_ylabel(f"{split} {metric}" + (" (%)" if metric == "accuracy" else ""))
        axis.grid(alpha=0.3)
        if metric == "accuracy":
            values = [v * scale for h in histories.values()
                      for v in (h.get(f"{split}_{metric}") or []) if v is not None]
            axis.set_ylim(*accuracy_limits(values, paper if split == "test" else None))
    if paper is not None and metric == "accuracy":
        _paper_band(axes[1], paper)
    axes[1].legend(fontsize=8)
    return _save(figure, path, title)


def _paper_band(axis, paper):
    mean, std = paper
    axis.axhline(mean, color="black", linestyle="--", linewidth=1, label="paper")
    axis.axhspan(mean - std, mean + std, color="black", alpha=0.1)


def plot_cell_curves(histories, path, title=None, paper=None):
    """A cell's test accuracy: every seed, their mean ± std, and the paper's band.

    Args:
        histories: `{seed: [test accuracy per epoch]}` (fractions).
        path: output file.
        title: figure title.
        paper: optional `(mean, std)` in percent.

    Returns:
        The output path.
    """
    figure, axis = _figure(1)
    longest = max([len(v) for v in histories.values()] + [1])
    for seed, values in sorted(histories.items()):
        values = [100 * v if v is not None else float("nan") for v in values]
        axis.plot(range(1, len(values) + 1), values, marker="o", markersize=3,
                  linewidth=0.8, alpha=0.6, label=f"seed {seed}")
    mean, std = epoch_mean_std(histories)
    if mean:
        epochs = np.arange(1, len(mean) + 1)
        mean, std = 100 * np.array(mean), 100 * np.nan_to_num(np.array(std, dtype=float))
        axis.plot(epochs, mean, color="C3", linewidth=2, label="mean")
        axis.fill_between(epochs, mean - std, mean + std, color="C3", alpha=0.2,
                          label="± std")
    if paper is not None:
        _paper_band(axis, paper)
    _epoch_axis(axis, longest)
    axis.set_ylabel("test accuracy (%)")
    axis.grid(alpha=0.3)
    values = [100 * v for vs in histories.values() for v in vs if v is not None]
    axis.set_ylim(*accuracy_limits(values, paper))
    axis.legend(fontsize=8)
    return _save(figure, path, title)


def epoch_mean_std(histories):
    """Per-epoch mean and sample std over runs, for the epochs every run reached.

    Args:
        histories: `{run: [value per epoch]}`.

    Returns:
        `(means, stds)` lists; a std is None with fewer than two runs.
    """
    series = [list(v) for v in histories.values() if v]
    if not series:
        return [], []
    epochs = min(len(v) for v in series)
    values = np.array([v[:epochs] for v in series], dtype=float)
    means = values.mean(axis=0).tolist()
    stds = (values.std(axis=0, ddof=1).tolist() if len(series) > 1 else [None] * epochs)
    return means, stds
