"""MLflow helpers shared by the reproductions and the tuner.

Only MLflow's Python API is used (`mlflow.MlflowClient`), with explicit run
ids rather than the fluent "active run" stack, so a run can be reopened by
id after a crash and nested runs are plain `mlflow.parentRunId` tags.

The tracking store is MLflow's default (`sqlite:///mlflow.db` in the
working directory) unless `MLFLOW_TRACKING_URI` or an explicit URI says
otherwise.

Where artifacts go (`artifact_location`): experiments this package creates
in a SQLite store keep their artifacts beside the database, in
`<db folder>/mlartifacts/<experiment>/` (MLflow's own default would be
`./mlruns` in whatever folder the process happens to run in). The committed
store `reproductions/results/tracking.db` is the exception: its experiments
use the *relative* location `reproductions/results/artifacts/<experiment>`,
which MLflow (UI, server, `MlflowClient.download_artifacts`) resolves
against the working directory, so the store and its artifacts work from the
root of any clone. Writing goes through `artifact_context`, which enters
that root while MLflow writes, so a process started elsewhere still puts the
files in the clone.

Vocabulary shared by `pepita reproduce` and `pepita tune`:

- tags `pepita.role` (`cell` / `seed` for reproductions, `search` / `trial`
  for tuning), `pepita.rule`, `pepita.dataset`, `pepita.architecture`;
  booleans are `"true"` / `"false"` (`tag_value`);
- run names `<cell>/seed<k>` and `<search>/trial_<id>` under a parent named
  after the cell or search;
- metrics `train_*` (training split), `val_*` (validation split held out
  from the training set, tuning) and `test_*` (test set, reproductions);
  accuracies are fractions in [0, 1] everywhere in MLflow (tables and plots
  show percent); per-epoch metrics are logged at step = epoch number,
  1 … N, as in the plots.

Example:

```python
client = tracking.client()
experiment_id = tracking.experiment_id(client, "pepita-reproductions")
parent = tracking.create_run(client, experiment_id, "fc_mnist_pepita")
child = tracking.create_run(client, experiment_id, "fc_mnist_pepita/seed0",
                            parent_run_id=parent)
tracking.log_params(client, child, {"lr": 0.1})
model.fit(..., callbacks=[callbacks.MLflowMetricsCallback(client, child)])
tracking.finish_run(client, child)
```
"""

import contextlib
import fcntl
import json
import os
import pathlib
import sys
import tempfile
import threading
import time

import pepita_keras
from pepita_keras.store import json_files, safe_files, untrusted

# MLflow's limits (mlflow.utils.validation): param values up to 6000 chars,
# batches of at most 100 params / 1000 metrics.
_MAX_PARAM_LENGTH = 6000
_PARAM_BATCH = 100
_METRIC_BATCH = 1000

# The committed store, relative to the repository root, and the folder (same
# root) its experiments keep their artifacts in.
COMMITTED_STORE = "reproductions/results/tracking.db"
COMMITTED_ARTIFACTS = "reproductions/results/artifacts"
# Artifacts of other SQLite stores: this folder beside the database file.
ARTIFACTS_FOLDER = "mlartifacts"
# Bumped when what a run records changes shape (steps, names, units);
# `pepita_keras.store.migrate` upgrades older runs to it.
SCHEMA_TAG = "pepita.schema"
SCHEMA_VERSION = 2
ROLE_TAG = "pepita.role"
# Steps per `fit` call a seed's latest segment trained with: its `epoch_time_s` depend on it
# (32 under TensorFlow since the factory compiles so; runs without the tag used 1).
STEPS_PER_CALL_TAG = "pepita.steps_per_execution"
# Keras backend and device kind of a run (`provenance.platform_name()`);
# runs recorded before it was tagged ran on TensorFlow on a CPU.
PLATFORM_TAG = "pepita.platform"
DEFAULT_PLATFORM = "tensorflow-cpu"
# Where `pepita reproduce` records its runs and `pepita results` reads them.
REPRODUCTIONS_EXPERIMENT = "pepita-reproductions"
# Where `pepita tune` records its searches and `pepita tune-report` reads them.
TUNING_EXPERIMENT = "pepita-tuning"


def tracking_uri(uri=None):
    """The tracking URI in effect: `uri`, else `MLFLOW_TRACKING_URI`, else MLflow's default.

    A relative SQLite path is made absolute, so the URI names the same store
    from any working directory (run folders record it).
    """
    import mlflow

    uri = uri or mlflow.get_tracking_uri()
    path = sqlite_path(uri)
    if path is not None and not path.is_absolute():
        return f"sqlite:///{path.resolve()}"
    return uri


def named_uri(uri=None):
    """The store as the user named it, for messages and generated tables.

    `uri`, else `MLFLOW_TRACKING_URI`, else `tracking_uri()`: a relative SQLite
    URI stays relative, so a table naming it is true in any clone.
    """
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or tracking_uri()


def client(uri=None, allow_schema_upgrade=False):
    """An `mlflow.MlflowClient` for `tracking_uri(uri)`, its store ready for use.

    A SQLite store is first opened under a file lock beside it: MLflow
    creates and migrates the schema on first use, and two processes doing
    that at once crash (alembic `CommandError`). For reading only, use
    `read_client`, which never changes the store.

    Args:
        uri: the tracking URI (default: `tracking_uri()`).
        allow_schema_upgrade: let MLflow upgrade an older SQLite store's
            schema (`pepita migrate-store`); otherwise such a store is refused
            (`check_schema_current`).
    """
    import logging

    import mlflow

    # MLflow announces creating and upgrading a SQLite schema at INFO on
    # every new store; the package's own lines say what happens.
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # It also logs each database error with its traceback before raising it;
    # the raised error is what `store_problem` explains (or Python shows).
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    uri = tracking_uri(uri)
    remote = str(uri).startswith(("http://", "https://"))
    if remote:
        # MLflow's defaults retry an unreachable server for minutes; answer in seconds.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    check_sqlite_file(uri)
    if not allow_schema_upgrade:
        check_schema_current(uri)
    with store_lock(uri):
        path = sqlite_path(uri)
        if path is not None and not path.exists():
            _create_sqlite_store(path)
        try:
            mlflow_client = mlflow.MlflowClient(tracking_uri=uri)
        except ModuleNotFoundError as error:
            # e.g. postgresql:// without psycopg2, mysql:// without PyMySQL.
            raise ValueError(
                f"the tracking URI {uri.split('@')[-1]} needs the Python package "
                f"{error.name!r}, which is not installed (pip install "
                f"{_DRIVERS.get(error.name, error.name)}).") from None
        try:
            mlflow_client.search_experiments(max_results=1)
        except Exception as error:  # noqa: BLE001 - any failure to reach it is the same message
            if not remote:
                raise
            reason = " ".join(str(error).split())[:200]
            raise ValueError(
                f"cannot reach the MLflow tracking server {uri} ({type(error).__name__}: "
                f"{reason}). Is `mlflow server` running there? Set --tracking-uri / "
                "MLFLOW_TRACKING_URI to a reachable server or a sqlite:/// file.") from None
    return mlflow_client


def _create_sqlite_store(path):
    """Creates a new SQLite store's schema in a temporary file, then renames it into place.

    MLflow builds a schema in dozens of migrations; a process killed among them would
    leave a half-built store that every later command trips over. Built aside and
    renamed, a store is either complete or absent (a killed creation leaves only a
    `.<name>.creating-*` file, which the next creation ignores).
    """
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.creating-",
                                         suffix=".db")
    os.close(handle)
    os.unlink(temporary)  # SQLite creates it; mkstemp only reserved a fresh name
    engine = sqlalchemy.create_engine(f"sqlite:///{temporary}")
    try:
        _initialize_tables(engine)
    except BaseException:
        engine.dispose()
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise
    engine.dispose()
    safe_files.refuse_link(path, "store")
    os.replace(temporary, path)


# A read-only client's private copy → the store it copies (`read_client`).
_READ_COPIES = {}


def read_client(uri=None):
    """An `mlflow.MlflowClient` that reads store `uri` and never changes it.

    Commands that only read (`results`, `figures`, `tune-report`, `--plan`,
    `merge-store`'s source) use this. A SQLite store is copied (the database
    only, through SQLite's online backup from a read-only connection) into a
    private temporary folder, and the copy is opened: MLflow may upgrade the
    copy's schema (a newer MLflow than the one that wrote the store does so
    on open) or take locks beside it, and the store itself keeps every byte.
    Artifacts still resolve against the original store (`store_root`). A
    server URI is read through MLflow's API, which does not migrate anything.

    Raises:
        FileNotFoundError: naming the path, when a SQLite store does not exist
            (nothing is created).
    """
    uri = tracking_uri(uri)
    if sqlite_path(uri) is None:
        return client(uri)
    return client(read_copy(uri), allow_schema_upgrade=True)


def read_copy(uri):
    """A private copy of SQLite store `uri`: the copy's URI (`read_client`, `pepita ui`).

    The copy lives in a temporary folder removed when the process exits.

    Raises:
        FileNotFoundError: naming the path, when the store does not exist.
    """
    import atexit
    import shutil
    import sqlite3

    uri = tracking_uri(uri)
    path = sqlite_path(uri)
    check_sqlite_file(uri)
    if not path.is_file():
        raise FileNotFoundError(
            f"no MLflow store at {path} (nothing was created). Train a cell first "
            "(`pepita reproduce CELL`), or pass --tracking-uri sqlite:///<store.db> "
            f"(the committed one: sqlite:///{COMMITTED_STORE}).")
    check_sqlite_file(uri)
    folder = tempfile.mkdtemp(prefix="pepita-read-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    copy = pathlib.Path(folder) / path.name
    # A read transaction first: it waits for a writer at most as long as MLflow would (20 s)
    # and then fails with SQLite's "database is locked", which the CLI explains; SQLite's
    # backup alone would retry a locked store forever.
    source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=20)
    target = sqlite3.connect(copy)
    try:
        source.execute("BEGIN")
        source.execute("SELECT count(*) FROM sqlite_master").fetchone()
        source.backup(target)
    finally:
        source.close()
        target.close()
    copy_uri = f"sqlite:///{copy}"
    found = schema_revision(copy)
    if found is not None and found != installed_schema_revision():
        # An older store: the copy is upgraded (MLflow refuses or upgrades on open).
        import sqlalchemy
        from mlflow.store.db.utils import _upgrade_db

        engine = sqlalchemy.create_engine(copy_uri)
        try:
            _upgrade_db(engine)
        finally:
            engine.dispose()
    _READ_COPIES[copy_uri] = uri
    return copy_uri


def original_uri(uri):
    """The store a `read_client` copy stands for (`uri` itself otherwise)."""
    return _READ_COPIES.get(str(uri), uri)


def schema_revision(path):
    """The MLflow (alembic) schema revision of SQLite store `path`, or None for a new one."""
    import sqlite3

    if not pathlib.Path(path).is_file() or pathlib.Path(path).stat().st_size == 0:
        return None
    connection = sqlite3.connect(f"{pathlib.Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.DatabaseError:
        return None  # no MLflow tables yet (an interrupted creation): MLflow creates them
    finally:
        connection.close()
    return rows[0][0] if rows else None


def installed_schema_revision():
    """The schema revision the installed MLflow writes (its newest alembic head)."""
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    return ScriptDirectory.from_config(_get_alembic_config("sqlite://")).get_current_head()


def check_schema_current(uri):
    """Refuses to write a SQLite store whose schema the installed MLflow would upgrade.

    MLflow upgrades an older store's schema in place on open, after which
    the MLflow that wrote it can no longer read it: for a store under version
    control (the committed one) that rewrites the evidence. Writing commands
    therefore stop and name `pepita migrate-store`, which upgrades on purpose.
    """
    path = sqlite_path(uri)
    if path is None:
        return
    found = schema_revision(path)
    if found is None:
        return
    import mlflow

    head = installed_schema_revision()
    if found != head:
        raise ValueError(
            f"the MLflow store {path} has schema revision {found}, and the installed MLflow "
            f"{mlflow.__version__} writes {head}: opening it to write would upgrade it in place, "
            "after which the MLflow that wrote it cannot read it. Read it as it is (`pepita "
            "results`, `figures`, `tune-report` and `ui` work on a private copy); to write to "
            f"it, back it up and run `pepita migrate-store --tracking-uri sqlite:///{path}`, or "
            "install the MLflow version that wrote it.")


# Database drivers MLflow's SQL stores import, and their pip names.
_DRIVERS = {"psycopg2": "psycopg2-binary", "psycopg": "'psycopg[binary]'", "pymysql": "PyMySQL",
            "pymssql": "pymssql"}


def sqlite_path(uri):
    """The database file of a `sqlite:///` URI, else None."""
    prefix = "sqlite:///"
    if not str(uri).startswith(prefix):
        return None
    return pathlib.Path(str(uri)[len(prefix):].split("?", 1)[0])


_SQLITE_HEADER = b"SQLite format 3\x00"


def check_sqlite_file(uri):
    """Refuses a `sqlite:///` URI whose file exists but is not an SQLite database."""
    path = sqlite_path(uri)
    if path is not None and path.is_dir():
        raise ValueError(f"{path} is a folder, not an MLflow SQLite file: pass "
                         f"--tracking-uri sqlite:///{path / 'mlflow.db'} (a new name creates it).")
    if path is None or not path.is_file():
        return
    try:
        with open(path, "rb") as f:
            header = f.read(len(_SQLITE_HEADER))
    except OSError as error:
        raise ValueError(f"cannot read the MLflow store {path}: {error.strerror}.") from None
    if header and header != _SQLITE_HEADER:
        raise ValueError(
            f"{path} is not an SQLite database (it does not start with 'SQLite format 3'), so "
            "it cannot be an MLflow store. Point --tracking-uri / MLFLOW_TRACKING_URI at an "
            "MLflow sqlite:/// file (a new name creates one).")


def store_problem(error, uri):
    """A one-line explanation of a database error from the store `uri`, or None.

    MLflow surfaces SQLite's conditions as SQLAlchemy exceptions with raw SQL;
    these are the ones a user causes and can fix.
    """
    text = str(getattr(error, "orig", None) or error)
    where = sqlite_path(uri) or uri
    if "database is locked" in text:
        return (f"the MLflow store {where} is locked by another process (SQLite: database is "
                "locked). Wait until the other `pepita` or `mlflow` command writing to it "
                "finishes, then rerun; a run that was training resumes from its checkpoint.")
    if "readonly database" in text or "unable to open database file" in text:
        return (f"the MLflow store {where} cannot be written here (SQLite: {text}). Make the "
                "file and its folder writable, or copy the store to a writable folder and pass "
                "--tracking-uri sqlite:///<copy>.")
    if "file is not a database" in text or "database disk image is malformed" in text:
        return (f"{where} is not a readable SQLite database (SQLite: {text}). Restore the "
                "store from its backup (e.g. `git checkout -- reproductions/results/tracking.db` "
                "for the committed one) or point --tracking-uri at another store.")
    return None


@contextlib.contextmanager
def store_lock(uri, suffix=".lock"):
    """Holds an exclusive lock on `<db><suffix>` for a SQLite `uri` (no-op otherwise).

    In a folder this process cannot write (a read-only copy of a store),
    there is no lock to take: nothing can migrate or write the store there.

    Args:
        uri: the store.
        suffix: which lock: `.lock` while MLflow opens the store, `.merge.lock` for
            the length of a merge (a separate file: flock locks of one process on two
            descriptors of one file would deadlock).
    """
    path = sqlite_path(uri)
    if path is None or (path.parent.is_dir() and not os.access(path.parent, os.W_OK)):
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with safe_files.open_lock(f"{path}{suffix}") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def store_root(uri):
    """The repository root of the committed store `uri`, else None.

    The committed store is any SQLite file at `<root>/reproductions/results/
    tracking.db`, whichever clone or worktree `<root>` is.
    """
    uri = tracking_uri(uri)
    path = sqlite_path(original_uri(uri))
    if path is None:
        return None
    parts = pathlib.PurePosixPath(COMMITTED_STORE).parts
    if tuple(path.parts[-len(parts):]) != parts:
        return None
    return pathlib.Path(*path.parts[: -len(parts)])


def artifact_folder_name(name):
    """A folder name for experiment `name` that stays inside the artifacts folder.

    Names are data (a merged store's experiment may be called `..`): separators and
    anything but letters, digits, `.`, `_` and `-` become `_`, and a name of dots only gets
    a prefix, so the folder is always one plain child of the artifacts folder.
    """
    import hashlib
    import re

    folder = re.sub(r"[^A-Za-z0-9._-]", "_", str(name))[:100]
    if not folder.strip("."):
        folder = "experiment-" + hashlib.sha256(str(name).encode()).hexdigest()[:12]
    return folder


def default_artifact_location(uri, name):
    """Where experiment `name` of store `uri` keeps its artifacts (see module docstring).

    Returns:
        `reproductions/results/artifacts/<name>` (relative) for the committed
        store, `<db folder>/mlartifacts/<name>` (absolute) for another SQLite
        store, None (the server's default) for anything else.
    """
    uri = tracking_uri(uri)
    folder = artifact_folder_name(name)
    if store_root(uri) is not None:
        return f"{COMMITTED_ARTIFACTS}/{folder}"
    path = sqlite_path(uri)
    if path is not None:
        return str(path.parent / ARTIFACTS_FOLDER / folder)
    return None


def client_uri(mlflow_client):
    """The tracking URI an `MlflowClient` talks to."""
    return mlflow_client._tracking_client.tracking_uri


def experiment_id(mlflow_client, name, artifact_location=None):
    """Id of experiment `name`, created if missing.

    Args:
        mlflow_client: an `mlflow.MlflowClient`.
        name: experiment name.
        artifact_location: where its artifacts go; default
            `default_artifact_location` of the client's store. A relative
            location is stored as given (see module docstring).
    """
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    uri = client_uri(mlflow_client)
    location = artifact_location or default_artifact_location(uri, name)
    relative = location is not None and not _is_absolute_location(location)
    try:
        # MLflow makes a relative location absolute (against the working
        # directory); a relative one is set right after.
        created = mlflow_client.create_experiment(
            name, artifact_location=None if relative else location,
            tags={SCHEMA_TAG: str(SCHEMA_VERSION)})
    except Exception:  # created concurrently by another process
        experiment = mlflow_client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id
    if relative:
        set_artifact_location(uri, created, location)
    return created


def _is_absolute_location(location):
    from mlflow.utils.uri import get_uri_scheme

    return get_uri_scheme(location) not in ("",) or pathlib.Path(location).is_absolute()


def _sql_store(uri):
    from mlflow.tracking._tracking_service.utils import _get_store

    store = _get_store(tracking_uri(uri))
    if not hasattr(store, "ManagedSessionMaker"):
        raise ValueError(f"{uri} is not a database-backed MLflow store.")
    return store


def set_artifact_location(uri, experiment, location, runs=()):
    """Points an experiment (and `runs` of it) at another artifact location.

    MLflow has no API to change an artifact location (and makes relative ones
    absolute when it creates them), so this updates its own ORM rows: the
    experiment's `artifact_location`, and each run's `artifact_uri` to
    `<location>/<run id>/artifacts`, MLflow's layout.

    Args:
        uri: a database-backed store.
        experiment: experiment id.
        location: the new location (a relative one is kept relative).
        runs: run ids whose artifact URI moves along.
    """
    from mlflow.store.tracking.dbmodels.models import SqlExperiment, SqlRun

    store = _sql_store(uri)
    with store.ManagedSessionMaker(read_only=False) as session:
        session.query(SqlExperiment).filter(
            SqlExperiment.experiment_id == int(experiment)).update(
                {SqlExperiment.artifact_location: location}, synchronize_session=False)
        for run_id in runs:
            untrusted.check_run_id(run_id, f"store {uri}")
            session.query(SqlRun).filter(SqlRun.run_uuid == run_id).update(
                {SqlRun.artifact_uri: f"{location}/{run_id}/artifacts"},
                synchronize_session=False)


_CWD_LOCK = threading.RLock()


@contextlib.contextmanager
def artifact_context(mlflow_client, artifact_uri=None):
    """Lets MLflow write artifacts of a committed-store run from any folder.

    MLflow resolves a relative artifact location against the working
    directory (as `mlflow ui` does when started at the repository root), so
    while artifacts of such a run are written the process works in the
    store's repository root. A no-op for absolute locations.

    Args:
        mlflow_client: the client of the run's store.
        artifact_uri: the run's (or logged model's) artifact URI.
    """
    root = store_root(client_uri(mlflow_client))
    if root is None or artifact_uri is None or _is_absolute_location(artifact_uri):
        yield
        return
    with _CWD_LOCK:
        previous = os.getcwd()
        os.chdir(root)
        try:
            yield
        finally:
            os.chdir(previous)


def local_artifact_path(artifact_uri, base):
    """The local path of an artifact URI, a relative one read against `base`; None if remote."""
    text = artifact_uri or ""
    if text.startswith("file://"):
        text = text.removeprefix("file://")
    elif "://" in text or not text:
        return None
    path = pathlib.Path(text)
    return path if path.is_absolute() else pathlib.Path(base) / path


def local_artifact_folder(mlflow_client, run):
    """The local folder of a run's artifacts (relative locations against the store root), or None."""
    root = store_root(client_uri(mlflow_client))
    return local_artifact_path(run.info.artifact_uri, root or pathlib.Path.cwd())


def run_artifact_context(mlflow_client, run_id):
    """`artifact_context` for a run id."""
    return artifact_context(mlflow_client, mlflow_client.get_run(run_id).info.artifact_uri)


def log_artifact(mlflow_client, run_id, local_path, artifact_path=None):
    """`MlflowClient.log_artifact` into the run's own location (see `artifact_context`)."""
    with run_artifact_context(mlflow_client, run_id):
        mlflow_client.log_artifact(run_id, str(pathlib.Path(local_path).resolve()),
                                   artifact_path)


def download_artifact(mlflow_client, run_id, path, destination):
    """`MlflowClient.download_artifacts` that works from any working directory."""
    destination = str(pathlib.Path(destination).resolve())
    with run_artifact_context(mlflow_client, run_id):
        return mlflow_client.download_artifacts(run_id, path, destination)


def list_artifacts(mlflow_client, run_id, path=None):
    """`MlflowClient.list_artifacts` that works from any working directory."""
    with run_artifact_context(mlflow_client, run_id):
        return mlflow_client.list_artifacts(run_id, path)


def tag_value(value):
    """A tag's string: booleans as `"true"`/`"false"` everywhere, others `str()`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def tag_is_true(value):
    """Reads a boolean tag, whichever spelling wrote it (`true`, `True`, `1`)."""
    return str(value).lower() in ("true", "1")


def seed_ended(tags):
    """Whether a seed run's tags say it ended: completed, or stopped by divergence."""
    return (tag_is_true(tags.get("pepita.complete")) or tag_is_true(tags.get("pepita.diverged"))
            or bool(tags.get("pepita.diverged_epoch")))


def role(tags):
    """A run's `pepita.role` (`cell`, `seed`, `search`, `trial`), old `pepita.kind` too."""
    return tags.get(ROLE_TAG) or tags.get("pepita.kind")


def config_tags(config):
    """`pepita.rule`, `pepita.dataset`, `pepita.architecture` of an `ExperimentConfig`."""
    return {"pepita.rule": config.rule, "pepita.dataset": config.dataset,
            "pepita.architecture": config.architecture}


def run_schema(tags):
    """The `pepita.schema` a run was written with (1: before steps started at 1)."""
    try:
        return int(tags.get(SCHEMA_TAG, 1))
    except ValueError:
        return 1


def create_run(mlflow_client, experiment, run_name, parent_run_id=None, tags=None):
    """Creates a RUNNING run (nested under `parent_run_id` if given); returns its id."""
    # Stringify here: MLflow's store would turn a bool tag into "1".
    tags = {SCHEMA_TAG: SCHEMA_VERSION, **(tags or {})}
    tags = {str(k): tag_value(v) for k, v in tags.items()}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run = mlflow_client.create_run(experiment, run_name=run_name, tags=tags)
    return run.info.run_id


def reopen_run(mlflow_client, run_id):
    """Marks an existing run RUNNING again (resuming after a crash)."""
    mlflow_client.update_run(run_id, status="RUNNING")


def delete_metric_history(mlflow_client, run_id, keys):
    """Deletes every value of metrics `keys` of a run, so they can be logged afresh.

    MLflow's API only appends to a metric's history; a database-backed store
    is edited through MLflow's own models. Returns False (nothing deleted)
    for other stores, where a re-logged curve is appended instead.
    """
    try:
        store = _sql_store(client_uri(mlflow_client))
    except ValueError:
        return False
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric

    with store.ManagedSessionMaker(read_only=False) as session:
        for model in (SqlMetric, SqlLatestMetric):
            session.query(model).filter(model.run_uuid == run_id, model.key.in_(list(keys))
                                        ).delete(synchronize_session=False)
    return True


def delete_run_completely(mlflow_client, run):
    """Deletes a run, and in a database store also its rows and local artifact folder.

    MLflow's `delete_run` only hides a run; the committed store must not keep
    what a merge or a migration replaced.
    """
    mlflow_client.delete_run(run.info.run_id)
    try:
        _sql_store(client_uri(mlflow_client))._hard_delete_run(run.info.run_id)
    except (ValueError, AttributeError):
        pass  # not a database store: the run stays soft-deleted (hidden)
    folder = local_artifact_folder(mlflow_client, run)
    if folder is not None and folder.parts[-2:] == (run.info.run_id, "artifacts"):
        import shutil

        shutil.rmtree(folder.parent, ignore_errors=True)


def finish_run(mlflow_client, run_id, status="FINISHED"):
    """Terminates a run with `status` (`FINISHED`, `FAILED`, `KILLED`)."""
    mlflow_client.set_terminated(run_id, status=status)


def run_exists(mlflow_client, run_id):
    """True if `run_id` exists in the store (and is not deleted)."""
    try:
        run = mlflow_client.get_run(run_id)
    except Exception:
        return False
    return run.info.lifecycle_stage != "deleted"


def log_params(mlflow_client, run_id, params):
    """Logs a flat dict of params, values stringified and truncated to MLflow's limit."""
    from mlflow.entities import Param

    items = [
        Param(str(key), param_value(value)) for key, value in sorted(params.items())
    ]
    for start in range(0, len(items), _PARAM_BATCH):
        mlflow_client.log_batch(run_id, params=items[start : start + _PARAM_BATCH])


def param_value(value):
    """How `log_params` writes `value`: JSON for containers, else `str`, truncated."""
    text = json.dumps(value) if isinstance(value, (list, tuple, dict)) else str(value)
    return text[:_MAX_PARAM_LENGTH]


def set_tags(mlflow_client, run_id, tags):
    """Sets several tags at once."""
    from mlflow.entities import RunTag

    mlflow_client.log_batch(
        run_id, tags=[RunTag(str(k), tag_value(v)) for k, v in tags.items()]
    )


def log_metrics(mlflow_client, run_id, metrics, step=None):
    """Logs every numeric value of `metrics` at `step`, NaN and ±Inf included.

    A diverged run's non-finite losses are logged as they are, not dropped.
    """
    from mlflow.entities import Metric

    timestamp = int(time.time() * 1000)
    items = [
        Metric(str(key), float(value), timestamp, step or 0)
        for key, value in metrics.items()
        if _is_number(value)
    ]
    for start in range(0, len(items), _METRIC_BATCH):
        mlflow_client.log_batch(run_id, metrics=items[start : start + _METRIC_BATCH])


def _is_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def logged_steps(mlflow_client, run_id, key):
    """The steps at which metric `key` was logged in `run_id`."""
    return {m.step for m in mlflow_client.get_metric_history(run_id, key)}


def log_json_artifact(mlflow_client, run_id, data, filename, artifact_path=None):
    """Writes `data` as strict JSON (non-finite numbers as null) and logs it."""
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / filename
        path.write_text(json_files.dumps(data))
        log_artifact(mlflow_client, run_id, path, artifact_path)


def metric_histories(mlflow_client, run_id, keys=None):
    """`{key: [value per step]}` of a run's metrics, steps ascending.

    The last value logged at a step wins (a resumed run may log a step twice).

    Args:
        mlflow_client: an `mlflow.MlflowClient`.
        run_id: the run.
        keys: metric names (default: every metric of the run).
    """
    if keys is None:
        keys = sorted(mlflow_client.get_run(run_id).data.metrics)
    histories = {}
    for key in keys:
        values = {}
        for metric in sorted(mlflow_client.get_metric_history(run_id, key),
                             key=lambda m: (m.step, m.timestamp)):
            values[metric.step] = metric.value
        histories[key] = [values[step] for step in sorted(values)]
    return histories


def log_keras_model(mlflow_client, run_id, model, name="model", input_example=None):
    """Logs a Keras model as an MLflow model of `run_id` (Models tab, registry).

    `mlflow.keras.log_model` under the run, with the `.keras` format (the
    PEPITA feedback matrices and optimizer state are Keras variables, so they
    are saved with it). MLflow's fluent API is used with this client's store
    for the duration of the call only.

    Args:
        mlflow_client: the run's client.
        run_id: the run.
        model: a built Keras model.
        name: the model's name in the run.
        input_example: optional input batch; the model's signature is
            inferred from it and the model's prediction.

    Returns:
        The `ModelInfo` (its `model_uri` loads the model with
        `mlflow.keras.load_model`).
    """
    import mlflow
    import mlflow.keras

    signature = None
    if input_example is not None:
        # A signature (input/output shapes) from a prediction on the example;
        # MLflow's own input_example saving fails for this flavor.
        from mlflow.models import infer_signature

        signature = infer_signature(input_example, model.predict(input_example, verbose=0))
    run = mlflow_client.get_run(run_id)
    status = run.info.status
    with artifact_context(mlflow_client, run.info.artifact_uri), _CWD_LOCK, \
            _fluent_tracking_uri(client_uri(mlflow_client)):
        with mlflow.start_run(run_id=run_id):
            info = mlflow.keras.log_model(
                model, name=name, signature=signature,
                # Stated, not inferred: MLflow's inference reloads the model
                # in a subprocess (tens of seconds) and cannot see that the
                # rule classes come from pepita_keras.
                pip_requirements=_model_requirements())
    # start_run/end_run mark the run FINISHED; keep the caller's status.
    mlflow_client.update_run(run_id, status=status)
    return info


def logged_models(mlflow_client, run_id, name="model"):
    """The MLflow logged models called `name` that `run_id` produced (any status)."""
    run = mlflow_client.get_run(run_id)
    found = mlflow_client.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'")
    return [model for model in found if model.name == name]


def log_keras_model_once(mlflow_client, run_id, model, name="model", input_example=None):
    """`log_keras_model`, unless the run already has that model complete.

    A process killed while it logged the model leaves it PENDING (or
    FAILED): such an incomplete copy is deleted and the model logged again,
    so a run ends with exactly one complete model, never a half-written one
    beside it.

    Returns:
        True if the model was logged now, False if the run had it already.
    """
    from mlflow.entities import LoggedModelStatus

    existing = logged_models(mlflow_client, run_id, name)
    if any(item.status == LoggedModelStatus.READY for item in existing):
        return False
    for item in existing:
        mlflow_client.delete_logged_model(item.model_id)
    log_keras_model(mlflow_client, run_id, model, name=name, input_example=input_example)
    return True


@contextlib.contextmanager
def _fluent_tracking_uri(uri):
    """Points MLflow's fluent API at `uri` for a block, then restores it exactly.

    `mlflow.set_tracking_uri` also writes (or, for None, deletes) the
    `MLFLOW_TRACKING_URI` environment variable, so both are put back: a later
    `tracking_uri()` must still see what the user configured.
    """
    import mlflow
    from mlflow.tracking._tracking_service import utils

    previous, environment = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
        if environment is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = environment


def _model_requirements():
    # Keras is already loaded (the model exists); importing it here, not at
    # the top, keeps store-only commands (`pepita results`) free of it.
    import keras

    requirements = [f"keras=={keras.__version__}", f"pepita_keras=={pepita_keras.__version__}"]
    backend = keras.backend.backend()
    module = sys.modules.get("tensorflow" if backend == "tensorflow" else backend)
    if getattr(module, "__version__", None):
        requirements.append(f"{'tensorflow' if backend == 'tensorflow' else backend}=="
                            f"{module.__version__}")
    return requirements


def check_system_metrics():
    """ValueError unless MLflow's system metrics can be sampled (psutil installed).

    Without psutil MLflow only logs a warning and records nothing.
    """
    import importlib.util

    if importlib.util.find_spec("psutil") is None:
        raise ValueError("--system-metrics needs psutil, which MLflow's system metrics "
                         "monitor samples with: pip install psutil")


class SystemMetrics:
    """MLflow's system metrics (CPU, memory, disk, network, GPU) for one run.

    `mlflow.system_metrics.SystemMetricsMonitor` sampling in a background
    thread while the block runs; the metrics appear as `system/*` in the
    run's Model metrics / System metrics charts. Needs `psutil` (and
    `pynvml` for GPUs).

    Args:
        mlflow_client: the run's client.
        run_id: the run.
        enabled: False makes this a no-op.
        sampling_interval: seconds between samples.
    """

    def __init__(self, mlflow_client, run_id, enabled=True, sampling_interval=10):
        self.monitor = None
        if enabled:
            check_system_metrics()
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

            self.monitor = SystemMetricsMonitor(
                run_id, sampling_interval=sampling_interval, resume_logging=True,
                tracking_uri=client_uri(mlflow_client))

    def __enter__(self):
        if self.monitor is not None:
            self.monitor.start()
        return self

    def __exit__(self, *exc_info):
        if self.monitor is not None:
            self.monitor.finish()
        return False


def likely_platform():
    """This machine's `provenance.platform_name()`, guessed without importing Keras.

    The backend is the one `import pepita_keras` settles on (`KERAS_BACKEND`);
    the device kind is "gpu" when an NVIDIA device node is present, else
    "cpu". Only `pepita reproduce --plan` uses it, to prefer epoch times of
    runs on this kind of machine; runs record `provenance.platform_name()` itself.
    """
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    gpu = any(os.path.exists(node) for node in ("/dev/nvidia0", "/dev/nvidiactl"))
    return f"{backend}-{'gpu' if gpu else 'cpu'}"


def run_platform(tags):
    """The platform a run trained on (`PLATFORM_TAG`; untagged runs are `DEFAULT_PLATFORM`'s)."""
    return tags.get(PLATFORM_TAG, DEFAULT_PLATFORM)


def parent_key(run):
    """What makes two parent runs one cell: run name, smoke and synthetic flags, platform.

    The name carries the settings (`<cell>` for the shipped ones, else
    `<cell>-custom-<digest>`), so runs with equal keys are one experiment.
    Used by `recorder.existing_parent` (a new run folder adds its seeds to the
    cell's parent) and by `migrate.tidy_cells` and `merge.merge_store`, which
    join such parents into the earliest.
    """
    tags = run.data.tags
    return (run.info.run_name, tag_is_true(tags.get("pepita.smoke")),
            tag_is_true(tags.get("pepita.synthetic")), run_platform(tags))


def cell_key(run):
    """What makes two parent runs one cell in a merge or a migration: `parent_key` and the
    training settings.

    A shipped config that changed between two runs keeps their name, so the name alone
    would join a cell's new seeds to a parent of the old settings (and the table would
    count them as the old settings'). Params are compared as their training settings
    (`experiment_config.training_settings`): notes, seeds and paper numbers do not split a
    cell.
    """
    from pepita_keras import experiment_config

    settings = experiment_config.training_settings(run.data.params)
    return parent_key(run) + (tuple(sorted(settings.items())),)


def split_metric_name(name, validation="val"):
    """Keras log name → the tracked name: `train_*`, and `val_*` → `<validation>_*`.

    Args:
        name: a Keras log key (`loss`, `accuracy`, `val_loss`, …).
        validation: what Keras's validation data is: `"val"` (a held-out part
            of the training set, tuning) or `"test"` (the test set,
            reproductions).
    """
    if name.startswith("val_"):
        return f"{validation}_" + name[len("val_"):]
    if name in ("loss", "accuracy"):
        return "train_" + name
    return name


def test_metric_name(name):
    """`val_accuracy` → `test_accuracy`, `loss` → `train_loss`, others unchanged."""
    if name.startswith("val_"):
        return "test_" + name[len("val_") :]
    if name in ("loss", "accuracy"):
        return "train_" + name
    return name
