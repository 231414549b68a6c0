"""What `pepita tune <config>` searches: `TuningConfig` and its files.

`<config>` is, in lookup order:

1. a path to a Python file whose `get_config()` returns a `TuningConfig`
   (or an `ExperimentConfig`);
2. the name of a tuning config in `reproductions/tuning/` (same folders as
   the reproduction configs: `$PEPITA_TUNING_DIR`, `./reproductions/tuning`,
   the source checkout's);
3. the name of a reproduction config (`pepita list`): its rule,
   architecture and dataset are searched with the default space around its
   settings.

The search trains on the first `train_examples` images of the training split
and validates on its last `val_examples` images: the test set is never used
to choose hyperparameters.
"""

import dataclasses
import importlib.util
import os
import pathlib


@dataclasses.dataclass(frozen=True)
class SmokeSearch:
    """How a search shrinks with `--smoke`.

    Args:
        train_examples: training examples.
        val_examples: validation examples.
        epochs: epochs per trial (Hyperband: its `max_epochs`).
        max_trials: trials.
    """

    train_examples: int = 512
    val_examples: int = 256
    epochs: int = 1
    max_trials: int = 2


@dataclasses.dataclass(frozen=True)
class TuningConfig:
    """One hyperparameter search.

    Args:
        name: the search's name (config file stem); the keras-tuner project
            and MLflow parent run are named after it.
        experiment: the `ExperimentConfig` fixing rule, architecture, dataset
            and the defaults of the space, or a reproduction config name.
        space: per-name changes of the search space (see
            `pepita_keras.tuning.hypermodel`): value → fixed, list → choice,
            dict with `min_value`/`max_value` → range, None → not searched.
        tuner: `"random"`, `"hyperband"` or `"bayesian"`.
        max_trials: number of trials.
        epochs: epochs per trial (Hyperband: `max_epochs`).
        train_examples: training examples (first N of the training split).
        val_examples: validation examples (last N of the training split).
        seed: seed of the oracle and of every trial's model and shuffling.
        objective: the metric maximised (`val_accuracy`) or minimised
            (`val_loss`).
        tuner_kwargs: extra keyword arguments of the keras-tuner class, as
            `(name, value)` pairs (e.g. `(("factor", 3),)`).
        notes: free text shown in the report.
        smoke: a `SmokeSearch`.
    """

    name: str
    experiment: object
    space: dict = dataclasses.field(default_factory=dict)
    tuner: str = "random"
    max_trials: int = 10
    epochs: int = 3
    train_examples: int = 10000
    val_examples: int = 5000
    seed: int = 0
    objective: str = "val_accuracy"
    tuner_kwargs: tuple = ()
    notes: str = ""
    smoke: SmokeSearch = SmokeSearch()

    def __post_init__(self):
        for field in ("max_trials", "epochs", "train_examples", "val_examples"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"{field} must be a positive integer. Received: {field}={value!r}."
                )

    def replace(self, **changes):
        """A copy with `changes` applied."""
        return dataclasses.replace(self, **changes)

    @property
    def experiment_config(self):
        """The `ExperimentConfig` (loaded if `experiment` is a name)."""
        from pepita_keras import experiment

        if isinstance(self.experiment, str):
            return experiment.load_config(self.experiment)
        return self.experiment

    def smoke_version(self):
        """The tiny search used by tests and `--smoke`."""
        return self.replace(
            name=f"{self.name}-smoke",
            train_examples=self.smoke.train_examples,
            val_examples=self.smoke.val_examples,
            epochs=self.smoke.epochs,
            max_trials=self.smoke.max_trials,
        )

    def params(self):
        """Flat dict of the search settings, for the MLflow parent run."""
        config = self.experiment_config
        params = {
            "config": self.name,
            "rule": config.rule,
            "architecture": config.architecture,
            "dataset": config.dataset,
            "base_config": config.name,
            "epochs": self.epochs,
            "train_examples": self.train_examples,
            "val_examples": self.val_examples,
            "seed": self.seed,
            "objective": self.objective,
        }
        for name, value in self.space.items():
            params[f"space.{name}"] = value
        return params


def tuning_dirs():
    """Folders searched for tuning config files, in order."""
    from pepita_keras import experiment

    dirs = []
    if os.environ.get("PEPITA_TUNING_DIR"):
        dirs.append(pathlib.Path(os.environ["PEPITA_TUNING_DIR"]))
    # Siblings of the reproduction config folders.
    dirs.extend(folder.parent / "tuning" for folder in experiment.config_dirs())
    unique = []
    for folder in dirs:
        if folder.resolve() not in [d.resolve() for d in unique]:
            unique.append(folder)
    return unique


def list_tuning_configs():
    """`{name: path}` of every tuning config file found."""
    found = {}
    for folder in tuning_dirs():
        if folder.is_dir():
            for path in sorted(folder.glob("*.py")):
                if not path.stem.startswith("_"):
                    found.setdefault(path.stem, path)
    return found


def load_tuning_config(name_or_path):
    """Resolves `<config>` of `pepita tune` (module docstring) to a `TuningConfig`.

    Args:
        name_or_path: a `.py` path, a tuning config name or a reproduction
            config name.

    Returns:
        A `TuningConfig`.

    Raises:
        ValueError: if nothing matches; the message lists what was searched.
    """
    from pepita_keras import experiment

    path = pathlib.Path(str(name_or_path))
    if path.suffix == ".py":
        if not path.exists():
            raise ValueError(f"Tuning config file {str(path)!r} does not exist.")
        return _from_file(path)
    configs = list_tuning_configs()
    if str(name_or_path) in configs:
        return _from_file(configs[str(name_or_path)])
    try:
        base = experiment.load_config(name_or_path)
    except ValueError as error:
        searched = ", ".join(str(d) for d in tuning_dirs())
        raise ValueError(
            f"Unknown tuning config {name_or_path!r}: not a .py file, not a "
            f"tuning config in {searched}, and not a reproduction config "
            f"({error})"
        ) from None
    return TuningConfig(name=f"{base.name}-tune", experiment=base)


def _from_file(path):
    from pepita_keras import experiment

    spec = importlib.util.spec_from_file_location(f"pepita_tuning_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ValueError(f"Tuning config file {path} does not define get_config().")
    config = module.get_config()
    if isinstance(config, experiment.ExperimentConfig):
        return TuningConfig(name=f"{config.name}-tune", experiment=config)
    if not isinstance(config, TuningConfig):
        raise ValueError(
            f"get_config() in {path} must return a TuningConfig or an "
            f"ExperimentConfig; received {type(config).__name__}."
        )
    return config
