"""What the `pepita` command prints around the work: quiet start-up, a banner.

TensorFlow's C++ runtime writes start-up lines straight to file descriptor 2
(`WARNING: All log messages before absl::InitializeLog() ...`, `oneDNN custom
operations are on ...`), which `TF_CPP_MIN_LOG_LEVEL` does not silence in
TF 2.21. `quiet_native_startup()` loads TensorFlow with descriptor 2 sent to
a temporary file and replays every line except those known start-up notices,
so errors still show. `PEPITA_NATIVE_LOGS=1` shows everything.

Example:

```python
from pepita_keras import console

with console.quiet_native_startup():
    import keras  # loads TensorFlow
```
"""

import contextlib
import os
import sys
import tempfile

NATIVE_LOGS_ENV = "PEPITA_NATIVE_LOGS"
# Informational lines TensorFlow prints at every start on a CPU machine.
_STARTUP_NOTICES = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions",
    "rebuild TensorFlow with the appropriate compiler flags",
    "Could not find cuda drivers on your machine",
    "Unable to register cu",
    "computation placer already registered",
    "TF-TRT Warning",
    "cuda_executor.cc",
)


def is_startup_notice(line):
    """Whether `line` is one of TensorFlow's start-up notices (nothing to act on)."""
    return any(notice in line for notice in _STARTUP_NOTICES)


@contextlib.contextmanager
def quiet_native_startup():
    """Runs a block (an import of TensorFlow) with its start-up notices filtered out."""
    if os.environ.get(NATIVE_LOGS_ENV) or not hasattr(os, "dup"):
        yield
        return
    descriptor = 2  # where the C++ runtime writes, whatever sys.stderr is now
    sys.stderr.flush()
    saved = os.dup(descriptor)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), descriptor)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, descriptor)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if not is_startup_notice(line):
                    print(line, file=sys.stderr)


def banner(command, lines):
    """Prints `command` and `(label, value)` lines aligned, before long work starts."""
    width = max((len(label) for label, _ in lines), default=0)
    print(command, flush=True)
    for label, value in lines:
        print(f"  {label.ljust(width)}  {value}", flush=True)
