"""Finding and loading config files: reproduction configs and tuning configs.

Both kinds go through `config_files.config_dirs` / `list_config_files` /
`load_python_config`; the expectations below come from the documented lookup
order (`config_files.config_dirs`, the `pepita_keras.tuning.configs` module
docstring) and error messages.
"""

import pathlib
import textwrap

import pytest

from pepita_keras import config_files, experiment_config
from pepita_keras.tuning import configs as tuning_configs

REPO = pathlib.Path(__file__).resolve().parents[1]

_TUNING_CONFIG = """
from common import paper_cell
from pepita_keras.tuning.configs import TuningConfig


def get_config():
    return TuningConfig(name={name!r}, experiment=paper_cell("pepita", "fc", "mnist"),
                        max_trials={trials})
"""


def _write(folder, name, source):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """No user config folders, and a working directory without `reproductions/`."""
    monkeypatch.delenv("PEPITA_CONFIG_DIR", raising=False)
    monkeypatch.delenv("PEPITA_TUNING_DIR", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def test_config_dirs_order(elsewhere, monkeypatch):
    assert config_files.config_dirs() == [
        elsewhere / "work" / "reproductions" / "configs",
        config_files.SHIPPED_CONFIG_DIR,
    ]
    monkeypatch.setenv("PEPITA_CONFIG_DIR", str(elsewhere / "mine" / "configs"))
    monkeypatch.setenv("PEPITA_TUNING_DIR", str(elsewhere / "searches"))
    assert config_files.config_dirs()[0] == elsewhere / "mine" / "configs"
    # $PEPITA_TUNING_DIR first, then the `tuning/` sibling of each config folder.
    assert tuning_configs.tuning_dirs() == [
        elsewhere / "searches",
        elsewhere / "mine" / "tuning",
        elsewhere / "work" / "reproductions" / "tuning",
        REPO / "reproductions" / "tuning",
    ]


def test_config_dirs_drop_folders_resolving_to_the_same_place(monkeypatch):
    monkeypatch.delenv("PEPITA_CONFIG_DIR", raising=False)
    monkeypatch.delenv("PEPITA_TUNING_DIR", raising=False)
    monkeypatch.chdir(REPO)
    assert config_files.config_dirs() == [REPO / "reproductions" / "configs"]
    assert tuning_configs.tuning_dirs() == [REPO / "reproductions" / "tuning"]


def test_tuning_config_found_through_env_var_shadows_shipped_one(elsewhere, monkeypatch):
    searches = elsewhere / "searches"
    monkeypatch.setenv("PEPITA_TUNING_DIR", str(searches))
    shipped = tuning_configs.list_tuning_configs()["pepita_fc_mnist"]
    assert shipped == REPO / "reproductions" / "tuning" / "pepita_fc_mnist.py"

    _write(searches, "pepita_fc_mnist", _TUNING_CONFIG.format(name="mine", trials=3))
    _write(searches, "_helper", "raise RuntimeError('helpers are never run')\n")
    found = tuning_configs.list_tuning_configs()
    assert found["pepita_fc_mnist"] == searches / "pepita_fc_mnist.py"
    assert "_helper" not in found
    config = tuning_configs.load_tuning_config("pepita_fc_mnist")
    assert isinstance(config, tuning_configs.TuningConfig)
    assert (config.name, config.max_trials) == ("mine", 3)


def test_tuning_config_in_config_dir_sibling(elsewhere, monkeypatch):
    monkeypatch.setenv("PEPITA_CONFIG_DIR", str(elsewhere / "mine" / "configs"))
    _write(elsewhere / "mine" / "tuning", "wide", _TUNING_CONFIG.format(name="wide", trials=5))
    assert tuning_configs.load_tuning_config("wide").max_trials == 5


def test_tune_accepts_a_reproduction_config_name_or_file(elsewhere):
    config = tuning_configs.load_tuning_config("fc_mnist_bp")
    assert config.name == "fc_mnist_bp-tune"
    assert config.experiment_config == experiment_config.load_config("fc_mnist_bp")
    # A file returning an ExperimentConfig is searched around it, under the
    # config's own name.
    path = _write(elsewhere, "cell", """
        from common import paper_cell


        def get_config():
            return paper_cell("bp", "fc", "mnist", name="other")
    """)
    config = tuning_configs.load_tuning_config(path)
    assert config.name == "other-tune" and config.experiment_config.rule == "bp"


def test_load_config_names_a_copy_after_its_file(elsewhere, monkeypatch):
    mine = elsewhere / "mine"
    monkeypatch.setenv("PEPITA_CONFIG_DIR", str(mine))
    source = (config_files.SHIPPED_CONFIG_DIR / "fc_mnist_bp.py").read_text()
    _write(mine, "my_cell", source)
    _write(mine, "common", "raise RuntimeError('common.py is a helper, not a config')\n")
    _write(mine, "plain", """
        from pepita_keras.experiment_config import ExperimentConfig


        def get_config():
            return ExperimentConfig("plain", "bp", "fc", "mnist")
    """)
    found = experiment_config.list_configs()
    assert found["my_cell"] == mine / "my_cell.py" and "common" not in found
    # common.py runs only when a config of its folder imports it.
    assert experiment_config.load_config("plain").name == "plain"
    with pytest.raises(RuntimeError, match="a helper"):
        experiment_config.load_config("my_cell")
    (mine / "common.py").write_text(
        "from pepita_keras.experiment_config import shipped_common\n\n"
        "paper_cell = shipped_common().paper_cell\n")
    assert experiment_config.load_config("my_cell").name == "my_cell"


def test_wrong_get_config_result_is_a_clear_error(elsewhere):
    path = _write(elsewhere, "wrong", """
        def get_config():
            return {"rule": "pepita"}
    """)
    with pytest.raises(ValueError, match=r"must return a TuningConfig or an "
                                         r"ExperimentConfig; received dict\."):
        tuning_configs.load_tuning_config(path)
    with pytest.raises(ValueError, match=r"must return an ExperimentConfig; received dict\."):
        experiment_config.load_config(path)


def test_missing_get_config_is_a_clear_error(elsewhere):
    path = _write(elsewhere, "empty", "SETTINGS = {}\n")
    with pytest.raises(ValueError, match=r"^Tuning config file .*empty\.py does not define"):
        tuning_configs.load_tuning_config(path)
    with pytest.raises(ValueError, match=r"^Config file .*empty\.py does not define"):
        experiment_config.load_config(path)


def test_unknown_names_and_missing_files(elsewhere):
    with pytest.raises(ValueError, match=r"Tuning config file '.*absent\.py' does not exist"):
        tuning_configs.load_tuning_config(str(elsewhere / "absent.py"))
    with pytest.raises(ValueError, match=r"Unknown tuning config 'nope': .*"
                                         r"not a reproduction config \(Unknown config 'nope'"):
        tuning_configs.load_tuning_config("nope")
    with pytest.raises(ValueError, match=r"Unknown config 'absent\.py': not a \.py file"):
        experiment_config.load_config("absent.py")


# ---------------------------------------------------------------------------
# `common`: the shared module of a config folder (big_vision's configs/common.py).
# ---------------------------------------------------------------------------
def test_shipped_cells_take_paper_numbers_from_common():
    common = experiment_config.shipped_common()
    config = experiment_config.load_config("fc_mnist_pepita")
    # Table 1 of the paper: PEPITA, FC, MNIST = 98.01 ± 0.09.
    assert common.PAPER_RESULTS[("pepita", "fc", "mnist")] == (98.01, 0.09)
    assert config.paper == (98.01, 0.09) and config.paper_source == common.PAPER_SOURCE
    assert "common" not in experiment_config.list_configs()


def test_a_folders_own_common_wins_and_others_fall_back_to_the_shipped_one(
        elsewhere, monkeypatch):
    mine, bare = elsewhere / "mine", elsewhere / "bare"
    _write(mine, "common", """
        from pepita_keras.experiment_config import ExperimentConfig


        def my_cell(**overrides):
            return ExperimentConfig("my_cell", "bp", "fc", "mnist", learning_rate=0.123,
                                    **overrides)
    """)
    _write(mine, "mine_bp", """
        from common import my_cell


        def get_config():
            return my_cell(epochs=7)
    """)
    _write(bare, "bare_bp", """
        from common import paper_cell


        def get_config():
            return paper_cell("bp", "fc", "mnist", epochs=3)
    """)
    import sys
    import types

    theirs = types.ModuleType("common")  # a user's own module of that name
    monkeypatch.setitem(sys.modules, "common", theirs)
    config = experiment_config.load_config(mine / "mine_bp.py")
    assert (config.name, config.learning_rate, config.epochs) == ("mine_bp", 0.123, 7)
    # No common.py beside it: the shipped one (a user's copy of a cell loads anywhere).
    config = experiment_config.load_config(bare / "bare_bp.py")
    assert (config.name, config.epochs, config.paper) == ("bare_bp", 3, (98.63, 0.03))
    assert sys.modules["common"] is theirs  # put back after each load
    assert "common" not in config_files.list_config_files([mine])


def test_cell_helpers_imported_from_the_old_place_still_work_with_a_warning():
    with pytest.warns(DeprecationWarning, match="from common import paper_cell"):
        old = experiment_config.paper_cell("pepita", "fc", "mnist")
    assert old == experiment_config.shipped_common().paper_cell("pepita", "fc", "mnist")
    with pytest.raises(AttributeError):
        experiment_config.no_such_name
