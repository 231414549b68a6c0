"""The rule registry: each rule states its short name, label and defaults where it is defined.

A rule class is decorated once, beside nothing else:

```python
@register_rule("pepita", label="PEPITA", order=4, defaults={"feedback_scale": 0.05})
class PEPITA(LearningRuleModel):
    ...
```

The decorator registers the class with Keras serialization (as
`keras.saving.register_keras_serializable(package="pepita_keras")`), so a saved
rule model loads. The registry itself is read from the decorators' text in
`pepita_keras/rules/*.py` without importing the modules, so commands that only
read configs (`pepita list`, `pepita results`) never load Keras or TensorFlow,
and the CLI, configs, results table and tuning all read the same entries.
Adding a rule is one new module in `pepita_keras/rules/` plus its import in
`pepita_keras/rules/__init__.py` (for Keras registration on import).

Example:

```python
from pepita_keras import registry

registry.rule_info("drtp").label      # "DRTP"
registry.rule_info("pepita").load()   # the PEPITA class (imports Keras)
```
"""

import ast
import dataclasses
import functools
import importlib
import pathlib

RULES_DIR = pathlib.Path(__file__).resolve().parent / "rules"


@dataclasses.dataclass(frozen=True)
class RuleInfo:
    """One registered rule.

    Args:
        name: the short name configs use (`"pepita"`, `"bp"`).
        label: the name tables show (`"PEPITA"`, `"BP"`).
        class_name: the class's name, exported by `pepita_keras`.
        module: the module defining it.
        order: its place in tables (the paper's: BP, FA, DRTP, PEPITA).
        defaults: `(argument, value)` pairs every config of the rule gets
            unless it sets them (e.g. PEPITA's feedback scale 0.05).
    """

    name: str
    label: str
    class_name: str
    module: str
    order: int = 100
    defaults: tuple = ()

    def load(self):
        """The rule class (imports its module, hence Keras)."""
        return getattr(importlib.import_module(self.module), self.class_name)


def register_rule(name, label, order=100, defaults=None):
    """Class decorator declaring a rule (see the module docstring).

    Args:
        name: short name, letters and digits.
        label: table label.
        order: table order.
        defaults: dict of constructor arguments every config of the rule gets.

    Returns:
        A decorator that registers the class with Keras serialization and
        sets `cls.rule_name`.
    """
    def decorate(cls):
        import keras

        cls.rule_name = name
        return keras.saving.register_keras_serializable(package="pepita_keras")(cls)

    return decorate


def _decorator_name(node):
    func = node.func
    return getattr(func, "id", None) or getattr(func, "attr", None)


@functools.lru_cache(maxsize=None)
def rules():
    """`{short name: RuleInfo}` of every rule in `pepita_keras/rules/`, in table order."""
    found = []
    for path in sorted(RULES_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in tree.body:
            if not isinstance(node, ast.ClassDef):
                continue
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and _decorator_name(decorator) == "register_rule":
                    arguments = dict(zip(("name", "label", "order", "defaults"),
                                         (ast.literal_eval(a) for a in decorator.args)))
                    arguments.update({k.arg: ast.literal_eval(k.value)
                                      for k in decorator.keywords})
                    defaults = tuple((arguments.get("defaults") or {}).items())
                    found.append(RuleInfo(
                        name=arguments["name"], label=arguments["label"],
                        class_name=node.name, module=f"pepita_keras.rules.{path.stem}",
                        order=arguments.get("order", 100), defaults=defaults))
    found.sort(key=lambda info: (info.order, info.name))
    names = [info.name for info in found]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise RuntimeError(f"rule names registered twice: {duplicated}")
    return {info.name: info for info in found}


def rule_info(name):
    """The `RuleInfo` of a short name (any case) or a class name.

    Raises:
        ValueError: naming the known rules.
    """
    text = str(name)
    for info in rules().values():
        if text.lower() == info.name or text == info.class_name:
            return info
    choices = sorted(rules()) + sorted(info.class_name for info in rules().values())
    raise ValueError(f"rule must be one of {choices}. Received: rule={name!r}.")
