"""pepita_keras: PEPITA and its rule family as Keras 3 models.

Public names: `convert` (any Keras model, any rule), the rules (`PEPITA`,
`MEMPEPITA`, `Backprop`, `FeedbackAlignment`, `DirectFeedbackAlignment`, `DRTP`,
`ForwardForward`, `UniformSignFeedback`, `BatchRandomSignFeedback`,
`FixedRandomSignFeedback`, `KolenPollack`), their base `LearningRuleModel`, and
the `paper_networks`, `datasets`, `callbacks` and `saving` modules (`models` is
the deprecated name of `paper_networks`).

They load, with Keras and its backend, on first use (`from pepita_keras
import PEPITA`, `pepita_keras.paper_networks`), so that the `pepita` command and
`import pepita_keras` start without TensorFlow. Loading any of them imports
every rule, which registers the rule classes with Keras, as
`keras.saving.load_model` needs for a saved rule model. If Keras is already
imported, `import pepita_keras` loads them at once, so

```python
import keras
import pepita_keras

model = keras.saving.load_model("pepita_mnist.keras")
```

works; `pepita_keras.saving.load_model` works in any order.
"""

import importlib
import importlib.util
import os
import sys


def _installed(module):
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# TensorFlow is the default backend. An install without it (the `jax-only`
# extra) gets JAX instead of an ImportError from Keras; KERAS_BACKEND wins.
os.environ.setdefault(
    "KERAS_BACKEND",
    "jax" if not _installed("tensorflow") and _installed("jax") else "tensorflow",
)

__version__ = "0.1.0"

# Public name → the module defining it (a module name alone: the module itself).
_PUBLIC = {
    "LearningRuleModel": "pepita_keras.core",
    "PEPITA": "pepita_keras.rules.pepita",
    "MEMPEPITA": "pepita_keras.rules.mempepita",
    "Backprop": "pepita_keras.rules.backprop",
    "DirectFeedbackAlignment": "pepita_keras.rules.dfa",
    "DRTP": "pepita_keras.rules.drtp",
    "FeedbackAlignment": "pepita_keras.rules.feedback_alignment",
    "ForwardForward": "pepita_keras.rules.forward_forward",
    "UniformSignFeedback": "pepita_keras.rules.sign_symmetry",
    "BatchRandomSignFeedback": "pepita_keras.rules.sign_symmetry",
    "FixedRandomSignFeedback": "pepita_keras.rules.sign_symmetry",
    "KolenPollack": "pepita_keras.rules.kolen_pollack",
    "convert": "pepita_keras.conversion",
    "callbacks": None,
    "datasets": None,
    "paper_networks": None,
    "saving": None,
}
# Deprecated public module names (see `pepita_keras._renamed`).
_RENAMED_MODULES = ("models",)

__all__ = sorted(_PUBLIC, key=str.lower) + ["__version__"]


def _load():
    importlib.import_module("pepita_keras.rules")  # every rule, registered with Keras
    for name in ("callbacks", "datasets", "paper_networks"):
        importlib.import_module(f"pepita_keras.{name}")


def __getattr__(name):
    if name in _RENAMED_MODULES:
        return importlib.import_module(f"pepita_keras.{name}")  # warns, returns the new module
    if name not in _PUBLIC:
        raise AttributeError(f"module 'pepita_keras' has no attribute {name!r}")
    _load()
    module = importlib.import_module(_PUBLIC[name] or f"pepita_keras.{name}")
    value = module if _PUBLIC[name] is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))


if "keras" in sys.modules:
    _load()
