"""Finding and loading Python config files (big_vision / flax style).

Every kind of config file — the reproductions (`pepita_keras.experiment_config`) and
the hyperparameter searches (`pepita_keras.tuning.configs`) — is a Python file
defining `get_config()`, found and run by the functions here, so the folders,
their order and the error messages agree across commands.

Example:

```python
from pepita_keras import config_files
from pepita_keras.experiment_config import ExperimentConfig

files = config_files.list_config_files(config_files.config_dirs())
config = config_files.load_python_config(files["fc_mnist_pepita"], (ExperimentConfig,))
```
"""

import contextlib
import importlib.util
import os
import pathlib
import sys


def _shipped_config_dir():
    """The cells of the results table: the source checkout's `reproductions/configs`,
    else the copy a wheel carries inside the package (`pepita_keras/shipped_configs`,
    mapped from that folder by pyproject.toml)."""
    checkout = pathlib.Path(__file__).resolve().parents[1] / "reproductions" / "configs"
    packaged = pathlib.Path(__file__).resolve().parent / "shipped_configs"
    return checkout if checkout.is_dir() or not packaged.is_dir() else packaged


# The repository's own reproduction configs: the cells of the results table. Its
# sibling `tuning` folder holds the shipped searches (`shipped_tuning` in a wheel).
SHIPPED_CONFIG_DIR = _shipped_config_dir()
CONFIG_ENV_VAR = "PEPITA_CONFIG_DIR"
# The shared helper module of a config folder (big_vision's `configs/common.py`).
COMMON_MODULE = "common"


def config_dirs(subfolder="configs", env_var=CONFIG_ENV_VAR):
    """Folders searched for config files of one kind, in order.

    Reproduction configs (the defaults) are searched in `$PEPITA_CONFIG_DIR`
    (if set), `./reproductions/configs`, and the `reproductions/configs`
    folder of the source checkout this package was imported from
    (`SHIPPED_CONFIG_DIR`).

    Any other kind (e.g. `config_dirs("tuning", "PEPITA_TUNING_DIR")`) is
    searched in `$<env_var>` (if set), then in the `<subfolder>` folder
    beside each of the reproduction config folders, in their order.

    Args:
        subfolder: the kind's folder name under `reproductions/`.
        env_var: the environment variable naming the kind's own folder,
            searched first.

    Returns:
        A list of `pathlib.Path`, without folders that resolve to the same
        place (the first one is kept); they need not exist.
    """
    dirs = []
    if os.environ.get(env_var):
        dirs.append(pathlib.Path(os.environ[env_var]))
    if subfolder == "configs":
        dirs.append(pathlib.Path.cwd() / "reproductions" / "configs")
        dirs.append(SHIPPED_CONFIG_DIR)
    else:
        # Siblings, so a user's `$PEPITA_CONFIG_DIR=<root>/configs` also
        # brings in `<root>/<subfolder>` without a second variable.
        # In a wheel the shipped folders are `shipped_<kind>` inside the package.
        dirs.extend(
            folder.parent / f"shipped_{subfolder}" if folder.name == "shipped_configs"
            else folder.parent / subfolder for folder in config_dirs())
    unique = []
    for folder in dirs:
        if folder.resolve() not in [d.resolve() for d in unique]:
            unique.append(folder)
    return unique


def list_config_files(dirs, exclude=()):
    """`{name: path}` of the config files in `dirs`, named by file stem.

    Args:
        dirs: folders searched in order (missing ones are skipped); a name
            found in an earlier folder shadows the same name in later ones.
        exclude: file stems that are not configs (helper modules).

    Returns:
        A dict from file stem to `pathlib.Path`. Files whose stem starts
        with `_` are private helpers and `common.py` is a folder's shared
        module (`load_common`): both are left out.
    """
    found = {}
    for folder in dirs:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.py")):
            if path.stem.startswith("_") or path.stem in (COMMON_MODULE, *exclude):
                continue
            found.setdefault(path.stem, path)
    return found


def find_config_file(name_or_path, dirs, exclude=()):
    """The file of a config name or an existing `.py` path, or None.

    Args:
        name_or_path: a path to an existing `.py` file, or a name of
            `list_config_files(dirs, exclude)`.
        dirs: folders searched for a name, in order.
        exclude: file stems that are not configs.

    Returns:
        A `pathlib.Path`, or None if nothing matches.
    """
    path = pathlib.Path(str(name_or_path))
    if path.suffix == ".py" and path.exists():
        return path
    return list_config_files(dirs, exclude).get(str(name_or_path))


def _with_article(type_name):
    return f"an {type_name}" if type_name[0] in "AEIOU" else f"a {type_name}"


def load_python_config(path, accepted_types, description="Config"):
    """Runs a config file and returns what its `get_config()` returns.

    Args:
        path: a Python file defining `get_config()`.
        accepted_types: the classes `get_config()` may return, in the order
            the error message names them.
        description: what the file is, capitalised, for error messages
            (`"Config"`, `"Tuning config"`).

    Returns:
        The `get_config()` result, an instance of one of `accepted_types`.

    Raises:
        ValueError: if the file defines no `get_config()`, or it returns
            something else (the message names the file, the accepted
            classes and the class received).
    """
    path = pathlib.Path(path)
    module_name = "pepita_" + description.lower().replace(" ", "_") + f"_{path.stem}"
    with _common_importable(path.parent):
        module = _run_file(module_name, path)
    if not hasattr(module, "get_config"):
        raise ValueError(f"{description} file {path} does not define get_config().")
    config = module.get_config()
    if not isinstance(config, tuple(accepted_types)):
        expected = " or ".join(_with_article(cls.__name__) for cls in accepted_types)
        raise ValueError(
            f"get_config() in {path} must return {expected}; "
            f"received {type(config).__name__}."
        )
    return config


def _run_file(module_name, path):
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def common_file(folder):
    """The `common.py` a config file in `folder` imports: the folder's own, else the shipped one."""
    own = pathlib.Path(folder) / f"{COMMON_MODULE}.py"
    return own if own.is_file() else SHIPPED_CONFIG_DIR / f"{COMMON_MODULE}.py"


def load_common(folder):
    """Runs and returns the `common` module that config files in `folder` import.

    Args:
        folder: a config folder.

    Returns:
        The module of `common_file(folder)`, freshly run.

    Raises:
        ValueError: if neither `folder` nor the shipped config folder has a
            `common.py` (the message names both).
    """
    path = common_file(folder)
    if not path.is_file():
        raise ValueError(
            f"No {COMMON_MODULE}.py in {folder} nor in the shipped config folder "
            f"{SHIPPED_CONFIG_DIR}: the shipped configs come with a source checkout "
            "of pepita_keras (git clone, then pip install -e .).")
    return _run_file(f"pepita_{COMMON_MODULE}_{abs(hash(str(path.resolve())))}", path)


@contextlib.contextmanager
def _common_importable(folder):
    """While a config file runs, `import common` finds its folder's `common.py`.

    The folder comes first on `sys.path`, then the shipped config folder (for
    a folder without a `common.py` of its own); `common` is imported only if
    the file imports it. Another module called `common` (a user's package, or
    the `common` of a config folder loaded earlier) is set aside and put back
    afterwards, so each folder's files see their own helpers.
    """
    added = [str(pathlib.Path(folder).resolve()), str(SHIPPED_CONFIG_DIR)]
    saved = sys.modules.pop(COMMON_MODULE, None)
    sys.path[:0] = added
    importlib.invalidate_caches()  # a common.py written since the last load is found
    try:
        yield
    finally:
        for entry in added:
            sys.path.remove(entry)
        sys.modules.pop(COMMON_MODULE, None)
        if saved is not None:
            sys.modules[COMMON_MODULE] = saved
