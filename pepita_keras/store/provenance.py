"""Where and from what a run was produced: versions, devices, CPU, git commit.

Recorded as tags and a JSON artifact on every reproduction and tuning run, so
a number in the results table can be traced to the code and machine behind it.

Example:

```python
tags = provenance.provenance_tags(provenance.command_line())
provenance.environment_info()["hardware"]   # e.g. "AMD EPYC, 2 CPU cores"
```
"""

import functools
import os
import pathlib
import platform
import subprocess
import sys

import keras
import numpy

import pepita_keras
from pepita_keras.store import tracking

COMMIT_ENV_VAR = "PEPITA_GIT_COMMIT"


def cpu_model():
    """The CPU model name (from /proc/cpuinfo on Linux), else `platform.processor()`."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_types():
    """Device kinds the Keras backend sees, e.g. `["CPU", "GPU"]` (no TF needed under JAX)."""
    return [kind for kind, _ in _devices()]


def _devices():
    """`(kind, model name)` of each device the Keras backend sees."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return [(device.platform.upper(), getattr(device, "device_kind", ""))
                for device in jax.devices()]
    if backend == "tensorflow":
        import tensorflow as tf

        found = []
        for device in tf.config.list_physical_devices():
            name = ""
            if device.device_type != "CPU":
                name = tf.config.experimental.get_device_details(device).get("device_name", "")
            found.append((device.device_type, name))
        return found
    return [("CPU", "")]


def platform_name():
    """The Keras backend and the kind of device it trains on, e.g. `"tensorflow-cpu"`, `"jax-gpu"`.

    Recorded on every reproduction run (tag `pepita.platform`), so runs of one
    cell on different platforms are shown side by side, never averaged.
    """
    return _platform_of(device_types())


def _platform_of(kinds):
    accelerator = next((kind for kind in ("GPU", "TPU") if kind in kinds), "CPU")
    return f"{keras.backend.backend()}-{accelerator.lower()}"


@functools.lru_cache(maxsize=1)
def environment_info():
    """Versions, devices and CPU of this machine, as a flat dict.

    Returns:
        `{"python", "tensorflow", "keras", "numpy", "mlflow", "pepita_keras",
        "platform", "cpu", "cpu_count", "devices", "hardware"}`; `hardware`
        is a one-line summary for results tables.
    """
    try:
        import mlflow

        mlflow_version = mlflow.__version__
    except ImportError:
        mlflow_version = None
    found = _devices()
    devices = [kind for kind, _ in found]
    accelerators = [name or kind for kind, name in found if kind != "CPU"]
    cpu_count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    hardware = f"{cpu_model()}, {cpu_count} CPU cores"
    if accelerators:
        hardware += ", " + ", ".join(
            f"{accelerators.count(name)}×{name}" for name in sorted(set(accelerators))
        )
    return {
        "python": platform.python_version(),
        # The backend module is loaded by pepita_keras.ops; the other may be absent.
        "tensorflow": getattr(sys.modules.get("tensorflow"), "__version__", None),
        "jax": getattr(sys.modules.get("jax"), "__version__", None),
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "numpy": numpy.__version__,
        "mlflow": mlflow_version,
        "pepita_keras": pepita_keras.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": cpu_count,
        "devices": ",".join(devices),
        "hardware": hardware,
        "platform_name": _platform_of(devices),
    }


def git_info(path=None):
    """Commit and dirty flag of the git checkout holding `path`.

    Args:
        path: a folder inside the checkout; defaults to this package's folder.

    Returns:
        `{"commit": sha or None, "dirty": bool or None, "branch": name or None}`
        (all None outside a git checkout or without git). A copy of a
        checkout without its `.git` (e.g. the tree sent to a GPU machine) can
        name its commit in the environment variable `PEPITA_GIT_COMMIT`,
        optionally with a `+dirty` suffix.
    """
    folder = pathlib.Path(path or pathlib.Path(__file__).resolve().parent)

    def git(*args):
        result = subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=30
        )
        if result.returncode != 0:
            raise OSError(result.stderr)
        return result.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        # Untracked files do not change what the committed code computes.
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        branch = git("rev-parse", "--abbrev-ref", "HEAD")
    except (OSError, subprocess.SubprocessError):
        named = os.environ.get(COMMIT_ENV_VAR)
        if named:
            commit, _, dirty = named.partition("+")
            return {"commit": commit, "dirty": dirty == "dirty", "branch": None}
        return {"commit": None, "dirty": None, "branch": None}
    return {"commit": commit, "dirty": dirty, "branch": branch}


def provenance_tags(command=None):
    """Tags for a run: git commit/dirty (MLflow's own tag names too), command, hardware."""
    info = git_info()
    env = environment_info()
    tags = {
        "git.commit": info["commit"] or "unknown",
        "git.dirty": info["dirty"],
        "git.branch": info["branch"] or "unknown",
        "hardware": env["hardware"],
        tracking.PLATFORM_TAG: env["platform_name"],
        "tensorflow": env["tensorflow"],
        "jax": env["jax"],
        "keras": env["keras"],
    }
    if info["commit"]:
        tags["mlflow.source.git.commit"] = info["commit"]
    if command:
        tags["command"] = command
    return tags


def command_line():
    """The command that started this process, as a shell-like string."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("pepita", "cli.py")):
        argv[0] = "pepita"
    return " ".join(argv)
