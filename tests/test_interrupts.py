"""Ctrl-C and `kill` end `pepita reproduce` in a short message, marked runs and a resumable state.

What is checked is what the user sees: the exit status, the lines on stderr,
the MLflow statuses and tags of the runs, and that rerunning the printed
command finishes the cell with each parent curve holding one value per epoch.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from pepita_keras import cli, reproduce
from pepita_keras.store import checkpoints, tracking


def _runs(uri):
    client = tracking.client(uri)
    experiment = client.get_experiment_by_name(reproduce.DEFAULT_EXPERIMENT)
    return client, {run.info.run_name: run
                    for run in client.search_runs([experiment.experiment_id])}


def test_ctrl_c_marks_the_runs_prints_how_to_resume_and_the_rerun_finishes(
        tmp_path, monkeypatch, capsys):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    argv = ["reproduce", "fc_mnist_pepita", "--smoke", "--synthetic", "--epochs", "2",
            "--seeds", "0,1", "--run-root", str(tmp_path / "runs"), "--tracking-uri", uri,
            "--verbose", "0"]
    real_end = checkpoints.EpochCheckpoint.on_epoch_end

    def interrupted_after_first_epoch(self, epoch, logs=None):
        real_end(self, epoch, logs)
        raise KeyboardInterrupt  # what Ctrl-C raises, once epoch 1 is checkpointed

    with monkeypatch.context() as patch:
        patch.setattr(checkpoints.EpochCheckpoint, "on_epoch_end", interrupted_after_first_epoch)
        assert cli.main(argv) == 130
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 2 and "interrupted" in error[0] and "rerun" in error[0]
    assert error[1].strip() == "pepita " + " ".join(argv)
    client, runs = _runs(uri)
    name = next(n for n in runs if "/" not in n)
    parent, seed0 = runs[name], runs[f"{name}/seed0"]
    assert f"{name}/seed1" not in runs
    assert seed0.info.status == "KILLED" and parent.info.status == "KILLED"
    assert parent.data.tags["pepita.unfinished_seeds"] == "0,1"

    assert cli.main(argv) == 0  # the printed command resumes
    client, runs = _runs(uri)
    parent = runs[name]
    assert parent.info.status == "FINISHED" and "pepita.unfinished_seeds" not in parent.data.tags
    assert {runs[f"{name}/seed{s}"].info.status for s in (0, 1)} == {"FINISHED"}
    history = client.get_metric_history(parent.info.run_id, "test_accuracy_mean")
    assert sorted(m.step for m in history) == [1, 2]  # once per epoch, not once per call


@pytest.mark.slow
def test_sigterm_stops_a_real_process_after_its_epoch(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    command = [sys.executable, "-m", "pepita_keras.cli", "reproduce", "fc_mnist_pepita",
               "--smoke", "--synthetic", "--epochs", "500", "--run-root", str(tmp_path / "runs"),
               "--tracking-uri", uri, "--verbose", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    for line in process.stdout:  # wait for training to be under way
        if "epoch 3/500" in line:
            break
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "rerun the same command" in err
    assert "Stopping after the current epoch" in err  # at a safe point, not mid-batch
    _, runs = _runs(uri)
    assert {run.info.status for run in runs.values()} == {"KILLED"}
