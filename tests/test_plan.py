"""`pepita reproduce --plan`: what each seed would train and the time the store's epochs predict."""

import json

import pytest

from pepita_keras import experiment_config, plan, reproduce
from pepita_keras.store import tracking


@pytest.fixture
def trained(tmp_path, mlflow_uri):
    """A 2-epoch synthetic fc_mnist_bp smoke seed 0, finished, in a fresh store."""
    config = experiment_config.load_config("fc_mnist_bp").smoke_version().replace(epochs=2)
    run_root = tmp_path / "runs"
    reproduce.reproduce(config, seeds=[0], synthetic=True, run_root=run_root, verbose=0)
    return config, run_root, mlflow_uri


def _store_and_seed0(uri):
    """`(client, experiment id, the trained seed 0 run)` of the `trained` store."""
    client = tracking.client(uri)
    experiment = client.get_experiment_by_name(tracking.REPRODUCTIONS_EXPERIMENT).experiment_id
    (seed0,) = [run for run in client.search_runs([experiment])
                if run.info.run_name.endswith("/seed0")]
    return client, experiment, seed0


def test_plan_reads_the_run_folders_and_the_store_epoch_times(trained):
    config, run_root, uri = trained
    client = tracking.client(uri)
    (seed0,) = [run for run in client.search_runs(
        [client.get_experiment_by_name(tracking.REPRODUCTIONS_EXPERIMENT).experiment_id])
        if run.info.run_name.endswith("/seed0")]
    recorded = [m.value for m in client.get_metric_history(seed0.info.run_id, "epoch_time_s")]
    assert len(recorded) == 2
    # Seed 1 was interrupted after its first epoch (as its state.json would say).
    folder = run_root / config.run_name / "seed1"
    folder.mkdir()
    (folder / "state.json").write_text(json.dumps(
        {"run_id": "r1", "epoch": 1, "finished": False, "settings": config.training_settings()}))

    lines = plan.describe(config, [0, 1, 2], run_root, uri)
    per_epoch = sum(recorded) / 2  # the median of two values
    assert lines[0].startswith(f"pepita reproduce {config.run_name}: plan")
    assert lines[1].endswith("seed0): finished; skipped")
    assert "seed1): resumes after epoch 1: 1 epoch" in lines[2]
    assert "seed2): new: 2 epochs" in lines[3]
    assert lines[4].startswith("  total: about") and "for 3 epochs at" in lines[4]
    assert f"{per_epoch:.1f} s/epoch (median of 2 epochs of 1 earlier" in lines[4]


def test_plan_names_a_folder_of_other_settings_and_an_unknown_time(tmp_path, trained):
    config, run_root, uri = trained
    changed = config.replace(learning_rate=0.05, is_smoke=False)  # fc_mnist_bp-custom-…
    # Another run name has no epochs of its own; its rule's runs give the estimate.
    lines = plan.describe(changed, [0], run_root, uri)
    assert "new: 2 epochs" in lines[1]
    assert "other bp fc mnist runs in the store" in lines[-1]
    # The same name with other settings (a shipped config that changed) is refused.
    monkey_folder = run_root / changed.run_name / "seed0"
    monkey_folder.mkdir(parents=True)
    (monkey_folder / "state.json").write_text(json.dumps(
        {"run_id": "r0", "epoch": 2, "finished": True, "settings": config.training_settings()}))
    lines = plan.describe(changed, [0], run_root, uri)
    assert "trained with other settings (learning_rate: 0.1 → 0.05)" in lines[1]
    # No store yet: nothing is created; the shipped figure for the net gives the time,
    # labelled as such (2 epochs × 2.4 s for FC MNIST).
    missing = tmp_path / "none.db"
    lines = plan.describe(config, [0], tmp_path / "elsewhere", f"sqlite:///{missing}")
    assert lines[-1].startswith("  total: about 0 min for 2 epochs at 2.4 s/epoch (no store at")
    assert "the figure shipped with the package" in lines[-1]
    assert not missing.exists()
    # A net with no shipped figure (CIFAR) stays unknown, and says why.
    cifar = experiment_config.load_config("fc_cifar10_bp").smoke_version()
    lines = plan.describe(cifar, [0], tmp_path / "elsewhere", f"sqlite:///{missing}")
    assert "time unknown (no store at" in lines[-1]


def test_plan_prefers_epochs_recorded_with_the_factorys_steps_per_call(trained):
    config, run_root, uri = trained
    client, experiment, seed0 = _store_and_seed0(uri)
    assert seed0.data.tags[tracking.STEPS_PER_CALL_TAG] == "32"  # TensorFlow's factory default
    recorded = sorted(m.value for m in client.get_metric_history(seed0.info.run_id,
                                                                 "epoch_time_s"))
    # A newer seed of the same cell from before the tag existed (one step per call): slower.
    old = tracking.create_run(client, experiment, f"{config.run_name}/seed7",
                              tags={tracking.ROLE_TAG: "seed"})
    for step in range(2):
        tracking.log_metrics(client, old, {"epoch_time_s": 1000.0}, step=step)
    seconds, source = plan.epoch_seconds(config, uri)
    assert seconds == sum(recorded) / 2 and source.endswith("earlier " + config.run_name
                                                            + " seeds in the store"), source
    # Without any tagged run the old epochs are used, and the line says what they were.
    client.delete_tag(seed0.info.run_id, tracking.STEPS_PER_CALL_TAG)
    seconds, source = plan.epoch_seconds(config, uri)
    assert "(one step per call)" in source, source
    assert seconds == (recorded[1] + 1000.0) / 2  # the median of both seeds' four epochs


def test_plan_estimates_from_this_machines_platform_first(trained):
    config, run_root, uri = trained
    client, experiment, seed0 = _store_and_seed0(uri)
    assert seed0.data.tags[tracking.PLATFORM_TAG] == "tensorflow-cpu"
    recorded = [m.value for m in client.get_metric_history(seed0.info.run_id, "epoch_time_s")]
    # A newer seed merged from a GPU machine: 1000× faster epochs, another platform.
    gpu = tracking.create_run(client, experiment, f"{config.run_name}/seed8", tags={
        tracking.ROLE_TAG: "seed", tracking.PLATFORM_TAG: "jax-gpu",
        tracking.STEPS_PER_CALL_TAG: "128"})
    for step in range(2):
        tracking.log_metrics(client, gpu, {"epoch_time_s": 0.001}, step=step)
    seconds, source = plan.epoch_seconds(config, uri, platform="tensorflow-cpu")
    assert seconds == sum(recorded) / 2 and "recorded on" not in source, source
    # On a GPU machine the GPU's epochs count, and on a platform with no runs the
    # estimate comes from the others, saying from which.
    assert plan.epoch_seconds(config, uri, platform="jax-gpu")[0] == 0.001
    seconds, source = plan.epoch_seconds(config, uri, platform="jax-cpu")
    assert "recorded on jax-gpu, not on this machine's jax-cpu" in source, source
    # This machine: TensorFlow here (KERAS_BACKEND as `import pepita_keras` sets it).
    assert tracking.likely_platform().startswith("tensorflow-")
