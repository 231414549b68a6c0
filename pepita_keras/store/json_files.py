"""Strict JSON files written atomically: run state, settings and artifacts.

Python's `json` writes bare `NaN`/`Infinity` tokens, which strict readers
(browsers, MLflow's UI, `jq`) reject; a diverged run's history has them, so
every JSON this package writes goes through `dumps`, where they become null.
`write_json` writes to a temporary name and renames it into place, so a
killed process leaves the previous file intact.

Example:

```python
json_files.write_json(folder / "state.json", {"epoch": 3, "history": {"loss": [nan]}})
json_files.read_json(folder / "state.json")   # {"epoch": 3, "history": {"loss": [None]}}
```
"""

import json
import math

import numpy as np


def json_safe(value):
    """`value` with every non-finite float replaced by None (strict JSON)."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return None
    return value


def dumps(data):
    """Strict JSON text of `data` (NaN/Inf become null, never bare `NaN` tokens)."""
    return json.dumps(json_safe(data), indent=2, sort_keys=True, default=str,
                      allow_nan=False)


def write_json(path, data):
    """Writes `data` to `path` atomically (a fresh temporary file, then rename; never via a link)."""
    from pepita_keras.store import safe_files

    safe_files.write_atomic(path, dumps(data))


def read_json(path):
    """The JSON content of `path`, or None if it does not exist.

    Raises:
        ValueError: naming the file, if it is empty or not valid JSON (files
            written here are atomic, so it was cut short or edited elsewhere).
    """
    if not path.exists():
        return None
    text = path.read_text(errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        what = "is empty" if not text.strip() else f"is not valid JSON ({error})"
        raise ValueError(
            f"{path} {what}; pepita writes it atomically, so it was cut short or edited "
            f"elsewhere (a full disk, a copy, an editor). Restore it from a backup, or "
            f"delete the folder {path.parent} to start that run over.") from None
