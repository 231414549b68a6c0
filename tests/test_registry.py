"""The rule registry reads each rule's own declaration, without importing Keras."""

import subprocess
import sys

import keras
import pytest

import pepita_keras
from pepita_keras import experiment_config, registry


def test_every_exported_rule_is_registered_once_with_its_declaration():
    exported = {name: getattr(pepita_keras, name) for name in pepita_keras.__all__
                if isinstance(getattr(pepita_keras, name), type)
                and issubclass(getattr(pepita_keras, name), pepita_keras.LearningRuleModel)
                and getattr(pepita_keras, name) is not pepita_keras.LearningRuleModel}
    infos = registry.rules()
    assert sorted(info.class_name for info in infos.values()) == sorted(exported)
    for name, info in infos.items():
        cls = info.load()
        assert cls is exported[info.class_name]
        assert vars(cls)["rule_name"] == name  # the decorator ran on this very class
        # ... and registered it for .keras loading under the package's name.
        assert keras.saving.get_registered_object(f"pepita_keras>{cls.__name__}") is cls
    # The paper's table order, and the defaults configs inherit.
    assert list(infos)[:4] == ["bp", "fa", "dfa", "drtp"]
    assert dict(infos["pepita"].defaults) == {"feedback_scale": 0.05}
    assert experiment_config.RULE_LABELS == {name: info.label for name, info in infos.items()}


def test_an_unknown_rule_names_the_known_ones():
    with pytest.raises(ValueError, match=r"rule must be one of \['bp'"):
        registry.rule_info("pepitta")
    assert registry.rule_info("PEPITA").name == registry.rule_info("pepita").name == "pepita"


def test_reading_the_registry_imports_neither_keras_nor_tensorflow():
    script = ("import sys; from pepita_keras import registry, experiment_config; registry.rules(); "
              "experiment_config.load_config('fc_mnist_pepita'); "
              "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.strip() == "[]", result.stderr
