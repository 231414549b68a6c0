"""The one factory: an `ExperimentConfig` → network, rule, optimizer and learning-rate schedule.

Every path that trains a config builds it here: `pepita reproduce`
(`pepita_keras.reproduce`), `pepita tune` (the hypermodel is this factory
applied to the config with a trial's values: `tuning.RuleHyperModel.build`),
the benchmarks and the notebooks. So a search's trial with the cell's values
is the cell's model, layer for layer and schedule included (tested over every
shipped config in `tests/test_build.py`).

Example:

```python
from pepita_keras import build, experiment_config

config = experiment_config.load_config("fc_mnist_pepita")
model = build.build_model(config, seed=0,
                          steps_per_epoch=build.steps_per_epoch(60000, config.batch_size))
```
"""

import math


def rule_class(rule):
    """The rule class for a short name (`"fa"`), a class name (`"PEPITA"`) or a class.

    Args:
        rule: a registered short name (any case), a class name, or a rule class.

    Returns:
        The rule class (`pepita_keras.registry`).

    Raises:
        ValueError: if no such rule exists.
    """
    from pepita_keras import registry

    if isinstance(rule, type):
        return rule
    return registry.rule_info(rule).load()


def config_rule_class(config):
    """The class that trains `config`: the rule's chain class on the paper's FC/conv nets,
    its graph class (`conversion.graph_rule_class`) on the graph architectures."""
    from pepita_keras import conversion, experiment_config

    if config.architecture in experiment_config.GRAPH_ARCHITECTURES:
        return conversion.graph_rule_class(config.rule)
    return rule_class(config.rule)


def check_rule_arguments(config):
    """Refuses `rule_kwargs` that the config's rule class does not take (before any run exists).

    Raises:
        ValueError: naming the unknown argument and the ones the rule takes.
    """
    import inspect

    cls = config_rule_class(config)
    parameters = inspect.signature(cls.__init__).parameters
    own = [name for name, p in parameters.items() if name not in ("self", "network", "seed")
           and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for name, _ in config.rule_kwargs:
        if name not in own:
            raise ValueError(
                f"rule_kwargs.{name} is not an argument of {cls.__name__} (rule "
                f"{config.rule!r}); it takes: {', '.join(own) or 'none'}.")


def learning_rate_schedule(config, steps_per_epoch):
    """Step-keyed piecewise-constant schedule: ×factor at each decay epoch.

    Keyed on `optimizer.iterations`, so it resumes exactly with the
    optimizer state. Keras uses `values[i]` while `step <= boundaries[i]`
    and the step of a batch is the number of batches before it, so the first
    batch of epoch `e` has step `e * steps_per_epoch`; the boundary is
    therefore `e * steps_per_epoch - 1`.

    Args:
        config: an `ExperimentConfig`.
        steps_per_epoch: training batches per epoch.

    Returns:
        A `keras.optimizers.schedules.PiecewiseConstantDecay`, or the float
        learning rate when no decay epoch falls inside training.
    """
    import keras

    epochs = [e for e in config.lr_decay_epochs if 0 < e < config.epochs]
    if not epochs:
        return float(config.learning_rate)
    boundaries = [e * steps_per_epoch - 1 for e in epochs]
    values = [
        float(config.learning_rate * config.lr_decay_factor**i)
        for i in range(len(boundaries) + 1)
    ]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def build_network(config, seed=None, input_shape=None, num_classes=None, filters=None):
    """The network of `config`: the paper's FC or conv net, or one of `modern_networks`.

    Args:
        config: an `ExperimentConfig`.
        seed: seeds every initializer and dropout layer.
        input_shape, num_classes: override the dataset's (a search on other
            data, e.g. a generic `RuleHyperModel`).
        filters: conv filters (default: the paper's 32); conv and resnet only.

    Returns:
        A `keras.Sequential` (paper nets) or functional `keras.Model`.
    """
    # Imported here: configs are read (`pepita list`, the results table)
    # without loading Keras and its backend.
    from pepita_keras import modern_networks, paper_networks

    shape = tuple(input_shape or config.input_shape)
    classes = int(num_classes or config.num_classes)
    if config.architecture == "resnet":
        return modern_networks.small_resnet(
            shape, classes, seed=seed, **({} if filters is None else {"filters": int(filters)}))
    if config.architecture == "vit":
        return modern_networks.tiny_vit(shape, classes, seed=seed)
    if not getattr(rule_class(config.rule), "classifier_layer", True):
        classes = None  # e.g. Forward-Forward: the rule classifies, the network has no head
    common = dict(input_shape=shape, num_classes=classes, seed=seed, use_bias=config.use_bias,
                  hidden_activation=config.hidden_activation,
                  output_activation=config.output_activation,
                  kernel_initializer=config.kernel_initializer)
    if config.architecture == "fc":
        return paper_networks.paper_fc(hidden_units=tuple(config.hidden_units),
                                       dropout=config.dropout, **common)
    return paper_networks.paper_conv(**({} if filters is None else {"filters": int(filters)}),
                                     **common)


def build_optimizer(config, steps_per_epoch):
    """The config's optimizer (`SGD` with its momentum, or `Adam`), weight decay and schedule."""
    import keras

    if config.optimizer == "adam":
        return keras.optimizers.Adam(
            learning_rate=learning_rate_schedule(config, steps_per_epoch),
            weight_decay=config.weight_decay or None)
    return keras.optimizers.SGD(
        learning_rate=learning_rate_schedule(config, steps_per_epoch),
        momentum=config.momentum,
        weight_decay=config.weight_decay or None,
    )


def build_model(config, seed, steps_per_epoch, **network_kwargs):
    """Builds and compiles the rule model of `config` for one seed.

    Args:
        config: an `ExperimentConfig`.
        seed: integer seed for weights, feedback matrices and dropout.
        steps_per_epoch: training batches per epoch (for the LR schedule).
        **network_kwargs: `input_shape`, `num_classes`, `filters` of
            `build_network`.

    Returns:
        A compiled Keras model whose optimizer is built (so its state can
        be restored before the first step).
    """
    network = build_network(config, seed, **network_kwargs)
    cls = config_rule_class(config)
    kwargs = dict(config.rule_kwargs)
    if not getattr(cls, "classifier_layer", True):
        kwargs["num_classes"] = int(network_kwargs.get("num_classes") or config.num_classes)
    model = cls(network, seed=seed, **kwargs)
    model.compile(optimizer=build_optimizer(config, steps_per_epoch), metrics=["accuracy"],
                  # Many steps per call under TensorFlow: same training, less overhead.
                  steps_per_execution=model.factory_steps_per_execution())
    model.optimizer.build(model.trainable_variables)
    return model


def steps_per_epoch(num_examples, batch_size):
    """Batches per epoch with the last partial batch kept."""
    return max(1, math.ceil(num_examples / batch_size))
