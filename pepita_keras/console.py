"""What the `pepita` command prints around the work: quiet start-up, a banner.

Interrupts: within `graceful_interrupts()`, a first Ctrl-C or SIGTERM asks a
training loop to stop at its next safe point (`stop_requested()`, checked after
each checkpointed epoch), a second stops at once.

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
import signal
import sys
import tempfile
import threading

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


# A first Ctrl-C or SIGTERM asks long work to stop at its next safe point (a
# training loop checks `stop_requested()` after each checkpointed epoch); a
# second one stops at once. Raising inside Keras's fit could land in a tf.data
# callback, where TensorFlow turns it into an error of its own.
_STOP = threading.Event()


def stop_requested():
    """Whether a first Ctrl-C / SIGTERM asked the current command to stop at a safe point."""
    return _STOP.is_set()


def _request_stop(signum, frame):
    if _STOP.is_set():
        raise KeyboardInterrupt
    _STOP.set()
    print("\nStopping after the current epoch (it is checkpointed); press Ctrl-C again to "
          "stop now.", file=sys.stderr, flush=True)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM ends a command as Ctrl-C does


@contextlib.contextmanager
def graceful_interrupts(at_safe_points=True):
    """Ctrl-C and SIGTERM within the block (main thread only).

    Args:
        at_safe_points: a first signal requests a stop (`stop_requested()`), a
            second raises `KeyboardInterrupt`; False: SIGTERM raises
            `KeyboardInterrupt` at once, as Ctrl-C does.
    """
    _STOP.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if at_safe_points:
        handlers = {signal.SIGINT: _request_stop, signal.SIGTERM: _request_stop}
    else:
        handlers = {signal.SIGTERM: _raise_interrupt}
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _STOP.clear()
