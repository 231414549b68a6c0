"""The CLI's console: TensorFlow's start-up notices filtered, everything else kept."""

import os
import subprocess
import sys

import pytest

from pepita_keras import console


def test_start_up_notices_are_dropped_and_other_native_lines_replayed(capfd):
    with console.quiet_native_startup():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
                    b"written to STDERR\n")
        os.write(2, b"I0000 00:00:1 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"E0000 something real went wrong\n")
    err = capfd.readouterr().err
    assert err.strip().splitlines() == ["E0000 something real went wrong"]


def test_the_environment_variable_shows_everything(capfd, monkeypatch):
    monkeypatch.setenv(console.NATIVE_LOGS_ENV, "1")
    with console.quiet_native_startup():
        os.write(2, b"I0000 oneDNN custom operations are on.\n")
    assert "oneDNN" in capfd.readouterr().err


@pytest.mark.slow  # a fresh process importing TensorFlow
def test_pepita_reproduce_starts_without_tensorflows_notices(tmp_path):
    script = ("from pepita_keras import cli; import sys; "
              "sys.exit(cli.main(['reproduce', 'fc_mnist_pepita', '--smoke', '--synthetic', "
              f"'--run-root', {str(tmp_path / 'runs')!r}, '--tracking-uri', "
              f"'sqlite:///{tmp_path / 'store.db'}', '--verbose', '0']))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, env={k: v for k, v in os.environ.items()
                                              if k != console.NATIVE_LOGS_ENV})
    assert result.returncode == 0, result.stderr
    assert "oneDNN" not in result.stderr and "absl::InitializeLog" not in result.stderr
