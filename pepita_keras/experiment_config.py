"""Experiment configs: `ExperimentConfig`, and finding and loading config files.

A reproduction is described by one frozen `ExperimentConfig`. Config files
(`reproductions/configs/<name>.py`, big_vision / flax style) define
`get_config()` returning one. What the shipped cells share (the paper's
numbers, the settings chosen where the sources are silent, the helpers
`paper_cell`, `iclr_variant`, `local_conv_variant`) lives beside them in
`reproductions/configs/common.py`, which config files import as `common`
(`shipped_common()` returns it here). Building a model from a config is
`pepita_keras.build`'s job.

Example:

```python
config = pepita_keras.experiment_config.load_config("fc_mnist_pepita")
model = pepita_keras.build.build_model(config, seed=0, steps_per_epoch=938)
```
"""

import ast
import dataclasses
import functools
import hashlib
import json
import math

from pepita_keras import config_files, registry
from pepita_keras.store import untrusted

# Rule short names → class names and table labels, read from the rules' own
# declarations (`pepita_keras.registry`), in table order.
RULES = {name: info.class_name for name, info in registry.rules().items()}
RULE_LABELS = {name: info.label for name, info in registry.rules().items()}
ARCHITECTURES = ("fc", "conv", "resnet", "vit")
# Our own architectures (`pepita_keras.modern_networks`): graphs, trained through
# `pepita_keras.convert`'s graph rules; no paper number.
GRAPH_ARCHITECTURES = ("resnet", "vit")
DATASETS = {
    # name: (input shape, number of classes)
    "mnist": ((28, 28, 1), 10),
    "cifar10": ((32, 32, 3), 10),
    "cifar100": ((32, 32, 3), 100),
}
# Examples in the (train, test) splits of each dataset as published.
FULL_SPLITS = {"mnist": (60000, 10000), "cifar10": (50000, 10000), "cifar100": (50000, 10000)}
DATASET_LABELS = {"mnist": "MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}

# Fields added after the first runs were recorded, with the default those runs
# trained with: `flatten()` leaves them out at that default.
LATER_FIELDS = {"optimizer": "sgd", "use_bias": False, "data_digest": None,
                "seeds": (0, 1, 2), "gap": ""}
OPTIMIZERS = ("sgd", "adam")

# Config fields that do not change what is trained: runs that differ only in
# these are the same experiment (a note edited after a run, a smoke variant's
# settings, the cell's own name).
DESCRIPTIVE_FIELDS = ("name", "notes", "paper", "paper_source", "is_smoke", "seeds", "gap")


def training_settings(flat):
    """The entries of a flattened config (`ExperimentConfig.flatten()`) that change training."""
    return {
        key: value for key, value in flat.items()
        if key not in DESCRIPTIVE_FIELDS and not key.startswith("smoke.")
    }


@dataclasses.dataclass(frozen=True)
class SmokeSettings:
    """How a config shrinks for smoke tests.

    Args:
        train_examples: training examples kept (first N).
        test_examples: test examples kept (first N).
        epochs: epochs run.
    """

    train_examples: int = 128
    test_examples: int = 64
    epochs: int = 1


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """One reproduction: model, rule, data and optimisation settings.

    Args:
        name: the cell name (config file stem), e.g. `"fc_mnist_pepita"`.
        rule: a key of `RULES` (`"bp"`, `"fa"`, `"drtp"`, `"pepita"`, ...).
        architecture: `"fc"` (`paper_networks.paper_fc`) or `"conv"`
            (`paper_networks.paper_conv`).
        dataset: a key of `DATASETS`.
        epochs: training epochs.
        batch_size: training batch size.
        optimizer: `"sgd"` (the paper's; `keras.optimizers.SGD` with
            `momentum`) or `"adam"` (`keras.optimizers.Adam` with Keras's
            defaults but the learning rate; `momentum` must then be 0).
        learning_rate: initial learning rate.
        momentum: SGD momentum.
        weight_decay: decoupled weight decay given to the optimizer
            (`keras.optimizers.SGD(weight_decay=...)`); 0 disables it.
        lr_decay_epochs: epochs (0-based) at whose start the learning rate
            is multiplied by `lr_decay_factor`.
        lr_decay_factor: the multiplicative decay.
        hidden_units: FC hidden widths.
        use_bias: whether the learnable layers have biases (the paper's
            nets: no; the keras-io Forward-Forward net: yes).
        hidden_activation: activation of the hidden layers (`"relu"` in the
            paper's nets; the DRTP code uses `"tanh"`).
        output_activation: activation of the output layer (`"softmax"`;
            the DRTP code uses `"sigmoid"`).
        kernel_initializer: `"he_uniform"` (official FC code),
            `"torch_default"` (U(±1/√fan_in), official conv script) or
            `"glorot_uniform"` (Keras's default, the keras-io FF net).
        dropout: dropout rate after each FC hidden layer.
        rule_kwargs: extra keyword arguments of the rule class, as a tuple
            of `(name, value)` pairs (e.g. `(("feedback_scale", 0.05),)`).
        train_examples: keep only the first N training examples (None: all).
        test_examples: keep only the first N test examples (None: all).
        eval_batch_size: batch size for the per-epoch test evaluation.
        data_digest: None when the run trains on the genuine dataset (TFDS,
            or files that all match their official SHA-256); otherwise the
            digest of the files used (`dataset_inputs.unofficial_data_digest`),
            which `pepita reproduce` sets, so such a run is a custom one.
        paper: `(mean, std)` test accuracy % reported by the paper, or None.
        paper_source: where `paper` comes from.
        notes: settings chosen where the sources are silent.
        seeds: the seeds the cell's command runs (`command`); the paper's
            FC cells report 5 runs, ours default to 3.
        gap: why our number differs from the paper's, where it does (the
            results table prints it under the cell).
        smoke: a `SmokeSettings`; `smoke_version()` applies it.
        is_smoke: True for the smoke version of a config.
    """

    name: str
    rule: str
    architecture: str
    dataset: str
    epochs: int = 100
    batch_size: int = 64
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_decay_epochs: tuple = (60, 90)
    lr_decay_factor: float = 0.1
    hidden_units: tuple = (1024,)
    use_bias: bool = False
    hidden_activation: str = "relu"
    output_activation: str = "softmax"
    kernel_initializer: str = "he_uniform"
    dropout: float = 0.1
    rule_kwargs: tuple = ()
    train_examples: int = None
    test_examples: int = None
    eval_batch_size: int = 1000
    data_digest: str = None
    paper: tuple = None
    paper_source: str = ""
    notes: str = ""
    seeds: tuple = (0, 1, 2)
    gap: str = ""
    smoke: SmokeSettings = SmokeSettings()
    is_smoke: bool = False

    def __post_init__(self):
        if self.rule not in RULES:
            raise ValueError(
                f"rule must be one of {sorted(RULES)}. Received: rule={self.rule!r}."
            )
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {ARCHITECTURES}. "
                f"Received: architecture={self.architecture!r}."
            )
        if self.dataset not in DATASETS:
            raise ValueError(
                f"dataset must be one of {sorted(DATASETS)}. "
                f"Received: dataset={self.dataset!r}."
            )
        for field in ("epochs", "batch_size", "eval_batch_size"):
            value = getattr(self, field)
            # bool is an int in Python: batch_size=True would train with batch 1.
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"{field} must be a positive integer. Received: {field}={value!r}."
                )
        for field in ("train_examples", "test_examples"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < 1):
                raise ValueError(
                    f"{field} must be None or a positive integer. "
                    f"Received: {field}={value!r}."
                )
        self._check_values()

    def _check_values(self):
        """Refuses values that would only fail (or silently mislead) once training runs."""
        def number(field, low=None, high=None, low_open=False, high_open=False):
            value = getattr(self, field)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
                math.isfinite(value)
            if ok and low is not None:
                ok = value > low if low_open else value >= low
            if ok and high is not None:
                ok = value < high if high_open else value <= high
            if not ok:
                if high is None:
                    where = f"{'>' if low_open else '>='} {low}"
                else:
                    where = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
                raise ValueError(f"{field} must be a number {where}. Received: {field}={value!r}.")

        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}. "
                             f"Received: optimizer={self.optimizer!r}.")
        if self.optimizer == "adam" and self.momentum:
            raise ValueError("momentum applies to optimizer='sgd' only; set momentum=0 with "
                             f"optimizer='adam'. Received: momentum={self.momentum!r}.")
        if not isinstance(self.use_bias, bool):
            raise ValueError(f"use_bias must be True or False. Received: {self.use_bias!r}.")
        number("learning_rate", 0, None, low_open=True)
        number("momentum", 0, 1, high_open=True)
        number("weight_decay", 0)
        number("lr_decay_factor", 0, None, low_open=True)
        number("dropout", 0, 1, high_open=True)
        def integers(field, minimum, what, example):
            value = getattr(self, field)
            if not isinstance(value, (tuple, list)) or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v >= minimum
                    for v in value):
                raise ValueError(f"{field} must be a tuple of {what}, e.g. {field}={example}. "
                                 f"Received: {field}={value!r}.")

        integers("lr_decay_epochs", 0, "epoch numbers", "(60, 90)")
        if list(self.lr_decay_epochs) != sorted(set(self.lr_decay_epochs)):
            # Keras's PiecewiseConstantDecay needs increasing boundaries: (2, 1) would train
            # at a rate no schedule names.
            raise ValueError("lr_decay_epochs must be strictly increasing epoch numbers, e.g. "
                             f"(60, 90). Received: lr_decay_epochs={self.lr_decay_epochs!r}.")
        integers("seeds", 0, "distinct seeds", "(0, 1, 2)")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must list distinct seeds. Received: seeds={self.seeds!r}.")
        integers("hidden_units", 1, "positive widths", "(1024,)")
        if not self.hidden_units and self.architecture == "fc":
            raise ValueError("hidden_units must name at least one hidden layer.")
        if not isinstance(self.rule_kwargs, tuple) or not all(
                isinstance(item, tuple) and len(item) == 2 for item in self.rule_kwargs):
            raise ValueError(f"rule_kwargs must be (name, value) pairs. Received: {self.rule_kwargs!r}.")

    def replace(self, **changes):
        """A copy with `changes` applied (`dataclasses.replace`)."""
        return dataclasses.replace(self, **changes)

    def with_overrides(self, assignments):
        """A copy with `key=value` assignments applied (the CLI's `--set`).

        Keys are field names (`learning_rate`, `lr_decay_epochs`, ...),
        `rule_kwargs.<argument>` or `smoke.<field>`; values are Python
        literals (`0.05`, `(10, 30, 60)`, `'clean'`, `None`), or plain text
        for strings (`last_layer_error=clean`).

        Args:
            assignments: iterable of `"key=value"` strings.

        Returns:
            An `ExperimentConfig`.

        Example:

        >>> config = ExperimentConfig("my_cell", "pepita", "fc", "mnist")
        >>> config.with_overrides(["learning_rate=0.05"]).learning_rate
        0.05
        """
        config = self
        for assignment in assignments:
            key, separator, text = str(assignment).partition("=")
            key = key.strip()
            if not separator or not key:
                raise ValueError(
                    f"--set takes key=value, e.g. learning_rate=0.05. Received: {assignment!r}."
                )
            value = _literal(text.strip())
            group, _, name = key.partition(".")
            if group == "rule_kwargs" and name:
                kwargs = dict(config.rule_kwargs)
                kwargs[name] = value
                config = config.replace(rule_kwargs=tuple(kwargs.items()))
            elif group == "smoke" and name in SMOKE_FIELDS:
                config = config.replace(
                    smoke=dataclasses.replace(config.smoke, **{name: value}))
            elif key in SETTABLE_FIELDS:
                if isinstance(value, list):
                    value = tuple(value)
                config = config.replace(**{key: value})
            else:
                raise ValueError(
                    f"Unknown config key {key!r} in --set. Known keys: "
                    f"{', '.join(SETTABLE_FIELDS)}, rule_kwargs.<argument>, "
                    f"smoke.<{'|'.join(SMOKE_FIELDS)}>."
                )
        return config

    def smoke_version(self):
        """The tiny version used by tests: few examples, `smoke.epochs` epochs, seed 0."""
        return self.replace(
            epochs=self.smoke.epochs,
            train_examples=self.smoke.train_examples,
            test_examples=self.smoke.test_examples,
            seeds=(0,),
            is_smoke=True,
        )

    @property
    def run_name(self):
        """Name of the run directory / MLflow parent run.

        The config's name if its training settings are those of the shipped
        config of that name (or no shipped config has that name); otherwise
        `<name>-smoke` for the smoke version and `<name>-custom-<digest>` for
        any other change (e.g. `--epochs 1`), so a modified run never shares
        a name, run directory or table row with the paper cell.
        """
        if self.is_smoke:
            return f"{self.name}-smoke"
        if self.matches_shipped():
            return self.name
        return f"{self.name}-custom-{self.settings_digest()}"

    def training_settings(self):
        """The flattened settings that change what is trained (no names or notes)."""
        return training_settings(self.flatten())

    def settings_digest(self):
        """8 hex digits identifying `training_settings()`."""
        text = json.dumps(self.training_settings(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def matches_shipped(self):
        """True unless a shipped config has this name and other training settings."""
        shipped = shipped_config(self.name)
        return shipped is None or shipped.training_settings() == self.training_settings()

    @property
    def command(self):
        """The command that runs this cell's seeds on real data, as the results table prints it."""
        seeds = ",".join(str(seed) for seed in self.seeds)
        return f"pepita reproduce {self.name} --seeds {seeds} --data-dir /path/to/data"

    @property
    def input_shape(self):
        return DATASETS[self.dataset][0]

    @property
    def num_classes(self):
        return DATASETS[self.dataset][1]

    @property
    def label(self):
        """Human-readable cell label, e.g. `"PEPITA · FC · MNIST"`."""
        rule = RULE_LABELS[self.rule]
        cell = f"{self.architecture}_{self.dataset}_{self.rule}"
        if self.name.startswith("iclr_"):
            rule += " (ICLR-24 " + self.name.rsplit("_pepita_", 1)[-1] + ")"
        elif self.name.startswith(cell + "_"):  # a variant row, e.g. ..._pepita_local
            rule += f" ({self.name[len(cell) + 1:]})"
        return f"{rule} · {self.architecture.upper()} · {DATASET_LABELS[self.dataset]}"

    def to_dict(self):
        """Plain nested dict of the config (JSON-serialisable)."""
        return dataclasses.asdict(self)

    def flatten(self):
        """Flat `{dotted.name: value}` dict, e.g. for MLflow params."""
        flat = {}

        def visit(prefix, value):
            if isinstance(value, dict):
                for key, item in value.items():
                    visit(f"{prefix}.{key}" if prefix else key, item)
            else:
                flat[prefix] = value

        config = self.to_dict()
        config["rule_kwargs"] = dict(self.rule_kwargs)
        # Fields added after runs were recorded are left out at their default,
        # so the params and digests of those runs stay what they were.
        for field, default in LATER_FIELDS.items():
            if config[field] == default:
                del config[field]
        visit("", config)
        return flat


SMOKE_FIELDS = tuple(field.name for field in dataclasses.fields(SmokeSettings))
# Fields `--set` may change; `name` and `is_smoke` identify the run instead.
SETTABLE_FIELDS = tuple(
    field.name for field in dataclasses.fields(ExperimentConfig)
    if field.name not in ("name", "is_smoke", "smoke", "rule_kwargs", "data_digest", "seeds",
                          "gap")
)


def _literal(text):
    """A Python literal from `text`, or `text` itself when it is not one."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def settings_differences(recorded, config, normalize=lambda value: value):
    """Training settings where `recorded` differs from `config`.

    Args:
        recorded: flat settings as a run recorded them (e.g. its MLflow
            params or its `state.json`).
        config: the `ExperimentConfig` to compare with.
        normalize: maps a config value to the form `recorded` holds (e.g.
            `tracking.param_value` for MLflow params).

    Returns:
        `{setting: (recorded value, config value)}`. A setting that a run
        recorded before it existed matches when `config` keeps its default.
    """
    defaults = ExperimentConfig(
        name="-", rule=config.rule, architecture=config.architecture, dataset=config.dataset
    ).training_settings()
    differences = {}
    for key, value in config.training_settings().items():
        expected = normalize(value)
        if key in recorded:
            if recorded[key] != expected:
                differences[key] = (recorded[key], expected)
        elif key not in defaults or normalize(defaults[key]) != expected:
            differences[key] = ("(not recorded)", expected)
    return differences


# A `common.py` beside the cells is taken as a shared helper module (the
# big_vision layout these files follow), never as a config.
_NOT_CONFIGS = (config_files.COMMON_MODULE,)

# Names that lived here before `reproductions/configs/common.py` held them.
_MOVED_TO_COMMON = ("PAPER_RESULTS", "PAPER_SOURCE", "OPEN_SETTINGS", "paper_cell",
                    "ICLR_SOURCE", "ICLR_VARIANTS", "ICLR_NOTES", "iclr_variant",
                    "LOCAL_CONV_NOTES", "local_conv_variant")
# The factory's names, importable from here before `pepita_keras.build` held them.
_MOVED_TO_BUILD = ("build_model", "build_network", "learning_rate_schedule", "rule_class",
                   "steps_per_epoch")


def shipped_common():
    """The shipped configs' shared module, `reproductions/configs/common.py`.

    Returns:
        The module (paper numbers `PAPER_RESULTS`, `OPEN_SETTINGS`, and the
        cell helpers `paper_cell`, `iclr_variant`, `local_conv_variant`).

    Raises:
        ValueError: if this installation has no shipped configs (the package
            was installed without its source checkout).

    Example:

    >>> config = shipped_common().paper_cell("bp", "fc", "mnist", epochs=1)
    >>> config.name, config.epochs
    ('fc_mnist_bp', 1)
    """
    return config_files.load_common(config_files.SHIPPED_CONFIG_DIR)


def __getattr__(name):
    # Config files and scripts written for earlier versions import these from here.
    import warnings

    if name in _MOVED_TO_COMMON:
        warnings.warn(
            f"pepita_keras.experiment_config.{name} moved to reproductions/configs/common.py: "
            f"in a config file write `from common import {name}`.",
            DeprecationWarning, stacklevel=2)
        return getattr(shipped_common(), name)
    if name in _MOVED_TO_BUILD:
        from pepita_keras import build

        warnings.warn(f"pepita_keras.experiment_config.{name} is pepita_keras.build.{name}.",
                      DeprecationWarning, stacklevel=2)
        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def list_configs():
    """`{name: path}` of every config file found in `config_files.config_dirs()`."""
    return config_files.list_config_files(config_files.config_dirs(), exclude=_NOT_CONFIGS)


@functools.lru_cache(maxsize=None)
def shipped_config(name):
    """The config named `name` as shipped in the repository, or None.

    Shipped configs are the files of `reproductions/configs` beside this
    package; only runs with exactly their training settings count towards
    the paper table.
    """
    if not untrusted.is_config_name(name):
        return None  # a name read from a store is never a path
    path = config_files.SHIPPED_CONFIG_DIR / f"{name}.py"
    return load_config(path) if path.is_file() else None


def config_by_name(name):
    """The config called `name` in `config_files.config_dirs()`, or None.

    For names read from a store (a run's `pepita.cell` tag): only a name of
    `list_configs()` loads, never a path, so a store cannot choose which
    Python file runs.
    """
    if not untrusted.is_config_name(name):
        return None
    path = list_configs().get(name)
    return load_config(path) if path is not None else None


def config_path(name_or_path):
    """Resolves a config name (`"fc_mnist_pepita"`) or a `.py` path.

    Args:
        name_or_path: a config name from `pepita list`, or a path to an
            existing Python file.

    Returns:
        The config file's `pathlib.Path`.

    Raises:
        ValueError: if nothing matches; the message lists the folders
            searched.
    """
    path = config_files.find_config_file(
        name_or_path, config_files.config_dirs(), exclude=_NOT_CONFIGS
    )
    if path is not None:
        return path
    searched = ", ".join(str(d) for d in config_files.config_dirs())
    raise ValueError(
        f"Unknown config {name_or_path!r}: not a .py file and not a config "
        f"name found in {searched}. Run `pepita list` to see the configs."
    )


def load_config(name_or_path):
    """Loads a config file and returns its `get_config()`.

    Args:
        name_or_path: a config name from `pepita list`, or a path to a
            Python file defining `get_config()`.

    Returns:
        An `ExperimentConfig`, named after the file's stem.

    Raises:
        ValueError: if no config file matches, or the file's
            `get_config()` is missing or returns no `ExperimentConfig`.
    """
    path = config_path(name_or_path)
    config = config_files.load_python_config(path, (ExperimentConfig,))
    # A user's copy of a shipped config runs under its own file's name.
    return config if config.name == path.stem else config.replace(name=path.stem)

