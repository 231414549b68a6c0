"""`RuleTrainer` for TensorFlow (and any backend whose trainer calls a stateful step)."""


class RuleTrainer:
    """Mixin before `keras.Model`: Keras's trainer calls the rule's stateful steps."""

    def train_step(self, *args):
        return self.stateful_train_step(*args)

    def test_step(self, *args):
        return self.stateful_test_step(*args)

    def _compile_defaults(self, kwargs):
        return kwargs
