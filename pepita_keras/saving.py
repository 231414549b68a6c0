"""Loading `.keras` files of the rules with errors that say what is wrong.

`keras.saving.load_model` works for every rule once the rule classes
(`PEPITA`, `Backprop`, ...) are registered with Keras, which happens when they
are first imported (see `pepita_keras`). Two failures read badly there:

- before that, Keras reports "Could not locate class 'PEPITA'";
- a truncated or otherwise corrupt `.keras` file (an interrupted save or
  copy) is reported as "File not found", because Keras only recognises a
  `.keras` path as a model when it is a readable zip archive.

`load_model` here imports the rules (so the classes are registered) and
tells a missing file from a corrupt one before handing over to Keras.

Example:

```python
from pepita_keras.saving import load_model

model = load_model("pepita_mnist.keras")
```
"""

import os
import zipfile
import zlib

import keras

import pepita_keras.rules  # noqa: F401  (registers the rule classes with Keras)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """`keras.saving.load_model` with the rule classes registered.

    Args:
        filepath: path of a `.keras` file (other formats are passed to
            Keras unchanged).
        custom_objects, compile, safe_mode: as for
            `keras.saving.load_model`.

    Returns:
        The model (e.g. a compiled `pepita_keras.PEPITA`).

    Raises:
        FileNotFoundError: if `filepath` does not exist.
        ValueError: if a `.keras` file is not a complete zip archive
            (truncated or corrupt), naming its size.
    """
    path = os.fspath(filepath)
    if path.endswith(".keras") and not os.path.isdir(path):
        if not os.path.exists(path):
            raise FileNotFoundError(f"No model file at {path!r}.")
        if not zipfile.is_zipfile(path):
            raise _corrupt(path, "it is not a complete zip archive")
        try:
            with zipfile.ZipFile(path) as archive:
                broken = archive.testzip()
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as error:
            raise _corrupt(path, f"reading it failed ({error})") from error
        if broken is not None:
            raise _corrupt(path, f"its member {broken!r} fails its CRC check")
    return keras.saving.load_model(
        path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode
    )


def _corrupt(path, why):
    return ValueError(
        f"The model file {path!r} ({os.path.getsize(path)} bytes) is corrupt "
        f"or truncated: {why}. A `.keras` file is a zip archive; this one was "
        "probably cut short by an interrupted save or copy. Save the model "
        "again, or copy the file again from its source."
    )
