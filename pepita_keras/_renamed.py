"""Module paths renamed in 0.1: the old path still imports, with a `DeprecationWarning`.

Each old module file (`pepita_keras/experiment.py`, `models.py`, `network.py`,
`epoch_data.py`) calls `alias`, which makes the old name the new module itself
(`sys.modules`), so attribute access, `monkeypatch` and `isinstance` checks
through either name see one module. The old files go in the next release.
"""

import importlib
import sys
import warnings

# Old module name → new module name.
RENAMED = {
    "pepita_keras.experiment": "pepita_keras.experiment_config",
    "pepita_keras.models": "pepita_keras.paper_networks",
    "pepita_keras.network": "pepita_keras.blocks",
    "pepita_keras.epoch_data": "pepita_keras.input_pipeline",
}


def alias(old_name):
    """Makes the module `old_name` the renamed module and warns once per import.

    Args:
        old_name: the old module's `__name__` (a key of `RENAMED`).

    Returns:
        The new module.
    """
    new_name = RENAMED[old_name]
    warnings.warn(f"{old_name} is now {new_name}; the old name goes in the next release.",
                  DeprecationWarning, stacklevel=3)
    module = importlib.import_module(new_name)
    sys.modules[old_name] = module
    return module
