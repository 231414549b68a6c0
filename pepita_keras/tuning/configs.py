"""What `pepita tune <config>` searches: `TuningConfig` and its files.

`<config>` is, in lookup order:

1. a path to a Python file whose `get_config()` returns a `TuningConfig`
   (or an `ExperimentConfig`, searched with the default space around its
   settings); a `.py` path that does not exist is an error, not a name;
2. the name (file stem) of a tuning config found in `tuning_dirs()`:
   `$PEPITA_TUNING_DIR` (if set), then the `tuning/` folder beside each
   reproduction config folder — `$PEPITA_CONFIG_DIR/../tuning` (if that
   variable is set), `./reproductions/tuning`, the source checkout's
   `reproductions/tuning`. The first folder holding a name wins, and files
   whose name starts with `_` are helpers, not configs;
3. the name of a reproduction config (`pepita list`): its rule,
   architecture and dataset are searched with the default space around its
   settings.

Files are found and run by the same functions as the reproduction configs
(`pepita_keras.config_files`).

The search trains on the first `train_examples` images of the training split
and validates on its last `val_examples` images: the test set is never used
to choose hyperparameters.
"""

import dataclasses
import pathlib

from pepita_keras import config_files, experiment_config

# The folder name under `reproductions/` and the variable naming a user's own
# folder, searched first.
TUNING_SUBFOLDER = "tuning"
TUNING_ENV_VAR = "PEPITA_TUNING_DIR"


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
        if isinstance(self.experiment, str):
            return experiment_config.load_config(self.experiment)
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
    """Folders searched for tuning config files, in order (module docstring).

    Returns:
        A list of `pathlib.Path`; they need not exist.
    """
    return config_files.config_dirs(TUNING_SUBFOLDER, TUNING_ENV_VAR)


def list_tuning_configs():
    """`{name: path}` of every tuning config file found in `tuning_dirs()`."""
    return config_files.list_config_files(tuning_dirs())


def load_tuning_config(name_or_path):
    """Resolves `<config>` of `pepita tune` (module docstring) to a `TuningConfig`.

    Args:
        name_or_path: a `.py` path, a tuning config name or a reproduction
            config name.

    Returns:
        A `TuningConfig`; an `ExperimentConfig` (from a file or a
        reproduction config name) becomes the default search around it,
        named `<config name>-tune`.

    Raises:
        ValueError: if a `.py` path does not exist, if nothing matches (the
            message lists what was searched), or if the file's
            `get_config()` is missing or returns neither a `TuningConfig`
            nor an `ExperimentConfig`.
    """
    path = pathlib.Path(str(name_or_path))
    if path.suffix == ".py" and not path.exists():
        raise ValueError(f"Tuning config file {str(path)!r} does not exist.")
    found = config_files.find_config_file(name_or_path, tuning_dirs())
    if found is not None:
        return _from_file(found)
    try:
        base = experiment_config.load_config(name_or_path)
    except ValueError as error:
        searched = ", ".join(str(d) for d in tuning_dirs())
        raise ValueError(
            f"Unknown tuning config {name_or_path!r}: not a .py file, not a "
            f"tuning config in {searched}, and not a reproduction config "
            f"({error})"
        ) from None
    return _default_search(base)


def _from_file(path):
    config = config_files.load_python_config(
        path, (TuningConfig, experiment_config.ExperimentConfig), description="Tuning config"
    )
    if isinstance(config, experiment_config.ExperimentConfig):
        return _default_search(config)
    return config


def _default_search(config):
    # A reproduction config alone is searched with the default space.
    return TuningConfig(name=f"{config.name}-tune", experiment=config)
