"""`RuleHyperModel`: a `keras_tuner.HyperModel` for every rule of the package.

The search space is a dict `{name: keras_tuner HyperParameter}`; each name is
routed to the part of the experiment it controls:

| name                | default space                           | controls |
|---------------------|-----------------------------------------|----------|
| `learning_rate`     | Float 1e-3 … 0.5, log (default 0.1)     | `keras.optimizers.SGD(learning_rate)` |
| `momentum`          | Choice 0.0, 0.5, 0.9, 0.95 (0.9)        | `SGD(momentum)` |
| `weight_decay`      | not searched unless given (0: none)     | `SGD(weight_decay)`, decoupled |
| `batch_size`        | Choice 32, 64, 128, 256 (64)            | `HyperModel.fit` (training batches) |
| `dropout`           | Float 0.0 … 0.3, step 0.05 (0.1)        | `paper_networks.paper_fc(dropout)` (FC only) |
| `hidden_units`      | Choice 256, 512, 1024, 2048 (1024)      | width of every FC hidden layer |
| `num_hidden_layers` | Int 1 … 3 (1)                           | depth of the FC network |
| `filters`           | Choice 16, 32, 64 (32)                  | `paper_networks.paper_conv(filters)` (conv only) |
| `feedback_scale`    | Float d/10 … 10·d, log (d = rule default) | rules with a `feedback_scale` argument |
| `last_layer_error`  | Choice "modulated", "clean"             | rules with that argument (PEPITA family) |
| `modulation_sign`, `normalize_activations`, … | see `VARIANT_FLAGS` | PEPITA variant flags, when the rule accepts them |

Rule arguments (`feedback_scale`, `last_layer_error`, variant flags) enter
the space only for rules whose constructor accepts them, so the same
hypermodel serves `Backprop`, `FeedbackAlignment`, `DRTP`, `PEPITA`, ….
Architecture entries enter only for the architecture they shape. Defaults
are the paper's MNIST settings, or those of the `ExperimentConfig` the
hypermodel was made from (`RuleHyperModel.from_experiment`).

Narrowing or extending the space, per name, with `space=`:

- a plain value fixes it (`{"momentum": 0.9}` → `hp.Fixed`),
- a list searches those values (`{"batch_size": [64, 128]}` → `hp.Choice`),
- a dict gives a range (`{"learning_rate": {"min_value": 0.01,
  "max_value": 0.3, "sampling": "log"}}` → `hp.Float`, or `hp.Int` when
  both bounds are ints),
- a `keras_tuner.engine.hyperparameters.HyperParameter` is used as is,
- `None` removes it from the search (the rule's / model's default applies),
- any other name that the rule's constructor accepts is added as a rule
  argument (e.g. a new variant flag `{"hebbian": [False, True]}`).

keras-tuner's own mechanism works too: values registered in a
`keras_tuner.HyperParameters` passed to the tuner (`hp.Fixed("momentum",
0.9)`, with `tune_new_entries=False` to freeze everything else) take
precedence over this space.

Example:

```python
hypermodel = RuleHyperModel(
    "PEPITA", input_shape=(28, 28, 1), num_classes=10,
    space={"num_hidden_layers": 1, "hidden_units": 1024,
           "learning_rate": {"min_value": 0.01, "max_value": 0.5, "sampling": "log"}},
    seed=0)
tuner = pepita_keras.tuning.build_tuner("random", hypermodel, max_trials=10,
                                        directory="tuning", seed=0)
tuner.search(x_train, y_train, validation_data=(x_val, y_val), epochs=3)
```
"""

import inspect

import keras
import keras_tuner
import numpy as np
from keras_tuner.engine import hyperparameters as hp_types

from pepita_keras import build, datasets, experiment_config
from pepita_keras.experiment_config import ARCHITECTURES


# Which part of the experiment each built-in name controls.
OPTIMIZER_NAMES = ("learning_rate", "momentum", "weight_decay")
FIT_NAMES = ("batch_size",)
NETWORK_NAMES = {
    "fc": ("dropout", "hidden_units", "num_hidden_layers"),
    "conv": ("filters",),
    "resnet": ("filters",),
    "vit": (),
}

# PEPITA variant flags, searched when the rule's constructor has an
# argument of that name: name -> (values, parent condition or None). Boolean
# flags become `hp.Boolean`; `time_local` only exists for the Hebbian form.
VARIANT_FLAGS = {
    "modulation_sign": ([1, -1], None),
    "normalize_activations": ([False, True], None),
    "update_form": (["difference", "hebbian"], None),
    "time_local": ([False, True], ("update_form", ["hebbian"])),
}


def default_search_space(rule_class=None, architecture="fc"):
    """The documented default space (module docstring) for a rule.

    Args:
        rule_class: the rule class; rule arguments are included only when its
            constructor accepts them (None: include none).
        architecture: `"fc"` or `"conv"`.

    Returns:
        A dict `{name: keras_tuner HyperParameter}` (fresh objects).
    """
    _check_architecture(architecture)
    space = {
        "learning_rate": hp_types.Float(
            "learning_rate", 1e-3, 0.5, sampling="log", default=0.1
        ),
        "momentum": hp_types.Choice("momentum", [0.0, 0.5, 0.9, 0.95], default=0.9),
        "batch_size": hp_types.Choice("batch_size", [32, 64, 128, 256], default=64),
    }
    if architecture == "vit":
        pass  # its sizes are the cell's
    elif architecture == "fc":
        space["dropout"] = hp_types.Float("dropout", 0.0, 0.3, step=0.05, default=0.1)
        space["hidden_units"] = hp_types.Choice(
            "hidden_units", [256, 512, 1024, 2048], default=1024
        )
        space["num_hidden_layers"] = hp_types.Int("num_hidden_layers", 1, 3, default=1)
    else:
        space["filters"] = hp_types.Choice("filters", [16, 32, 64], default=32)
    rule_args = _rule_arguments(rule_class)
    if "feedback_scale" in rule_args:
        scale = float(rule_args["feedback_scale"].default)
        space["feedback_scale"] = hp_types.Float(
            "feedback_scale", scale / 10, scale * 10, sampling="log", default=scale
        )
    if "last_layer_error" in rule_args:
        default = rule_args["last_layer_error"].default
        choices = ["modulated", "clean"]
        space["last_layer_error"] = hp_types.Choice(
            "last_layer_error", choices, default=default if default in choices else None
        )
    for flag, (values, _) in VARIANT_FLAGS.items():
        if flag in rule_args:
            default = rule_args[flag].default
            space[flag] = _as_hyperparameter(flag, values)
            if default in values:
                space[flag] = type(space[flag]).from_config(
                    {**space[flag].get_config(), "default": default}
                )
    return space


def cell_search_space(rule_class, config):
    """The default space around a reproduction cell: the rule's own knobs only.

    The learning rate (log range ×/÷ 10 around the cell's), the feedback
    scale where the rule has one (×/÷ 10 around the cell's), and
    Forward-Forward's goodness threshold (×/÷ 3 around the cell's);
    everything else, architecture included, stays the cell's.

    Args:
        rule_class: the cell's rule class.
        config: the cell's `ExperimentConfig`.

    Returns:
        A dict `{name: keras_tuner HyperParameter}`.
    """
    rate = float(config.learning_rate)
    space = {"learning_rate": hp_types.Float("learning_rate", rate / 10, rate * 10,
                                             sampling="log", default=rate)}
    rule_args = _rule_arguments(rule_class)
    if "feedback_scale" in rule_args:
        scale = float(dict(config.rule_kwargs).get("feedback_scale",
                                                   rule_args["feedback_scale"].default))
        space["feedback_scale"] = hp_types.Float("feedback_scale", scale / 10, scale * 10,
                                                 sampling="log", default=scale)
    if "threshold" in rule_args:
        threshold = float(dict(config.rule_kwargs).get("threshold",
                                                       rule_args["threshold"].default))
        space["threshold"] = hp_types.Float("threshold", threshold / 3, threshold * 3,
                                            sampling="log", default=threshold)
    return space


class RuleHyperModel(keras_tuner.HyperModel):
    """Builds and trains any rule of the package from hyperparameters.

    `build(hp)` makes the paper's FC (`paper_networks.paper_fc`) or conv
    (`paper_networks.paper_conv`) network, wraps it in the rule and compiles it with
    `keras.optimizers.SGD(learning_rate, momentum, weight_decay)` and the `accuracy`
    metric. `fit(hp, model, x, y, validation_data=...)` trains it with the
    searched batch size. The search space is documented in the module
    docstring; `space` narrows or extends it.

    Args:
        rule: a rule class (`pepita_keras.PEPITA`) or its name (`"PEPITA"`,
            or a reproduction short name such as `"pepita"`, `"bp"`).
        input_shape: input shape, e.g. `(28, 28, 1)`.
        num_classes: number of classes.
        architecture: `"fc"` or `"conv"`.
        space: optional dict of per-name changes to the default space (see
            the module docstring).
        defaults: optional dict of default values (e.g. from a reproduction
            config); a default outside a Choice's values is added to them.
        seed: optional integer seeding weights, feedback matrices, dropout
            and the shuffling of every trial alike, so trials differ only by
            their hyperparameters (0 is a valid seed).
        eval_batch_size: batch size of the validation pass.
        name: optional name of the hypermodel.
        tunable: see `keras_tuner.HyperModel`.

    Example:

    ```python
    hypermodel = RuleHyperModel("PEPITA", (28, 28, 1), 10,
                                space={"batch_size": 64}, seed=0)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)          # the default (paper) settings
    hypermodel.fit(hp, model, x, y, validation_data=(x_val, y_val), epochs=1)
    ```
    """

    def __init__(
        self,
        rule="PEPITA",
        input_shape=(28, 28, 1),
        num_classes=10,
        architecture="fc",
        space=None,
        defaults=None,
        seed=None,
        eval_batch_size=1000,
        name=None,
        tunable=True,
        config=None,
        num_train_examples=None,
    ):
        super().__init__(name=name, tunable=tunable)
        _check_architecture(architecture)
        # A cell on a graph architecture trains with the rule's graph class.
        self.rule_class = build.rule_class(rule) if config is None \
            else build.config_rule_class(config)
        self.input_shape = tuple(input_shape)
        self.num_classes = int(num_classes)
        self.architecture = architecture
        self.seed = seed
        self.eval_batch_size = int(eval_batch_size)
        self.num_train_examples = num_train_examples
        self._rule_args = _rule_arguments(self.rule_class)
        if config is None:
            # No cell: the paper's FC/conv settings with a constant learning rate.
            config = experiment_config.ExperimentConfig(
                name=f"{self.rule_class.__name__.lower()}-search", rule=_short_name(
                    self.rule_class), architecture=architecture, dataset="mnist",
                lr_decay_epochs=(), eval_batch_size=self.eval_batch_size)
            self.space = default_search_space(self.rule_class, architecture)
        else:
            self.space = cell_search_space(self.rule_class, config)
        self.config = config
        for key, value in (defaults or {}).items():
            self._set_default(key, value)
        for key, value in (space or {}).items():
            self._override(key, value)

    @classmethod
    def from_experiment(cls, config, space=None, seed=None, num_train_examples=None, **kwargs):
        """A hypermodel searching around a reproduction `ExperimentConfig`.

        `build(hp)` is `pepita_keras.build.build_model` applied to the config
        with the trial's values (`resolve(hp)`): every setting not searched is
        the cell's (activations, initializer, depth, rule arguments, weight
        decay, learning-rate schedule). The default space is the rule's own
        knobs (`cell_search_space`); `space` changes it per name.

        Args:
            config: a `pepita_keras.experiment_config.ExperimentConfig`; its `epochs`
                are the trial's (they place the learning-rate decays).
            space: per-name changes, as for the constructor.
            seed: trial seed.
            num_train_examples: training examples per trial epoch (for the
                step-keyed schedule); default: the dataset's full split.
            **kwargs: other constructor arguments.
        """
        return cls(
            rule=config.rule,
            input_shape=config.input_shape,
            num_classes=config.num_classes,
            architecture=config.architecture,
            space=space,
            seed=seed,
            eval_batch_size=config.eval_batch_size,
            config=config,
            num_train_examples=num_train_examples,
            **kwargs,
        )

    # ------------------------------------------------------------------
    # Search space.
    # ------------------------------------------------------------------
    def declare_hyperparameters(self, hp):
        """Registers the whole space (including names only `fit` reads)."""
        for name in self.space:
            self._value(hp, name)

    def _value(self, hp, name, fallback=None):
        spec = self.space.get(name)
        if spec is None:
            # Not searched: a value the user registered on the tuner's
            # HyperParameters still wins; else the rule/model default.
            return hp.get(name) if name in hp else fallback
        # Through the public `hp.Float(...)`-style methods, so values fixed
        # on the tuner's HyperParameters and conditional scopes apply.
        config = spec.get_config()
        config.pop("conditions", None)
        parent = VARIANT_FLAGS.get(name, (None, None))[1]
        if parent is not None and parent[0] in self.space:
            config.update(parent_name=parent[0], parent_values=parent[1])
        value = getattr(hp, type(spec).__name__)(**config)
        return fallback if value is None else value

    def _set_default(self, name, value):
        spec = self.space.get(name)
        if spec is None or isinstance(spec, hp_types.Fixed):
            return
        config = spec.get_config()
        if isinstance(spec, hp_types.Choice) and value not in config["values"]:
            values = list(config["values"]) + [value]
            if all(_is_number(v) for v in values):
                values.sort()
            config["values"] = values
        elif isinstance(spec, (hp_types.Float, hp_types.Int)):
            config["min_value"] = min(config["min_value"], value)
            config["max_value"] = max(config["max_value"], value)
            step = config.get("step")
            if isinstance(spec, hp_types.Float) and step:
                offset = (value - config["min_value"]) / step
                if abs(offset - round(offset)) > 1e-6:
                    config["step"] = None  # an off-grid default must stay reachable
        config["default"] = value
        self.space[name] = type(spec).from_config(config)

    def _override(self, name, value):
        if name not in self.space and not self._known_name(name):
            raise ValueError(
                f"Unknown hyperparameter {name!r} for rule "
                f"{self.rule_class.__name__} and architecture "
                f"{self.architecture!r}. Known names: "
                f"{sorted(set(self.space) | set(self._extra_names()))}."
            )
        self.space[name] = _as_hyperparameter(name, value)
        if self.space[name] is None:
            del self.space[name]

    def _known_name(self, name):
        return name in self._extra_names()

    def _extra_names(self):
        names = set(OPTIMIZER_NAMES) | set(FIT_NAMES)
        names |= set(NETWORK_NAMES[self.architecture])
        names |= {n for n in self._rule_args if n not in ("network", "seed")}
        return names

    def search_space_table(self):
        """Markdown rows `| name | space | default |` of the current space."""
        rows = []
        for name, spec in self.space.items():
            rows.append(f"| `{name}` | {describe(spec)} | {spec.default!r} |")
        return rows

    # ------------------------------------------------------------------
    # keras_tuner.HyperModel API.
    # ------------------------------------------------------------------
    def resolve(self, hp):
        """The trial's `ExperimentConfig`: the hypermodel's config with `hp`'s values.

        Names map to config fields: `learning_rate`, `momentum`,
        `weight_decay`, `batch_size`, `dropout`; `hidden_units` (width) and
        `num_hidden_layers` (depth) to `hidden_units`; rule arguments to
        `rule_kwargs`. A name not searched keeps the config's value.

        Args:
            hp: a `keras_tuner.HyperParameters`.

        Returns:
            An `ExperimentConfig`, whose `flatten()` is what the trial records
            (the vocabulary of a reproduction seed's params).
        """
        config, changes = self.config, {}
        casts = {"learning_rate": float, "momentum": float, "weight_decay": float,
                 "batch_size": int, "dropout": float}
        for name, cast in casts.items():
            if name == "dropout" and self.architecture != "fc":
                continue
            value = self._value(hp, name)
            if value is not None:
                changes[name] = cast(value)
        if self.architecture == "fc":
            width = self._value(hp, "hidden_units")
            depth = self._value(hp, "num_hidden_layers")
            if width is not None or depth is not None:
                units = tuple(config.hidden_units)
                width = int(units[0] if width is None else width)
                depth = int(len(units) if depth is None else depth)
                changes["hidden_units"] = (width,) * depth
        rule_kwargs = dict(config.rule_kwargs)
        for name in self._rule_args:
            if name in ("network", "seed"):
                continue
            value = self._value(hp, name)
            if value is None:
                continue
            default = self._rule_args[name].default
            if name in rule_kwargs or _plain(value) != default:
                # A rule default the config never set stays unset (same model, same record).
                rule_kwargs[name] = _plain(value)
        changes["rule_kwargs"] = tuple(rule_kwargs.items())
        return config.replace(**changes)

    def build(self, hp):
        """Builds and compiles the rule model for `hp` with the one factory.

        Args:
            hp: a `keras_tuner.HyperParameters`.

        Returns:
            A compiled rule model (a `LearningRuleModel`):
            `build.build_model(self.resolve(hp), seed, steps_per_epoch)`.
        """
        trial = self.resolve(hp)
        filters = self._value(hp, "filters") if self.architecture in ("conv", "resnet") \
            else None
        examples = self.num_train_examples or trial.train_examples or 60000
        return build.build_model(
            trial, self.seed, build.steps_per_epoch(examples, trial.batch_size),
            input_shape=self.input_shape, num_classes=self.num_classes, filters=filters)

    def fit(self, hp, model, x, y=None, validation_data=None, **kwargs):
        """Trains `model` with the searched batch size.

        Args:
            hp: the trial's `keras_tuner.HyperParameters`.
            model: the model `build(hp)` returned.
            x: training images (NumPy array), or an unbatched
                `tf.data.Dataset` of `(image, label)`.
            y: training labels when `x` is an array.
            validation_data: `(x_val, y_val)` arrays or an unbatched dataset.
            **kwargs: passed to `model.fit` (`epochs`, `callbacks`, ...;
                keras-tuner adds its own callbacks here).

        Returns:
            The `keras.callbacks.History`.
        """
        batch_size = int(self._value(hp, "batch_size", self.config.batch_size))
        if datasets.is_tf_dataset(x):  # TensorFlow backend only
            train = x.batch(batch_size).prefetch(2).with_options(
                datasets.pipeline_options()
            )
        else:
            train = datasets.make_pipeline(
                x, y, batch_size, shuffle=True, seed=self.seed
            )
        validation = validation_data
        if datasets.is_tf_dataset(validation_data):
            validation = validation_data.batch(self.eval_batch_size).with_options(
                datasets.pipeline_options()
            )
        elif isinstance(validation_data, (tuple, list)):
            validation = datasets.make_pipeline(
                validation_data[0], validation_data[1], self.eval_batch_size
            )
        kwargs.setdefault("verbose", 0)
        if kwargs["verbose"] == 1:
            kwargs["verbose"] = 2  # one line per epoch, not a progress bar
        kwargs.setdefault("shuffle", False)  # the pipeline shuffles
        return model.fit(train, validation_data=validation, **kwargs)


def describe(spec):
    """Short human description of a HyperParameter, e.g. `Float 0.001…0.5 log`."""
    config = spec.get_config()
    if isinstance(spec, hp_types.Fixed):
        return f"Fixed {config['value']!r}"
    if isinstance(spec, hp_types.Choice):
        return "Choice " + ", ".join(repr(v) for v in config["values"])
    if isinstance(spec, hp_types.Boolean):
        return "Boolean"
    text = f"{type(spec).__name__} {config['min_value']:g} … {config['max_value']:g}"
    if config.get("sampling") and config["sampling"] != "linear":
        text += f", {config['sampling']}"
    if config.get("step"):
        text += f", step {config['step']:g}"
    return text


def _as_hyperparameter(name, value):
    if value is None or isinstance(value, hp_types.HyperParameter):
        if value is not None and value.name != name:
            raise ValueError(
                f"The HyperParameter given for {name!r} is named {value.name!r}."
            )
        return value
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"Empty list of values for {name!r}.")
        values = [_plain(v) for v in value]
        if len(set(values)) == 1:
            return hp_types.Fixed(name, values[0])
        if all(isinstance(v, bool) for v in values):
            # keras-tuner's Choice would turn booleans into 0/1.
            return hp_types.Boolean(name, default=values[0])
        return hp_types.Choice(name, values, ordered=all(_is_number(v) for v in values))
    if isinstance(value, dict):
        config = dict(value)
        if not {"min_value", "max_value"} <= set(config):
            raise ValueError(
                f"A range for {name!r} needs 'min_value' and 'max_value'; "
                f"received {value!r}."
            )
        bounds = (config["min_value"], config["max_value"])
        integer = all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
        if integer and config.get("sampling", "linear") == "linear":
            return hp_types.Int(name, **config)
        config["min_value"], config["max_value"] = map(float, bounds)
        return hp_types.Float(name, **config)
    return hp_types.Fixed(name, _plain(value))


def _plain(value):
    """NumPy scalars → Python scalars (keras-tuner stores JSON/protos)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _rule_arguments(rule_class):
    if rule_class is None:
        return {}
    parameters = inspect.signature(rule_class.__init__).parameters
    return {
        name: p
        for name, p in parameters.items()
        if name != "self"
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def _short_name(rule_class):
    """The registered short name (`"pepita"`) of a rule class (`pepita_keras.registry`)."""
    name = vars(rule_class).get("rule_name")  # its own, not a parent rule's
    if name is None:
        raise ValueError(
            f"{rule_class.__name__} is not a registered rule (decorate it with "
            "pepita_keras.registry.register_rule); a search builds its model from an "
            "ExperimentConfig, which names a registered rule.")
    return name


def _check_architecture(architecture):
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"architecture must be one of {ARCHITECTURES}. "
            f"Received: architecture={architecture!r}."
        )


__all__ = [
    "RuleHyperModel",
    "cell_search_space",
    "VARIANT_FLAGS",
    "default_search_space",
    "describe",
]
