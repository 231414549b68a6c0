"""A seed's run-folder record, `state.json`, as a typed `SeedState` (no Keras).

Kept apart from `checkpoints` (which needs Keras for the model's variables) so
that `pepita reproduce --plan` reads run folders without loading TensorFlow.
"""

import dataclasses
import json
import pathlib

from pepita_keras import experiment_config
from pepita_keras.store import json_files

# A seed folder's commit point.
STATE_FILE = "state.json"


@dataclasses.dataclass
class SeedState:
    """What a seed's run folder commits after every epoch (`state.json`).

    The file is the commit point of a kill-safe seed: it names the last
    checkpoint written, so a kill at any moment leaves a consistent pair.

    Args:
        run_id: the seed's MLflow run.
        seed: the seed.
        settings: the config's training settings when the seed started
            (`ExperimentConfig.training_settings()`); a resume with other
            settings is refused.
        synthetic: whether it trains on synthetic data.
        epoch: epochs completed and checkpointed.
        history: per-epoch logs, `{name: [value per epoch]}`.
        wall_time_s: training time summed over every session.
        checkpoint: file name of the last checkpoint in the folder, or None.
        finished: the seed's wrap-up (model, artifacts, tags) completed.
        diverged: `{"epoch": k, "non_finite": [...]}` once a value went
            non-finite; training stopped there.
        config: folders started before `settings` existed: the JSON text of
            that run's flattened config, which stands in for `settings`.

    Example:

    ```python
    state = SeedState.load(folder) or SeedState(run_id, seed=0, settings={})
    state.save(folder)
    ```
    """

    run_id: str
    seed: int | None = None
    settings: dict | None = None
    synthetic: bool = False
    epoch: int = 0
    history: dict = dataclasses.field(default_factory=dict)
    wall_time_s: float = 0.0
    checkpoint: str | None = None
    finished: bool = False
    diverged: dict | None = None
    config: str | None = None

    @classmethod
    def load(cls, folder):
        """The state in `folder`, or None if it has none yet.

        Raises:
            ValueError: naming the file, if it is not a seed's state (no
                `run_id`, or not a JSON object).
        """
        path = pathlib.Path(folder) / STATE_FILE
        data = json_files.read_json(path)
        if data is None:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("run_id"), str):
            raise ValueError(
                f"{path} is not a seed's state (no run_id); delete the folder {path.parent} "
                "to start that seed over.")
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def save(self, folder):
        """Writes `state.json` in `folder` atomically."""
        json_files.write_json(pathlib.Path(folder) / STATE_FILE, dataclasses.asdict(self))


def changed_settings(settings, legacy_config, config):
    """What `config` would change in a run folder's training settings: `"key: old → new; …"`.

    The one comparison behind refusing to resume a folder (`recorder`) and
    `pepita reproduce --plan`'s "other settings" line.

    Args:
        settings: the settings the folder recorded (`SeedState.settings` or
            `parent.json`'s), or None for folders from before they existed.
        legacy_config: those older folders' JSON text of the flattened config,
            or None (then there is nothing to compare: "").
        config: the `ExperimentConfig` about to train.

    Returns:
        The differing settings, sorted by name, or "" when there are none.
    """
    if settings is None:
        if legacy_config is None:
            return ""
        # Written before `settings` existed: a JSON fingerprint of config.flatten().
        settings = experiment_config.training_settings(json.loads(legacy_config))
    differences = experiment_config.settings_differences(
        # Compared as JSON: the recorded settings went through it (tuples → lists).
        settings, config, lambda value: json.loads(json_files.dumps(value)))
    return "; ".join(f"{key}: {old} → {new}" for key, (old, new) in sorted(differences.items()))
