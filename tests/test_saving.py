"""`pepita_keras.saving.load_model`: corrupt files named as such, classes registered.

The round trip itself, for every rule: tests/test_rules.py.
"""

import os
import subprocess
import sys
import textwrap

import keras
import pytest

import pepita_keras
from pepita_keras.saving import load_model


@pytest.fixture
def saved(tmp_path):
    network = pepita_keras.paper_networks.paper_fc((6, 6, 1), 4, hidden_units=(8,), seed=0)
    model = pepita_keras.PEPITA(network, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), metrics=["accuracy"])
    path = tmp_path / "model.keras"
    model.save(path)
    return model, path


def test_truncated_file_is_reported_as_truncated_not_missing(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(data[: len(data) // 2])  # an interrupted copy
    with pytest.raises(ValueError, match=rf"truncated.keras' \({len(data) // 2} bytes\) "
                                         "is corrupt or truncated"):
        load_model(truncated)


def test_corrupt_member_is_reported(saved, tmp_path):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # one flipped byte inside the archive
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="is corrupt or truncated"):
        load_model(corrupt)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model file at .*absent.keras"):
        load_model(tmp_path / "absent.keras")


@pytest.mark.slow  # a fresh process per case: what it imports is the point
@pytest.mark.parametrize("imports, registered", [
    ("import pepita_keras", False),  # the rules load on first use only
    ("import pepita_keras; pepita_keras.PEPITA", True),
    ("import keras, pepita_keras", True),  # Keras there already: the rules load at once
    ("import pepita_keras.rules", True),
])
def test_which_imports_register_the_rules_for_keras_load_model(saved, imports, registered):
    _, path = saved
    script = textwrap.dedent(f"""
        {imports}
        import keras
        try:
            model = keras.saving.load_model({os.fspath(path)!r})
            print(type(model).__name__)
        except TypeError as error:
            print("not registered:", error)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr
    expected = "PEPITA" if registered else "not registered: Could not locate class 'PEPITA'"
    assert result.stdout.strip().splitlines()[-1].startswith(expected), result.stdout


@pytest.mark.slow  # a fresh process
def test_loads_in_a_fresh_process_without_importing_the_package_first(saved):
    # keras.saving.load_model alone cannot find the PEPITA class there.
    _, path = saved
    script = textwrap.dedent(f"""
        from pepita_keras.saving import load_model
        model = load_model({os.fspath(path)!r})
        print(type(model).__name__, model.feedback_matrix.shape)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["PEPITA", "(36,", "4)"]
