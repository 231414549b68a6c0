"""The official code's convergence-rate metric, "slowness" s.

GiorgiaD/PEPITA's `plot_compute_slowness.ipynb` fits

    acc(t) = acc_max · t / (s + t)

to a test-accuracy curve, with the chance level prepended as the point t = 0
and only the epochs before the first learning-rate decay, and compares
rules by s: the epochs it takes to reach half of acc_max (smaller = faster).

Symbols: t, the epoch (1 … T, T the last epoch before the first decay);
acc(t), the test accuracy after epoch t (a fraction); acc(0) = 1/C, chance
for C classes; acc_max, the fitted plateau; s ≥ 0, the fitted slowness.

For a fixed s the model is linear in acc_max, so the least-squares acc_max
has the closed form Σ g·y / Σ g² with g = t / (s + t); s is then found by a
log-spaced scan of the one-dimensional residual followed by golden-section
refinement. No SciPy needed.

Example:

```python
from pepita_keras import slowness

acc_max, s = slowness.fit([0.93, 0.95, 0.96, 0.965], chance=0.1)
```
"""

import math

import numpy as np

_S_RANGE = (1e-4, 1e4)  # epochs; beyond, the curve is flat or a straight line


def _residual(s, t, y):
    g = t / (s + t)
    acc_max = float(np.dot(g, y) / np.dot(g, g))
    return float(np.sum((acc_max * g - y) ** 2)), acc_max


def fit(accuracies, chance):
    """Fits acc(t) = acc_max · t / (s + t) to a curve with acc(0) = `chance`.

    Args:
        accuracies: test accuracy (fraction) after epochs 1 … T, in order.
        chance: accuracy at t = 0 (1 / number of classes).

    Returns:
        `(acc_max, s)`.

    Raises:
        ValueError: for an empty curve or a non-finite value.
    """
    y = np.concatenate([[float(chance)], np.asarray(accuracies, dtype=float)])
    if len(y) < 2 or not np.all(np.isfinite(y)):
        raise ValueError(f"slowness needs ≥ 1 finite accuracy; received {accuracies!r}.")
    t = np.arange(len(y), dtype=float)
    grid = np.logspace(math.log10(_S_RANGE[0]), math.log10(_S_RANGE[1]), 400)
    errors = [_residual(s, t, y)[0] for s in grid]
    best = int(np.argmin(errors))
    low, high = math.log(grid[max(best - 1, 0)]), math.log(grid[min(best + 1, len(grid) - 1)])
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(80):  # golden section on log s
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if _residual(math.exp(a), t, y)[0] < _residual(math.exp(b), t, y)[0]:
            high = b
        else:
            low = a
    s = math.exp((low + high) / 2)
    return _residual(s, t, y)[1], s


def fit_window(config):
    """Epochs fitted for `config`: those before its first learning-rate decay (all if none)."""
    decays = [e for e in config.lr_decay_epochs if 0 < e < config.epochs]
    return min(decays) if decays else config.epochs


def seed_slowness(config, test_accuracy):
    """`(acc_max, s)` of one seed's test-accuracy curve (fractions), per the module docstring."""
    window = test_accuracy[:fit_window(config)]
    return fit(window, 1.0 / config.num_classes)
