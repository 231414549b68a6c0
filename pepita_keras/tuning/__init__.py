"""Hyperparameter search for every rule: keras-tuner, recorded in MLflow.

- `RuleHyperModel`: a `keras_tuner.HyperModel` for any rule of the package
  with a documented, narrowable search space (`hypermodel.py`).
- `build_tuner`, `RandomSearch`, `Hyperband`, `BayesianOptimization`,
  `MLflowTracking`: tuners recording one MLflow parent run per search and one
  nested run per trial, resumable and distributable (`tuners.py`).
- `TuningConfig`, `load_tuning_config`: what `pepita tune <config>` runs
  (`configs.py`); `run_search`, `write_report`: what the `pepita tune` and
  `pepita tune-report` commands run (`commands.py`, `report.py`).

keras-tuner and MLflow are imported on first use of a name.

Example:

```python
from pepita_keras import tuning

hypermodel = tuning.RuleHyperModel("PEPITA", (28, 28, 1), 10, seed=0)
tuner = tuning.build_tuner("random", hypermodel, max_trials=8, seed=0,
                           directory="tuning", project_name="pepita_fc")
tuner.search(x, y, validation_data=(x_val, y_val), epochs=3)
```
"""

import importlib

_LAZY = {
    "RuleHyperModel": "hypermodel",
    "default_search_space": "hypermodel",
    "VARIANT_FLAGS": "hypermodel",
    "MLflowTracking": "tuners",
    "RandomSearch": "tuners",
    "Hyperband": "tuners",
    "BayesianOptimization": "tuners",
    "build_tuner": "tuners",
    "trial_summary": "tuners",
    "TuningConfig": "configs",
    "load_tuning_config": "configs",
    "run_search": "commands",
    "write_report": "report",
    "format_report": "report",
    "ShrinkingReportError": "report",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(f"pepita_keras.tuning.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'pepita_keras.tuning' has no attribute {name!r}")
