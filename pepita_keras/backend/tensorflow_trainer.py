"""`RuleTrainer` for TensorFlow (and any backend whose trainer calls a stateful step)."""


class RuleTrainer:
    """Mixin before `keras.Model`: Keras's trainer calls the rule's stateful steps."""

    def train_step(self, *args):
        return self.stateful_train_step(*args)

    def test_step(self, *args):
        return self.stateful_test_step(*args)

    def _compile_defaults(self, kwargs):
        return kwargs

    def factory_steps_per_execution(self):
        """Steps per `tf.function` call of the models `pepita_keras.build` compiles: 32.

        One Python round trip per step cost a fifth to a quarter of an MNIST
        epoch on two CPU cores (`benchmarks/RESULTS.md`). The 32 steps are the
        same ops in the same order, so training is bit-identical to one step
        per call; callbacks' batch hooks (progress bar, `TerminateOnNaN`) fire
        every 32 steps. A model compiled by hand keeps Keras's default (1).
        """
        return 32
