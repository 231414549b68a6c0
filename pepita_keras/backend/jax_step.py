"""Stateless `train_step` / `test_step` for Keras's JAX trainer.

Keras's JAX trainer jits `train_step(state, data) -> (logs, state)`, where
`state` holds the values of the model's trainable, non-trainable, optimizer
and metric variables. `LearningRuleModel`'s step is written statefully
(`optimizer.apply`, `metric.update_state`, the dropout seed counter's
`assign_add`), exactly as Keras's own optimizers and metrics are. Running it
inside a `keras.StatelessScope` that maps every variable to its value in
`state` turns those assignments into recorded new values, which are returned
as the new state: the same trick Keras uses for `stateless_call` and
`optimizer.stateless_apply`, applied to the whole step.
"""

import itertools

from keras import StatelessScope


def _run_stateless(groups, values, step, data):
    mapping = [
        (variable, value)
        for variables, group_values in zip(groups, values)
        for variable, value in zip(variables, group_values)
    ]
    with StatelessScope(state_mapping=mapping) as scope:
        logs = step(data)
    new_state = []
    for variables, group_values in zip(groups, values):
        new_values = []
        for variable, old in zip(variables, group_values):
            new = scope.get_current_value(variable)
            new_values.append(old if new is None else new)
        new_state.append(new_values)
    return logs, tuple(new_state)


def train_step(model, state, data):
    """`(logs, new_state)` of `model`'s stateful train step at `state`.

    Args:
        model: a `LearningRuleModel`.
        state: `(trainable, non_trainable, optimizer, metrics)` variable
            values, in the order of the model's variable lists.
        data: the batch.
    """
    groups = (
        model.trainable_variables,
        model.non_trainable_variables,
        model.optimizer.variables,
        model.metrics_variables,
    )
    return _run_stateless(groups, state, model.stateful_train_step, data)


def test_step(model, state, data):
    """`(logs, new_state)` of `model`'s test step; state without optimizer."""
    groups = (
        model.trainable_variables,
        model.non_trainable_variables,
        model.metrics_variables,
    )
    return _run_stateless(groups, state, model.stateful_test_step, data)


def scanned_steps(step, steps_per_execution):
    """A Keras-JAX `train_function` / `test_function` running many steps per dispatch.

    Keras's JAX trainer runs `steps_per_execution` steps as that many jitted
    calls from Python, one host round trip each, which bounds a small
    network's speed on a GPU by dispatch latency (one step of the paper's FC
    net at batch 64 computes in microseconds). This function instead pulls up
    to `steps_per_execution` batches from Keras's data iterator and runs them
    as one jitted `jax.lax.scan` over the batches stacked on the device: one
    dispatch per execution. The steps are the same steps in the same order
    (the state, dropout seed included, is carried from one to the next), so
    the weights equal those of one step per dispatch up to floating-point
    reassociation by XLA.

    Batches of a different shape (the smaller last batch of an epoch) run as
    a separate scan; `jax.jit` compiles each distinct (count, shape) once.

    Args:
        step: `step(state, data) -> (logs, state)`, unjitted (the model's
            `train_step` or `test_step` under Keras-JAX).
        steps_per_execution: most batches per dispatch.

    Returns:
        `function(state, iterator) -> (logs, state)` with Keras's calling
        convention; the logs are those of the last step. Raises
        `StopIteration` when the iterator is exhausted before the first batch,
        as Keras's own step functions do.
    """
    import jax

    def scan_batches(state, batches):
        stacked = jax.tree.map(lambda *leaves: jax.numpy.stack(leaves), *batches)

        def body(carry, data):
            logs, carry = step(carry, data)
            return carry, logs

        state, logs = jax.lax.scan(body, state, stacked)
        return jax.tree.map(lambda values: values[-1], logs), state

    compiled = jax.jit(scan_batches, donate_argnums=0)

    def signature(batch):
        leaves, structure = jax.tree.flatten(batch)
        return structure, tuple((leaf.shape, leaf.dtype) for leaf in leaves)

    def run(state, iterator):
        batches = []
        for _ in range(steps_per_execution):
            try:
                batches.append(next(iterator))
            except StopIteration:
                break
        if not batches:
            raise StopIteration
        logs = None
        for _, run_of_same_shape in itertools.groupby(batches, key=signature):
            logs, state = compiled(state, tuple(run_of_same_shape))
        return logs, state

    return run


def can_scan(model):
    """Whether `scanned_steps` may replace Keras's step loop for `model`.

    Only for jitted, undistributed training with more than one step per
    execution; otherwise Keras's own functions are used.
    """
    from keras.src.distribution import distribution_lib

    return (
        model.steps_per_execution > 1
        and model.jit_compile
        and not model.run_eagerly
        and distribution_lib.distribution() is None
    )


def default_steps_per_execution():
    """Steps per dispatch when `compile` is not told: 1 on a CPU, 128 on a GPU/TPU.

    On an accelerator a small network's step is far shorter than a host
    round trip, so `scanned_steps` runs 128 of them per dispatch; callbacks'
    batch hooks (progress bar, `TerminateOnNaN`) then fire every 128 steps.
    A CPU computes long enough per step for one dispatch each to cost little.
    """
    import jax

    return 1 if jax.default_backend() == "cpu" else 128
