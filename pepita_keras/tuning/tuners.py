"""keras-tuner tuners that record every search in MLflow.

`MLflowTracking` is a `keras_tuner.Tuner` subclass meant to be mixed in
after a tuner class (`class T(keras_tuner.RandomSearch, MLflowTracking)`);
it uses keras-tuner's own extension points, never its files:

- `search` opens (or, on resume, reopens) one **parent run** per search,
  found again by the `pepita.search_id` tag;
- `on_trial_begin` opens one **nested run per trial**, named
  `<project>/trial_<id>` (tag `mlflow.parentRunId`), or reopens the run of
  the same trial id when the trial is re-run (a search resumed after a kill
  re-runs the trial that was in flight) — so the store never holds two runs
  of one trial;
- the trial's hyperparameters are the run's params, `on_epoch_end` logs the
  epoch's metrics in the vocabulary of `pepita_keras.store.tracking` (`train_*`,
  `val_*` for the held-out validation split, `learning_rate`,
  `epoch_time_s`; step = epoch number 1 … N), `run_trial` logs the final
  `objective` (keras-tuner's value: best epoch, averaged over executions);
- every run carries `pepita.role` (`search` / `trial`) and the `tags` given
  (`pepita.rule`, `pepita.dataset`, `pepita.architecture` from `pepita tune`);
- `on_trial_end` records the trial status (`pepita.trial_status`:
  COMPLETED / INVALID / FAILED) and terminates the run, *before* the oracle
  is told, so a kill in between only makes keras-tuner re-run the trial;
- when the search ends the best trial's run is tagged
  `pepita.best_trial=true` and keeps its trained model as an MLflow model
  (single-process searches: the chief of a distributed search has no
  trained models), and the parent gets `best_objective`, the best trial id
  and its hyperparameters (`best.<name>` tags).

Only `mlflow.MlflowClient` calls with explicit run ids are used (through
`pepita_keras.store.tracking`): MLflow's fluent active-run stack is per thread, and
the chief of a distributed search serves gRPC requests from other threads.

Distributed search (keras-tuner chief/worker mode): with
`KERASTUNER_TUNER_ID=chief` the process runs the oracle as a gRPC server and
creates the parent run; processes with `KERASTUNER_TUNER_ID=tuner0`, … run
trials and log their nested runs; the chief tags the best trial when all
trials have ended. All processes need the same `directory`/`project_name`
(or the same `search_id`) and the same MLflow store.
"""

import hashlib
import json
import os
import re
import time

import keras
import keras_tuner
import numpy as np
from keras_tuner.engine import trial as trial_module

from pepita_keras import experiment_config
from pepita_keras.store import provenance, tracking

TUNERS = {
    "random": keras_tuner.RandomSearch,
    "hyperband": keras_tuner.Hyperband,
    "bayesian": keras_tuner.BayesianOptimization,
}
DEFAULT_EXPERIMENT = tracking.TUNING_EXPERIMENT
# How long a worker waits for the chief to create the parent run.
PARENT_WAIT_S = 600

_MAX_TAG_LENGTH = 5000


def is_distributed():
    """Whether keras-tuner runs distributed (`KERASTUNER_ORACLE_IP` is set)."""
    return "KERASTUNER_ORACLE_IP" in os.environ


def is_chief():
    """Whether this process is the chief of a distributed search."""
    return is_distributed() and "chief" in os.environ.get("KERASTUNER_TUNER_ID", "")


def default_search_id(directory, project_name):
    """`<project_name>-<hash of the absolute project path>`: stable across reruns."""
    name = project_name or "untitled_project"
    path = os.path.abspath(os.path.join(directory or ".", name))
    digest = hashlib.sha1(path.encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}-{digest}"


def _check_search_id(search_id):
    # It is quoted inside MLflow filter strings.
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", search_id):
        raise ValueError(
            "search_id may only contain letters, digits, '_', '.' and '-'; "
            f"received search_id={search_id!r}."
        )
    return search_id


class MLflowTracking(keras_tuner.Tuner):
    """Mixin recording a keras-tuner search in MLflow (see module docstring).

    Put it after the tuner class: `class T(keras_tuner.Hyperband,
    MLflowTracking)`; `build_tuner` does this for the built-in tuners.

    Args:
        oracle, hypermodel: as for `keras_tuner.Tuner`.
        experiment: MLflow experiment name.
        tracking_uri: MLflow tracking URI (default: `MLFLOW_TRACKING_URI`,
            else MLflow's default store).
        search_id: identifies the search in MLflow across resumes and
            processes; defaults to `default_search_id(directory, project_name)`.
        search_params: flat dict logged as params of the parent run
            (e.g. the tuning config).
        tags: tags set on the parent and every trial run, e.g.
            `{"pepita.rule": "pepita", "pepita.dataset": "mnist",
            "pepita.architecture": "fc"}`; by default the rule and
            architecture of a `RuleHyperModel`.
        oracle_seed: if not None, the oracle's seed, applied as given:
            keras-tuner's `seed or random.randint(...)` turns `seed=0` into
            a random seed.
        **kwargs: passed to `keras_tuner.Tuner` (`directory`,
            `project_name`, `overwrite`, `executions_per_trial`, …).
    """

    def __init__(
        self,
        oracle,
        hypermodel=None,
        experiment=DEFAULT_EXPERIMENT,
        tracking_uri=None,
        search_id=None,
        search_params=None,
        oracle_seed=None,
        tags=None,
        **kwargs,
    ):
        if oracle_seed is not None:
            _seed_oracle(oracle, int(oracle_seed))
        # Before Tuner.__init__, which may reload the project's saved state.
        super().__init__(oracle, hypermodel, **kwargs)
        self.experiment = experiment
        self.tracking_uri = tracking.tracking_uri(tracking_uri)
        self.search_id = _check_search_id(
            search_id or default_search_id(kwargs.get("directory"), kwargs.get("project_name"))
        )
        self.search_params = dict(search_params or {})
        self.run_tags = dict(_hypermodel_tags(hypermodel), **(tags or {}))
        self._epoch_started = {}
        self._client = None
        self._experiment_id = None
        self._parent_run_id = None
        self._trial_runs = {}
        self._trial_objectives = {}

    # ------------------------------------------------------------------
    # MLflow plumbing.
    # ------------------------------------------------------------------
    @property
    def mlflow_client(self):
        if self._client is None:
            self._client = tracking.client(self.tracking_uri)
            self._experiment_id = tracking.experiment_id(self._client, self.experiment)
        return self._client

    @property
    def experiment_id(self):
        self.mlflow_client  # noqa: B018 (creates the experiment if needed)
        return self._experiment_id

    def _search_runs(self, *conditions):
        query = " and ".join(
            [f"tags.`pepita.search_id` = '{self.search_id}'", *conditions]
        )
        return self.mlflow_client.search_runs(
            [self.experiment_id], filter_string=query, max_results=1000
        )

    def _find_parent(self):
        runs = self._search_runs("tags.`pepita.role` = 'search'")
        if not runs:
            return None
        # Oldest first: if two were ever created, always use the same one.
        return sorted(runs, key=lambda r: r.info.start_time)[0].info.run_id

    @property
    def parent_run_id(self):
        """Id of this search's MLflow parent run (created or found)."""
        if self._parent_run_id is None:
            if is_distributed() and not is_chief():
                self._parent_run_id = self._wait_for_parent()
            else:
                self._parent_run_id = self._open_parent()
        return self._parent_run_id

    def _open_parent(self):
        client = self.mlflow_client
        run_id = self._find_parent()
        if run_id is not None:
            tracking.reopen_run(client, run_id)
            return run_id
        tags = {
            "pepita.role": "search",
            **self.run_tags,
            "pepita.search_id": self.search_id,
            "pepita.tuner": type(self).__name__,
            "pepita.project_dir": os.path.abspath(self.project_dir),
            "pepita.objective": self.oracle.objective.name,
            "pepita.objective_direction": self.oracle.objective.direction,
            "pepita.distributed": is_distributed(),
            **provenance.provenance_tags(provenance.command_line()),
        }
        run_id = tracking.create_run(
            client, self.experiment_id, self.project_name, tags=tags
        )
        params = {
            "tuner": type(self).__name__,
            "max_trials": self.oracle.max_trials,
            "oracle_seed": self.oracle.seed,
            "executions_per_trial": self.executions_per_trial,
            **self.search_params,
        }
        tracking.log_params(client, run_id, params)
        tracking.log_json_artifact(
            client, run_id, self.oracle.get_space().get_config(), "search_space.json"
        )
        return run_id

    def _wait_for_parent(self):
        deadline = time.monotonic() + PARENT_WAIT_S
        while True:
            run_id = self._find_parent()
            if run_id is not None:
                return run_id
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"No MLflow parent run with pepita.search_id={self.search_id!r} "
                    f"appeared in {PARENT_WAIT_S} s in experiment {self.experiment!r} "
                    f"of {self.tracking_uri}; start the chief (KERASTUNER_TUNER_ID="
                    "chief) with the same directory, project name and store."
                )
            time.sleep(1)

    def trial_run_id(self, trial_id):
        """MLflow run id of a trial of this search, or None."""
        if trial_id in self._trial_runs:
            return self._trial_runs[trial_id]
        runs = self._search_runs(
            "tags.`pepita.role` = 'trial'", f"tags.`pepita.trial_id` = '{trial_id}'"
        )
        if not runs:
            return None
        return sorted(runs, key=lambda r: r.info.start_time)[0].info.run_id

    # ------------------------------------------------------------------
    # keras-tuner hooks.
    # ------------------------------------------------------------------
    def search(self, *fit_args, **fit_kwargs):
        """`keras_tuner.Tuner.search`, recorded in MLflow (module docstring)."""
        if is_distributed() and not is_chief():
            return super().search(*fit_args, **fit_kwargs)
        parent = self.parent_run_id
        try:
            result = super().search(*fit_args, **fit_kwargs)
        except BaseException:
            tracking.finish_run(self.mlflow_client, parent, status="KILLED")
            raise
        # The chief returns once every worker's trials have ended; a single
        # process has run them itself (`on_search_end` did the same).
        self.record_best_trial()
        tracking.finish_run(self.mlflow_client, parent)
        return result

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        client = self.mlflow_client
        run_id = self.trial_run_id(trial.trial_id)
        tags = {"pepita.tuner_id": self.tuner_id, "pepita.trial_status": "RUNNING"}
        if run_id is None:
            run_id = tracking.create_run(
                client,
                self.experiment_id,
                f"{self.project_name}/trial_{trial.trial_id}",
                parent_run_id=self.parent_run_id,
                tags={
                    "pepita.role": "trial",
                    **self.run_tags,
                    "pepita.search_id": self.search_id,
                    "pepita.trial_id": trial.trial_id,
                    "pepita.attempts": 1,
                    **tags,
                },
            )
        else:
            # A re-run of this trial (resume after a kill, or a retry).
            attempts = int(client.get_run(run_id).data.tags.get("pepita.attempts", 1))
            tracking.reopen_run(client, run_id)
            tracking.set_tags(client, run_id, {"pepita.attempts": attempts + 1, **tags})
        self._trial_runs[trial.trial_id] = run_id
        tracking.log_params(client, run_id, trial_params(self.hypermodel, trial.hyperparameters))

    def on_epoch_begin(self, trial, model, epoch, logs=None):
        super().on_epoch_begin(trial, model, epoch, logs=logs)
        rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        self._epoch_started[trial.trial_id] = (time.perf_counter(), rate)

    def on_epoch_end(self, trial, model, epoch, logs=None):
        super().on_epoch_end(trial, model, epoch, logs=logs)
        run_id = self._trial_runs.get(trial.trial_id)
        if run_id is not None:
            metrics = {tracking.split_metric_name(k, "val"): v for k, v in (logs or {}).items()}
            started = self._epoch_started.pop(trial.trial_id, None)
            if started is not None:
                metrics["epoch_time_s"] = time.perf_counter() - started[0]
                metrics["learning_rate"] = started[1]
            # Step = epoch number (1 … N), as in the reproductions' runs.
            tracking.log_metrics(self.mlflow_client, run_id, metrics, step=epoch + 1)

    def run_trial(self, trial, *args, **kwargs):
        results = super().run_trial(trial, *args, **kwargs)
        from keras_tuner.src.engine import tuner_utils

        metrics = tuner_utils.convert_to_metrics_dict(results, self.oracle.objective)
        objective = (metrics or {}).get(self.oracle.objective.name)
        if objective is not None:
            self._trial_objectives[trial.trial_id] = float(objective)
        return results

    def on_trial_end(self, trial):
        run_id = self._trial_runs.pop(trial.trial_id, None)
        if run_id is not None:
            client = self.mlflow_client
            objective = self._trial_objectives.pop(trial.trial_id, None)
            if objective is not None and trial.status == trial_module.TrialStatus.COMPLETED:
                tracking.log_metrics(client, run_id, {"objective": objective})
            tags = {"pepita.trial_status": trial.status}
            if trial.message:
                tags["pepita.trial_message"] = trial.message[-_MAX_TAG_LENGTH:]
            tracking.set_tags(client, run_id, tags)
            completed = trial.status == trial_module.TrialStatus.COMPLETED
            tracking.finish_run(client, run_id, "FINISHED" if completed else "FAILED")
        # MLflow first: a kill between the two makes keras-tuner re-run the
        # trial into the same run, never leaves a finished trial RUNNING.
        super().on_trial_end(trial)

    # ------------------------------------------------------------------
    # Best trial.
    # ------------------------------------------------------------------
    def record_best_trial(self):
        """Tags the best trial's run and records it on the parent run.

        Returns:
            The best `keras_tuner` Trial, or None if no trial completed.
        """
        best = self.oracle.get_best_trials(1)
        if not best:
            return None
        best = best[0]
        client = self.mlflow_client
        parent = self.parent_run_id
        best_run = self.trial_run_id(best.trial_id)
        for run in self._search_runs(
            "tags.`pepita.role` = 'trial'", "tags.`pepita.best_trial` = 'true'"
        ):
            if run.info.run_id != best_run:
                tracking.set_tags(client, run.info.run_id, {"pepita.best_trial": "false"})
        if best_run is not None:
            tracking.set_tags(client, best_run, {"pepita.best_trial": "true"})
        tags = {
            "pepita.best_trial_id": best.trial_id,
            "pepita.best_run_id": best_run or "",
            **{f"best.{k}": v for k, v in best.hyperparameters.values.items()},
        }
        tracking.set_tags(client, parent, tags)
        counts = {}
        for trial in self.oracle.trials.values():
            counts[trial.status] = counts.get(trial.status, 0) + 1
        metrics = {f"trials_{k.lower()}": v for k, v in counts.items()}
        if best.score is not None:
            metrics["best_objective"] = best.score
        tracking.log_metrics(client, parent, metrics)
        if best_run is not None and not is_distributed():
            self._log_best_model(best_run)
        return best

    def _log_best_model(self, run_id):
        """Logs the best trial's trained model on its run, once."""
        client = self.mlflow_client
        if tracking.tag_is_true(client.get_run(run_id).data.tags.get("pepita.model_logged")):
            return
        try:
            model = self.get_best_models(1)[0]
        except Exception as error:  # e.g. its checkpoint was deleted
            tracking.set_tags(client, run_id, {"pepita.model_error": repr(error)[:500]})
            return
        shape = getattr(self.hypermodel, "input_shape", None)
        # An example input gives the logged model its signature (MLflow warns without one).
        example = np.zeros((1, *shape), "float32") if shape else None
        tracking.log_keras_model_once(client, run_id, model, input_example=example)
        tracking.set_tags(client, run_id, {"pepita.model_logged": True})


def trial_params(hypermodel, hp):
    """What a trial records: its resolved settings in a reproduction seed's vocabulary.

    For a `RuleHyperModel`, the training settings of `hypermodel.resolve(hp)`
    (`hidden_activation`, `lr_decay_epochs`, `rule_kwargs.feedback_scale`, …),
    so a trial and a seed compare column by column in MLflow; then the
    hyperparameter values themselves, under their own names, or as
    `hp.<name>` where that name already holds the setting in another form
    (`hidden_units` 256 → setting `[256]`).
    """
    values = dict(hp.values)
    resolve = getattr(hypermodel, "resolve", None)
    if resolve is None:
        return values
    params = experiment_config.training_settings(resolve(hp).flatten())
    for name, value in values.items():
        same = name in params and tracking.param_value(params[name]) == tracking.param_value(value)
        if name not in params or same:
            params[name] = value
        else:
            params[f"hp.{name}"] = value
    return params


def _hypermodel_tags(hypermodel):
    """`pepita.rule` / `pepita.architecture` of a `RuleHyperModel` (else none)."""
    tags = {}
    rule = getattr(hypermodel, "rule_class", None)
    if rule is not None:
        # The rule names of the reproduction configs (`bp`, `pepita`, …).
        tags["pepita.rule"] = vars(rule).get("rule_name", rule.__name__.lower())
    if getattr(hypermodel, "architecture", None):
        tags["pepita.architecture"] = hypermodel.architecture
    return tags


def _seed_oracle(oracle, seed):
    oracle.seed = seed
    oracle._seed_state = seed
    if hasattr(oracle, "_random_state"):  # BayesianOptimizationOracle
        import numpy as np

        oracle._random_state = np.random.RandomState(seed)
        oracle.gpr = oracle._make_gpr()


class RandomSearch(keras_tuner.RandomSearch, MLflowTracking):
    """`keras_tuner.RandomSearch` recorded in MLflow (`MLflowTracking`)."""


class Hyperband(keras_tuner.Hyperband, MLflowTracking):
    """`keras_tuner.Hyperband` recorded in MLflow (`MLflowTracking`)."""


class BayesianOptimization(keras_tuner.BayesianOptimization, MLflowTracking):
    """`keras_tuner.BayesianOptimization` recorded in MLflow (`MLflowTracking`)."""


TRACKED_TUNERS = {
    "random": RandomSearch,
    "hyperband": Hyperband,
    "bayesian": BayesianOptimization,
}


def build_tuner(
    kind,
    hypermodel,
    *,
    objective="val_accuracy",
    max_trials=10,
    max_epochs=3,
    seed=None,
    directory="tuning",
    project_name="search",
    overwrite=False,
    track=True,
    experiment=DEFAULT_EXPERIMENT,
    tracking_uri=None,
    search_id=None,
    search_params=None,
    tags=None,
    **kwargs,
):
    """Makes a keras-tuner tuner, recorded in MLflow unless `track=False`.

    Args:
        kind: `"random"`, `"hyperband"` or `"bayesian"`.
        hypermodel: a `RuleHyperModel` (or any `keras_tuner.HyperModel`).
        objective: metric to maximise/minimise (keras-tuner infers the
            direction from the name), e.g. `"val_accuracy"`.
        max_trials: number of trials. For Hyperband (whose schedule is set by
            `max_epochs` and `factor`) it caps the trials: the search stops
            there even inside a bracket.
        max_epochs: Hyperband's largest epoch budget per trial (ignored by
            the other tuners: pass `epochs` to `search`).
        seed: oracle seed (0 is honoured, unlike plain keras-tuner).
        directory, project_name: where keras-tuner keeps the search state;
            rerunning with the same values resumes the search
            (`overwrite=False`).
        overwrite: start from scratch, deleting the saved state.
        track: record in MLflow (`MLflowTracking`).
        experiment, tracking_uri, search_id, search_params, tags: see
            `MLflowTracking`.
        **kwargs: passed to the keras-tuner class (e.g. `factor`,
            `hyperparameters`, `tune_new_entries`, `executions_per_trial`,
            `num_initial_points`).

    Returns:
        The tuner; call `tuner.search(x, y, validation_data=..., epochs=...)`.

    Example:

    ```python
    tuner = build_tuner("hyperband", hypermodel, max_epochs=9, max_trials=30,
                        directory="tuning", project_name="pepita_fc", seed=0)
    tuner.search(x, y, validation_data=(x_val, y_val))
    tuner.get_best_hyperparameters()[0].values
    ```
    """
    if kind not in TUNERS:
        raise ValueError(f"kind must be one of {sorted(TUNERS)}. Received: kind={kind!r}.")
    if max_trials is not None and (not isinstance(max_trials, int) or max_trials < 1):
        raise ValueError(f"max_trials must be a positive int; received {max_trials!r}.")
    kwargs.update(
        objective=objective,
        seed=seed,
        directory=directory,
        project_name=project_name,
        overwrite=overwrite,
    )
    if kind == "hyperband":
        kwargs["max_epochs"] = max_epochs
    else:
        kwargs["max_trials"] = max_trials
    if track:
        cls = TRACKED_TUNERS[kind]
        kwargs.update(
            experiment=experiment,
            tracking_uri=tracking_uri,
            search_id=search_id,
            search_params=search_params,
            oracle_seed=seed,
            tags=tags,
        )
    else:
        cls = TUNERS[kind]
        if seed == 0:
            raise ValueError(
                "keras-tuner treats seed=0 as 'no seed'; use track=True (which "
                "honours it) or another seed."
            )
    tuner = cls(hypermodel, **kwargs)
    if kind == "hyperband" and max_trials is not None:
        if isinstance(tuner.oracle, keras_tuner.Oracle):  # not a worker's proxy
            tuner.oracle.max_trials = max_trials
    return tuner


def trial_summary(tuner, num_trials=None):
    """Completed trials of a tuner, best first, as plain dicts.

    Returns:
        `[{"trial_id", "score", "status", "hyperparameters"}]`.
    """
    trials = tuner.oracle.get_best_trials(num_trials or len(tuner.oracle.trials))
    return [
        {
            "trial_id": t.trial_id,
            "score": t.score,
            "status": t.status,
            "hyperparameters": json.loads(json.dumps(t.hyperparameters.values, default=str)),
        }
        for t in trials
    ]
