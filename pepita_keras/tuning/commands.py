"""What `pepita tune` runs (its arguments: `pepita_keras.cli`; the report: `report.py`).

```
pepita tune pepita_fc_mnist --tuner random --max-trials 10 --directory tuning
pepita tune fc_mnist_pepita --tuner hyperband --max-trials 30 --smoke
pepita tune pepita_fc_mnist --smoke --synthetic --tracking-uri sqlite:///tune.db
pepita tune-report                      # → reproductions/results/tuning.md
```

Rerunning `pepita tune` with the same config and `--directory` resumes the
search where it stopped (keras-tuner reloads its state; `--overwrite`
starts over). With `KERASTUNER_TUNER_ID` / `KERASTUNER_ORACLE_IP` /
`KERASTUNER_ORACLE_PORT` set, the same command runs as the chief or a worker
of a distributed search (see README, "Tuning").
"""

import json
import os
import pathlib
import time

import keras_tuner
import numpy as np

from pepita_keras import datasets, input_pipeline
from pepita_keras.store import dataset_inputs
from pepita_keras.tuning import configs, tuners
from pepita_keras.tuning.hypermodel import RuleHyperModel, describe

DEFAULT_DIRECTORY = "tuning"


# ---------------------------------------------------------------------------
# pepita tune
# ---------------------------------------------------------------------------
def run_search(
    config,
    *,
    tuner=None,
    max_trials=None,
    epochs=None,
    smoke=False,
    directory=DEFAULT_DIRECTORY,
    project_name=None,
    overwrite=False,
    data_dir=None,
    seed=None,
    experiment=None,
    train_examples=None,
    val_examples=None,
    verbose=1,
    synthetic=False,
    tracking_uri=None,
):
    """Runs (or resumes) the search of a `TuningConfig`.

    Args:
        config: a `TuningConfig`, or a name/path for `load_tuning_config`.
        tuner, max_trials, epochs, seed, train_examples, val_examples:
            override the config's values.
        smoke: run `config.smoke_version()`.
        directory, project_name, overwrite: keras-tuner state (project name
            defaults to the config name).
        data_dir: dataset folder (else `$PEPITA_DATA_DIR`).
        experiment: MLflow experiment name.
        verbose: keras-tuner verbosity.
        synthetic: search on `input_pipeline.synthetic_arrays` (shaped like the
            dataset) instead of the dataset; the runs' dataset inputs and
            the `pepita.synthetic` tag say so.
        tracking_uri: MLflow store (default: `MLFLOW_TRACKING_URI`, else
            MLflow's default).

    Returns:
        `(tuner, config, wall_seconds)`.
    """

    if not isinstance(config, configs.TuningConfig):
        config = configs.load_tuning_config(config)
    if smoke:
        config = config.smoke_version()
    changes = {
        "tuner": tuner,
        "max_trials": max_trials,
        "epochs": epochs,
        "seed": seed,
        "train_examples": train_examples,
        "val_examples": val_examples,
    }
    config = config.replace(**{k: v for k, v in changes.items() if v is not None})
    base = config.experiment_config
    # Around the cell: its settings, with the search's epochs and examples per trial.
    model_builder = RuleHyperModel.from_experiment(
        base.replace(epochs=config.epochs, train_examples=config.train_examples),
        space=config.space, seed=config.seed, num_train_examples=config.train_examples,
    )
    # Before any trial, state or MLflow run: an objective no trial logs
    # would make every trial fail.
    check_objective(config.objective, model_builder, config.name)
    params = config.params()
    params["smoke"] = smoke
    params["synthetic"] = synthetic
    _check_same_search(pathlib.Path(directory).resolve() / (project_name or config.name),
                       params, overwrite)
    search = tuners.build_tuner(
        config.tuner,
        model_builder,
        objective=config.objective,
        max_trials=config.max_trials,
        max_epochs=config.epochs,
        seed=config.seed,
        # Absolute: MLflow writes to a committed store's relative artifact
        # location from its repository root (tracking.artifact_context).
        directory=os.path.abspath(directory),
        project_name=project_name or config.name,
        overwrite=overwrite,
        experiment=experiment or tuners.DEFAULT_EXPERIMENT,
        tracking_uri=tracking_uri,
        search_params=params,
        tags={"pepita.rule": base.rule, "pepita.dataset": base.dataset,
              "pepita.architecture": base.architecture, "pepita.synthetic": synthetic},
        **dict(config.tuner_kwargs),
    )
    if verbose:
        _banner(config, base, data_dir, synthetic, search)
    start = time.monotonic()
    if tuners.is_chief():
        search.search(verbose=verbose)  # serves the oracle; needs no data
    else:
        (x, y), validation = _search_data(base, data_dir, config, synthetic)
        if not tuners.is_distributed():

            inputs = dataset_inputs.of_arrays(base, [(x, y), validation], data_dir, synthetic,
                                            splits=("train", "validation"))
            dataset_inputs.log_dataset_inputs(search.mlflow_client, search.parent_run_id, inputs)
        search.search(x, y, validation_data=validation, epochs=config.epochs,
                      verbose=verbose)
    return search, config, time.monotonic() - start


def _banner(config, base, data_dir, synthetic, search):
    """What this search will run, before its first trial."""
    from pepita_keras import console
    from pepita_keras.store import provenance

    space = ", ".join(f"{name}: {describe(spec)}"
                      for name, spec in search.hypermodel.space.items())
    source = "synthetic (no files)" if synthetic else str(
        data_dir or os.environ.get("PEPITA_DATA_DIR") or "TFDS")
    console.banner(f"pepita tune {config.name} — around {base.name} ({base.label})", [
        ("trials", f"{config.max_trials} × {config.epochs} epochs, {config.tuner} tuner, "
                   f"seed {config.seed}, "
                   f"{'minimising' if 'loss' in config.objective else 'maximising'} "
                   f"{config.objective}"),
        ("space", space),
        ("data", f"{source}: first {config.train_examples} training images, validated on "
                 f"the last {config.val_examples} (never the test set)"),
        ("store", f"{search.tracking_uri} (experiment {search.experiment!r})"),
        ("state", str(pathlib.Path(search.project_dir))),
        ("platform", provenance.platform_name()),
    ])


SEARCH_FILE = "pepita_search.json"


def _check_same_search(folder, params, overwrite):
    """Refuses to resume a search folder with other settings (as `reproduce` does for run folders).

    The settings that shape every trial (epochs, examples, objective, space,
    seed, data) are written beside keras-tuner's state when a search starts;
    a rerun must match them, or pass `--overwrite` / another `--project-name`.
    """
    from pepita_keras.store import json_files

    record = folder / SEARCH_FILE
    settings = json.loads(json.dumps(params, default=str))
    previous = None if overwrite else json_files.read_json(record)
    if previous is not None and previous != settings:
        changed = "; ".join(f"{key}: {previous.get(key)!r} → {settings.get(key)!r}"
                            for key in sorted(set(previous) | set(settings))
                            if previous.get(key) != settings.get(key))
        raise ValueError(
            f"the search in {folder} was started with other settings ({changed}); its "
            "trials would be ranked together with these. Rerun with the original options, "
            "or start a new search with --project-name NAME (or --overwrite to discard it).")
    folder.mkdir(parents=True, exist_ok=True)
    json_files.write_json(record, settings)


def logged_metric_names(hypermodel):
    """Names a trial's `fit` logs, e.g. `["accuracy", "loss", "val_accuracy", ...]`.

    Read from the model itself: `hypermodel.build` with the default
    hyperparameters, evaluated on one blank example (no data needed).

    Args:
        hypermodel: a `RuleHyperModel` (anything with `build(hp)`,
            `input_shape`).

    Returns:
        A sorted list: the evaluation metric names, then their `val_` forms.
    """
    model = hypermodel.build(keras_tuner.HyperParameters())
    x = np.zeros((1,) + tuple(hypermodel.input_shape), "float32")
    logs = model.evaluate(x, np.zeros((1,), "int64"), verbose=0, return_dict=True)
    names = sorted(logs)
    return names + [f"val_{name}" for name in names]


def check_objective(objective, hypermodel, config_name="the config"):
    """ValueError unless every objective name is a metric the trials log.

    Args:
        objective: a name, a `keras_tuner.Objective`, or a list of them.
        hypermodel: the search's hypermodel (see `logged_metric_names`).
        config_name: named in the message.
    """
    objectives = objective if isinstance(objective, (list, tuple)) else [objective]
    names = [getattr(item, "name", item) for item in objectives]
    logged = logged_metric_names(hypermodel)
    unknown = [name for name in names if name not in logged]
    if unknown:
        raise ValueError(
            f"objective={unknown[0]!r} is not a metric the trials log, so every "
            f"trial would fail; they log {', '.join(logged)}. Set objective to "
            "one of these in the tuning config "
            f"{config_name!r} (e.g. 'val_accuracy', maximised, or 'val_loss', "
            "minimised)."
        )


def _search_data(base, data_dir, config, synthetic=False):

    total = config.train_examples + config.val_examples
    if synthetic:
        (x, y), _ = input_pipeline.synthetic_arrays(base, num_train=total, num_test=1)
    else:
        (x, y), _ = datasets.load_arrays(base.dataset, data_dir)
    if total > len(x):
        raise ValueError(
            f"train_examples + val_examples = {total} exceeds the {len(x)} "
            f"training images of {base.dataset!r}."
        )
    # Validation from the training split's tail: the test set stays unseen.
    train = (x[: config.train_examples], y[: config.train_examples])
    validation = (x[-config.val_examples :], y[-config.val_examples :])
    return train, validation
