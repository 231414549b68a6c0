"""Shared pytest setup.

TensorFlow is configured here, before any test imports it: two logical CPU
devices (for the MirroredStrategy tests) and quiet logs.

Tests marked `slow` (multi-epoch trainings, fresh processes) are opt-in:
they run with `--run-slow`, and always under `CI=true`. Tests marked
`real_data` need real MNIST (`PEPITA_DATA_DIR`); under `CI=true` its absence
is an error, not a skip.
"""

import os
import pathlib
import shutil

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
if _cpus:
    try:
        tf.config.set_logical_device_configuration(
            _cpus[0],
            [tf.config.LogicalDeviceConfiguration()] * 2,
        )
    except RuntimeError:  # already initialised by another import
        pass


def mnist_dir():
    """The real-MNIST folder under PEPITA_DATA_DIR, or None."""
    root = os.environ.get("PEPITA_DATA_DIR")
    if not root:
        return None
    for candidate in (pathlib.Path(root) / "mnist", pathlib.Path(root)):
        if (candidate / "train-images-idx3-ubyte.gz").exists() or (
            candidate / "train-images-idx3-ubyte"
        ).exists():
            return candidate
    return None


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run the tests marked slow (always run under CI=true)",
    )


def pytest_collection_modifyitems(config, items):
    _skip_slow_unless_asked(config, items)
    _skip_real_data_without_mnist(items)


def _skip_slow_unless_asked(config, items):
    if config.getoption("--run-slow") or os.environ.get("CI") == "true":
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow (CI=true runs it)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _skip_real_data_without_mnist(items):
    """Skip real-data tests without data; under CI=true they must not skip."""
    if mnist_dir() is not None:
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(
            "CI=true but real MNIST was not found, so real-data tests would "
            "be skipped. Set PEPITA_DATA_DIR to a folder holding "
            f"mnist/train-images-idx3-ubyte.gz (PEPITA_DATA_DIR="
            f"{os.environ.get('PEPITA_DATA_DIR')!r})."
        )
    reason = (
        "real MNIST not found: set PEPITA_DATA_DIR to a folder holding "
        "mnist/train-images-idx3-ubyte.gz (e.g. ../shared/data)"
    )
    for item in items:
        if "real_data" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def mirrored_strategy():
    """One 2-replica MirroredStrategy for the whole session.

    Several MirroredStrategy instances in one process can reuse collective
    instance keys and abort each other's all-reduces; share one.
    """
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def float64():
    """Runs Keras in float64, so that tolerances are not limited by float32 rounding."""
    import keras

    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx("float32")


@pytest.fixture(autouse=True)
def _fresh_dtype_policy():
    """Each test starts with Keras's global dtype policy unset.

    Keras caches the global policy at its first use (creating any layer) and
    `set_floatx` does not reset it, so without this a float64 test would run
    in whatever policy an earlier test left (float32, mixed_float16).
    """
    from keras.src.backend.common import global_state

    global_state.set_global_attribute("dtype_policy", None)
    yield
    global_state.set_global_attribute("dtype_policy", None)


@pytest.fixture(autouse=True, scope="session")
def _mlflow_store_in_a_temporary_folder(tmp_path_factory):
    """Tests never write MLflow runs into the working tree (./mlflow.db, ./mlruns).

    Without MLFLOW_TRACKING_URI, MLflow uses ./mlflow.db (or ./mlruns if that
    folder holds data) in the working directory; tests that need their own
    store still set it themselves. Subprocesses inherit the variable.
    """
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    folder = tmp_path_factory.mktemp("mlflow_default")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    yield
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory):
    """An empty MLflow SQLite store; creating its schema takes seconds, copying it none."""
    from pepita_keras.store import tracking

    path = tmp_path_factory.mktemp("mlflow") / "template.db"
    tracking.client(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_uri(tmp_path, mlflow_template, monkeypatch):
    """A fresh store per test, also for subprocesses (MLFLOW_TRACKING_URI)."""
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri

