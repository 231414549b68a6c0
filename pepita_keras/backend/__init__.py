"""The rule models' trainer, chosen once for the Keras backend in use.

Keras picks its own `Trainer` once, in `keras/src/models/model.py`; the rule
models do the same here, so `core.LearningRuleModel` holds no backend branch:

- `tensorflow.RuleTrainer` (also any other backend): Keras's stateful step;
- `jax.RuleTrainer`: the stateless step Keras's JAX trainer jits
  (`pepita_keras.jax_step`), many steps per dispatch as one `lax.scan`, and a
  `steps_per_execution` default that fits the device.
"""

import keras

if keras.backend.backend() == "jax":
    from pepita_keras.backend.jax import RuleTrainer
else:
    from pepita_keras.backend.tensorflow import RuleTrainer

__all__ = ["RuleTrainer"]
