"""A seed's run-folder record (`state.json`) as `SeedState`: round trip, older folders, bad files."""

import json
import re

import pytest

from pepita_keras import experiment_config
from pepita_keras.store import json_files, recorder, seed_state
from pepita_keras.store.seed_state import STATE_FILE, SeedState


def test_a_saved_state_loads_equal_and_is_plain_json(tmp_path):
    state = SeedState("run123", seed=2, settings={"learning_rate": 0.1}, synthetic=True)
    assert SeedState.load(tmp_path) is None  # a new seed's folder
    state.history = {"loss": [0.5, float("nan")], "val_accuracy": [0.9, 0.95]}
    state.epoch, state.wall_time_s, state.checkpoint = 2, 3.5, "checkpoint-e0002.npz"
    state.save(tmp_path)
    assert SeedState.load(tmp_path) == SeedState(
        "run123", seed=2, settings={"learning_rate": 0.1}, synthetic=True, epoch=2,
        history={"loss": [0.5, None], "val_accuracy": [0.9, 0.95]}, wall_time_s=3.5,
        checkpoint="checkpoint-e0002.npz")  # NaN is written as null (strict JSON)
    text = json.loads((tmp_path / STATE_FILE).read_text())
    assert text["run_id"] == "run123" and text["finished"] is False


def test_a_folder_from_before_settings_resumes_on_its_config_text(tmp_path):
    config = experiment_config.load_config("fc_mnist_pepita")
    # What versions before `settings` wrote: the flattened config as JSON text.
    json_files.write_json(tmp_path / STATE_FILE, {
        "run_id": "old", "epoch": 3, "history": {}, "wall_time_s": 1.0,
        "checkpoint": "checkpoint-e0003.npz", "finished": False,
        "config": json.dumps(config.flatten())})
    state = SeedState.load(tmp_path)
    assert (state.settings, state.epoch, state.seed) == (None, 3, None)
    recorder.check_same_config(state.settings, state.config, config, "that folder")
    with pytest.raises(ValueError, match="learning_rate: 0.1 → 0.5"):
        recorder.check_same_config(state.settings, state.config,
                                     config.replace(learning_rate=0.5), "that folder")


@pytest.mark.parametrize("content", ["[1, 2]", '{"epoch": 3}', '{"run_id": 7}'])
def test_a_file_that_is_no_seed_state_names_itself(tmp_path, content):
    (tmp_path / STATE_FILE).write_text(content)
    with pytest.raises(ValueError, match=f"{tmp_path / STATE_FILE} is not a seed's state"):
        SeedState.load(tmp_path)


def test_plan_and_resume_read_a_folders_settings_the_same_way(tmp_path):
    # Both the tuple → list JSON round trip and a folder from before `settings` count as unchanged;
    # `--plan` says "other" exactly where resuming would be refused, with the same text.
    from pepita_keras import plan

    config = experiment_config.load_config("fc_mnist_pepita")
    changed = config.replace(learning_rate=0.5, hidden_units=(512,))
    for name, fields in (("new", {"settings": json.loads(json_files.dumps(config.training_settings()))}),
                         ("old", {"config": json.dumps(config.flatten())})):
        folder = tmp_path / name / "seed0"
        folder.mkdir(parents=True)
        json_files.write_json(folder / STATE_FILE, {"run_id": name, "epoch": 4, **fields})
        state = SeedState.load(folder)
        assert seed_state.changed_settings(state.settings, state.config, config) == ""
        assert plan.seed_state(folder.parent, 0, config) == ("resume", 4, "")
        text = seed_state.changed_settings(state.settings, state.config, changed)
        assert text == "hidden_units: [1024] → [512]; learning_rate: 0.1 → 0.5", text
        assert plan.seed_state(folder.parent, 0, changed) == ("other", 4, text)
        with pytest.raises(ValueError, match=re.escape(f"current options ({text})")):
            recorder.open_seed(None, folder, changed)
    assert seed_state.changed_settings(None, None, config) == ""  # nothing recorded: no claim
