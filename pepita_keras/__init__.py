"""pepita_keras: PEPITA and its rule family as Keras 3 models.

Public names: the rules (`PEPITA`, `MEMPEPITA`, `Backprop`, `FeedbackAlignment`,
`DirectFeedbackAlignment`, `DRTP`), their base `LearningRuleModel`, and the
`models`, `datasets` and `callbacks` modules.
"""

import importlib.util
import os


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

from pepita_keras import callbacks, datasets, models  # noqa: E402
from pepita_keras.core import LearningRuleModel  # noqa: E402
from pepita_keras.rules.pepita import PEPITA  # noqa: E402
from pepita_keras.rules.mempepita import MEMPEPITA  # noqa: E402
from pepita_keras.rules.backprop import Backprop  # noqa: E402
from pepita_keras.rules.dfa import DirectFeedbackAlignment  # noqa: E402
from pepita_keras.rules.drtp import DRTP  # noqa: E402
from pepita_keras.rules.feedback_alignment import FeedbackAlignment  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Backprop",
    "DirectFeedbackAlignment",
    "DRTP",
    "FeedbackAlignment",
    "LearningRuleModel",
    "MEMPEPITA",
    "PEPITA",
    "callbacks",
    "datasets",
    "models",
    "__version__",
]
