"""`RuleTrainer` for Keras-JAX: stateless steps, scanned many per dispatch."""

from pepita_keras.backend import jax_step


class RuleTrainer:
    """Mixin before `keras.Model` for Keras's JAX trainer.

    Keras's JAX trainer calls `train_step(state, data)`; `jax_step` runs the
    rule's stateful step inside a `StatelessScope` over `state`. With
    `steps_per_execution` k > 1, k batches run as one jitted `jax.lax.scan`
    (`jax_step.scanned_steps`); its default is 128 on a GPU/TPU, 1 on a CPU.
    """

    def train_step(self, *args):
        return jax_step.train_step(self, *args)

    def test_step(self, *args):
        return jax_step.test_step(self, *args)

    def make_train_function(self, force=False):
        if not jax_step.can_scan(self):
            return super().make_train_function(force)
        self._make_scanned("train", force)

    def make_test_function(self, force=False):
        if not jax_step.can_scan(self):
            return super().make_test_function(force)
        self._make_scanned("test", force)

    def _make_scanned(self, kind, force):
        attribute = f"{kind}_function"
        if getattr(self, attribute) is None or force:
            step = getattr(self, f"{kind}_step")
            setattr(self, attribute, jax_step.scanned_steps(step, self.steps_per_execution))

    def _compile_defaults(self, kwargs):
        kwargs.setdefault("steps_per_execution", jax_step.default_steps_per_execution())
        return kwargs

    def factory_steps_per_execution(self):
        """Steps per dispatch of the models `pepita_keras.build` compiles: this backend's default."""
        return jax_step.default_steps_per_execution()
