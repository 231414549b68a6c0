"""The rule models' trainer, chosen once for the Keras backend in use.

Keras picks its own `Trainer` once, in `keras/src/models/model.py`; the rule
models do the same here, so `core.LearningRuleModel` holds no backend branch:

- `tensorflow_trainer.RuleTrainer` (also any other backend): Keras's stateful step;
- `jax_trainer.RuleTrainer`: the stateless step Keras's JAX trainer jits
  (`jax_step`), many steps per dispatch as one `lax.scan`, and a
  `steps_per_execution` default that fits the device.

The backend-specific operations the rules use (`pepita_keras.ops`) live
beside them: `tensorflow_ops` and `jax_ops`, the same names, signatures and
maths; `pepita_keras.ops` exports the active backend's set.
"""

import keras

if keras.backend.backend() == "jax":
    from pepita_keras.backend.jax_trainer import RuleTrainer
else:
    from pepita_keras.backend.tensorflow_trainer import RuleTrainer

__all__ = ["RuleTrainer"]
