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
