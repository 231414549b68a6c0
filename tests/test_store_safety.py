"""Another store is data: `merge-store` and `migrate-store` against crafted stores and archives.

Each attack of the store audit is built here as a store or archive an attacker
could hand over; the assertions look only at the file system and the target
store (a marker file a planted config would write, files outside the target,
the target's runs), never at the merge's own return values alone. Merges are
also interrupted at every write they make and rerun: the result must equal an
uninterrupted merge.
"""

import io
import os
import pathlib
import sqlite3
import tarfile

import pytest

from pepita_keras import cli
from pepita_keras.store import merge as store_merge, migrate, tracking, untrusted

EXPERIMENT = "pepita-reproductions"


def _source_store(folder, seeds=2, artifact_root=None):
    """A small store like a reproduction's: one parent, `seeds` children with metrics and a file."""
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder / 'tracking.db'}"
    client = tracking.client(uri)
    experiment = client.create_experiment(
        EXPERIMENT, artifact_location=str(artifact_root or folder / "mlartifacts"))
    parent = client.create_run(experiment, run_name="fc_mnist_pepita",
                               tags={tracking.ROLE_TAG: "cell", "pepita.cell": "fc_mnist_pepita"})
    client.log_param(parent.info.run_id, "epochs", "2")
    client.set_terminated(parent.info.run_id)
    for seed in range(seeds):
        child = client.create_run(experiment, run_name=f"fc_mnist_pepita/seed{seed}", tags={
            tracking.ROLE_TAG: "seed", "pepita.seed": str(seed),
            "mlflow.parentRunId": parent.info.run_id})
        run_id = child.info.run_id
        client.log_param(run_id, "seed", str(seed))
        for step in (1, 2):
            client.log_metric(run_id, "test_accuracy", 0.5 + 0.1 * step + seed / 100, step=step)
        note = folder / f"note{seed}.txt"
        note.write_text(f"seed {seed}\n")
        client.log_artifact(run_id, str(note))
        client.set_terminated(run_id)
    return uri


def _snapshot(uri):
    """What a user sees of a store: `{run name: (status, tags, params, metric values, merged)}`."""
    client = tracking.client(uri)
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is None:
        return {}
    seen = {}
    for run in client.search_runs([found.experiment_id], max_results=1000):
        values = tuple(sorted((m.key, m.step, m.value) for key in run.data.metrics
                              for m in client.get_metric_history(run.info.run_id, key)))
        tags = {k: v for k, v in run.data.tags.items()
                if k not in ("mlflow.parentRunId", store_merge.MERGED_FROM_TAG)}
        parent = run.data.tags.get("mlflow.parentRunId")
        seen.setdefault(run.info.run_name, []).append(
            (run.info.status, tuple(sorted(tags.items())), tuple(sorted(run.data.params.items())),
             values, parent is not None, store_merge.MERGED_FROM_TAG in run.data.tags))
    return seen


def _files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in pathlib.Path(folder).rglob("*") if p.is_file())


# ---------------------------------------------------------------------------
# Stores never choose which code runs or which folder is read.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["absolute", "relative"])
def test_migrate_store_never_runs_a_config_named_by_a_store(tmp_path, how):
    marker = tmp_path / "code_ran"
    evil = tmp_path / "planted" / "evil.py"
    evil.parent.mkdir()
    evil.write_text(f"open({str(marker)!r}, 'w').write('pwned')\n"
                    "def get_config():\n    raise SystemExit\n")
    uri = _source_store(tmp_path / "store")
    client = tracking.client(uri)
    tag = str(evil.with_suffix("")) if how == "absolute" else os.path.relpath(
        evil.with_suffix(""), pathlib.Path(migrate.experiment_config.config_files.SHIPPED_CONFIG_DIR))
    for run in client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id]):
        client.set_tag(run.info.run_id, "pepita.cell", tag + (".py" if how == "absolute" else ""))
    migrate.migrate_store(uri)
    assert not marker.exists()


def test_config_names_from_a_store_are_names_only():
    assert migrate.experiment_config.config_by_name("fc_mnist_pepita").name == "fc_mnist_pepita"
    for name in ("../configs/fc_mnist_pepita", "/etc/passwd", "fc_mnist_pepita.py", "", None,
                 "a/b", "..", "~"):
        assert migrate.experiment_config.config_by_name(name) is None
        assert migrate.experiment_config.shipped_config(name or "") is None


def _rename_run(db, old, new):
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA foreign_keys = OFF")
        for table, column in (("runs", "run_uuid"), ("tags", "run_uuid"), ("params", "run_uuid"),
                              ("metrics", "run_uuid"), ("latest_metrics", "run_uuid")):
            connection.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (new, old))
        connection.execute("UPDATE runs SET artifact_uri = ? WHERE run_uuid = ?",
                           (f"{db.parent}/old/a/b/c/{new}/artifacts", new))


def test_a_crafted_run_id_is_refused_before_any_file_is_written(tmp_path):
    uri = _source_store(tmp_path / "store" / "deep")
    db = tmp_path / "store" / "deep" / "tracking.db"
    client = tracking.client(uri)
    run = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])[0]
    crafted = "../../../escaped"
    # The folder the crafted id's old artifacts would be copied from exists.
    planted = db.parent / "old" / "a" / "b" / "c" / crafted / "artifacts"
    planted.mkdir(parents=True)
    (planted / "x.txt").write_text("x")
    _rename_run(db, run.info.run_id, crafted)
    before = _files_under(tmp_path)
    with pytest.raises(untrusted.UntrustedInputError, match="not an MLflow run id"):
        migrate.migrate_store(uri)
    with pytest.raises(untrusted.UntrustedInputError, match="not an MLflow run id"):
        store_merge.merge_store(db, f"sqlite:///{tmp_path / 'target' / 'tracking.db'}",
                                say=lambda _: None)
    after = [f for f in _files_under(tmp_path) if not f.startswith("target/")
             and not f.endswith(".lock")]
    assert after == [f for f in before if not f.endswith(".lock")]
    # Where `<artifact location>/<crafted id>/artifacts` would have pointed.
    assert not (tmp_path / "store" / "escaped").exists()


def test_merge_store_refuses_to_read_a_folder_outside_the_source_store(tmp_path):
    secrets = tmp_path / "home" / ".ssh"
    secrets.mkdir(parents=True)
    (secrets / "id_rsa").write_text("PRIVATE KEY")
    source = _source_store(tmp_path / "gpu")
    db = tmp_path / "gpu" / "tracking.db"
    client = tracking.client(source)
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    with sqlite3.connect(db) as connection:  # what a crafted store says
        connection.execute("UPDATE runs SET artifact_uri = ? WHERE run_uuid = ?",
                           (str(secrets), runs[0].info.run_id))
    target = tmp_path / "here" / "tracking.db"
    with pytest.raises(untrusted.UntrustedInputError, match="refusing to read it"):
        store_merge.merge_store(db, f"sqlite:///{target}", say=lambda _: None)
    # Nothing copied: no run created, no file holding the key anywhere under the target.
    assert _snapshot(f"sqlite:///{target}") == {}
    assert not any("PRIVATE KEY" in p.read_text(errors="ignore")
                   for p in (tmp_path / "here").rglob("*") if p.is_file() and p.suffix != ".db")


def test_merge_store_refuses_links_inside_the_source_artifacts(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("PRIVATE")
    source = _source_store(tmp_path / "gpu")
    client = tracking.client(source)
    run = next(r for r in client.search_runs(
        [client.get_experiment_by_name(EXPERIMENT).experiment_id])
        if r.data.tags.get(tracking.ROLE_TAG) == "seed")
    folder = tracking.local_artifact_folder(client, run)
    (folder / "key").symlink_to(secret)
    target = tmp_path / "here" / "tracking.db"
    with pytest.raises(untrusted.UntrustedInputError, match="symbolic link"):
        store_merge.merge_store(tmp_path / "gpu" / "tracking.db", f"sqlite:///{target}",
                                say=lambda _: None)
    assert _snapshot(f"sqlite:///{target}") == {}


def _archive(path, add):
    with tarfile.open(path, "w:gz") as tar:
        add(tar)
    return path


def _file(tar, name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _special(kind, name, target=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize("name, build, message", [
    ("escape", lambda tar: _file(tar, "mlartifacts/../../outside.txt"), "outside the folder"),
    ("absolute", lambda tar: _file(tar, "/tmp/absolute.txt"), "outside the folder"),
    ("symlink", lambda tar: tar.addfile(_special(tarfile.SYMTYPE, "mlartifacts/l", "/etc/passwd")),
     "is a link"),
    ("hardlink", lambda tar: tar.addfile(_special(tarfile.LNKTYPE, "mlartifacts/h", "/etc/passwd")),
     "is a link"),
    ("device", lambda tar: tar.addfile(_special(tarfile.CHRTYPE, "mlartifacts/dev")), "device"),
    ("fifo", lambda tar: tar.addfile(_special(tarfile.FIFOTYPE, "mlartifacts/fifo")), "device"),
    ("bomb", lambda tar: _file(tar, "mlartifacts/zeros", bytes(2_000_000)), "expands to more"),
    ("junk", None, "cannot be read as a tar archive"),
])
def test_merge_store_refuses_a_hostile_archive_in_one_line(tmp_path, capsys, name, build, message):
    source = _source_store(tmp_path / "gpu")
    archive = tmp_path / f"{name}.tgz"
    if build is None:
        archive.write_bytes(b"\x00\xffnot a tar" * 100)
    else:
        _archive(archive, build)
    target = tmp_path / "here" / "tracking.db"
    code = cli.main(["merge-store", str(tmp_path / "gpu" / "tracking.db"), "--artifacts",
                     str(archive), "--tracking-uri", f"sqlite:///{target}",
                     "--max-artifact-bytes", "1000000"])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1 and message in error, error
    assert error.startswith("pepita merge-store: error: ")
    assert _snapshot(f"sqlite:///{target}") == {}
    assert not (tmp_path / "outside.txt").exists() and not pathlib.Path("/tmp/absolute.txt").exists()
    assert source  # the source is untouched: it is read only


# ---------------------------------------------------------------------------
# Merges are atomic and idempotent.
# ---------------------------------------------------------------------------
class _Interrupted(BaseException):
    """Stands for a kill: nothing in the merge may catch it."""


class _DyingClient:
    """An MlflowClient that is 'killed' at its `limit`-th write."""

    _WRITES = ("create_run", "log_batch", "log_inputs", "log_artifacts", "set_terminated",
               "set_tag", "delete_tag")

    def __init__(self, client, limit):
        self._client, self._left = client, limit

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if name not in self._WRITES:
            return attribute

        def write(*args, **kwargs):
            self._left -= 1
            if self._left < 0:
                raise _Interrupted(name)
            return attribute(*args, **kwargs)
        return write


def _merge(source_db, target_uri, monkeypatch=None, die_after=None):
    if die_after is None:
        return store_merge.merge_store(source_db, target_uri, say=lambda _: None)
    real = tracking.client

    def dying(uri=None, **kwargs):
        client = real(uri, **kwargs)
        return _DyingClient(client, die_after) if uri == target_uri else client
    with monkeypatch.context() as patch:
        patch.setattr(store_merge.tracking, "client", dying)
        try:
            store_merge.merge_store(source_db, target_uri, say=lambda _: None)
        except _Interrupted:
            return "killed"
    return "finished"


@pytest.mark.parametrize("every", [
    4, pytest.param(1, marks=pytest.mark.slow, id="every-write")])
def test_a_merge_killed_at_any_write_is_repaired_by_running_it_again(tmp_path, monkeypatch, every):
    _source_store(tmp_path / "gpu", seeds=2)
    source_db = tmp_path / "gpu" / "tracking.db"
    clean = f"sqlite:///{tmp_path / 'clean' / 'tracking.db'}"
    _merge(source_db, clean)
    expected = _snapshot(clean)
    assert sorted(expected) == ["fc_mnist_pepita", "fc_mnist_pepita/seed0",
                                "fc_mnist_pepita/seed1"]
    # Every `every`-th write of the merge is a kill point, until one finishes unkilled.
    die_after, outcome = -every, "killed"
    while outcome == "killed":
        die_after += every
        target = f"sqlite:///{tmp_path / f'killed{die_after}' / 'tracking.db'}"
        outcome = _merge(source_db, target, monkeypatch, die_after)
        counts = _merge(source_db, target)
        assert _snapshot(target) == expected, die_after
        assert counts["copied"] + counts["already_merged"] == 3
        assert _merge(source_db, target) == {"copied": 0, "already_merged": 3}
        artifacts = sorted(p.name for p in (tmp_path / f"killed{die_after}").rglob("note*.txt"))
        assert artifacts == ["note0.txt", "note1.txt"], die_after  # no orphan copies
    assert die_after >= 3 * 5  # the kill points spanned at least five writes per run


def test_merging_into_itself_or_back_adds_nothing(tmp_path):
    a = _source_store(tmp_path / "a")
    a_db = tmp_path / "a" / "tracking.db"
    b = f"sqlite:///{tmp_path / 'b' / 'tracking.db'}"
    assert store_merge.merge_store(a_db, a, say=lambda _: None)["copied"] == 0
    assert store_merge.merge_store(a_db, b, say=lambda _: None)["copied"] == 3
    back = store_merge.merge_store(tmp_path / "b" / "tracking.db", a, say=lambda _: None)
    assert back == {"copied": 0, "already_merged": 3}
    assert len(sum(_snapshot(a).values(), [])) == 3
    assert len(sum(_snapshot(b).values(), [])) == 3


def test_merged_artifacts_land_beside_the_committed_store_from_any_folder(tmp_path, monkeypatch):
    _source_store(tmp_path / "gpu")
    root = tmp_path / "clone"
    target = root / tracking.COMMITTED_STORE
    target.parent.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    store_merge.merge_store(tmp_path / "gpu" / "tracking.db", f"sqlite:///{target}",
                            say=lambda _: None)
    assert list(elsewhere.rglob("*")) == []
    notes = sorted(p.name for p in (root / tracking.COMMITTED_ARTIFACTS).rglob("note*.txt"))
    assert notes == ["note0.txt", "note1.txt"]


def test_an_unreachable_tracking_server_is_named_within_seconds(monkeypatch):
    import socket
    import time

    for name in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                 "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    start = time.monotonic()
    with pytest.raises(ValueError, match=f"cannot reach the MLflow tracking server {uri}"):
        tracking.client(uri)
    assert time.monotonic() - start < 30


def _merge_in_a_process(source, target):
    from pepita_keras.store import merge as merge_module

    merge_module.merge_store(source, target, say=lambda _: None)


@pytest.mark.slow  # two fresh processes
def test_two_concurrent_merges_of_one_source_copy_each_run_once(tmp_path):
    import multiprocessing

    source = _source_store(tmp_path / "gpu", seeds=3)
    target = f"sqlite:///{tmp_path / 'here' / 'tracking.db'}"
    tracking.client(target).search_experiments()  # both merges find the store built
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_merge_in_a_process,
                               args=(tmp_path / "gpu" / "tracking.db", target)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0
    names = sorted(_snapshot(target))
    assert names == sorted(_snapshot(source))  # every run once: 1 parent + 3 seeds
    assert len(names) == 4


def test_an_experiment_named_dot_dot_keeps_its_artifacts_inside(tmp_path):
    for name in ("..", ".", "../../etc", "a/b", "x" * 300):
        folder = tracking.artifact_folder_name(name)
        assert "/" not in folder and folder.strip(".") and len(folder) <= 100
    location = tracking.default_artifact_location(f"sqlite:///{tmp_path / 's.db'}", "..")
    assert untrusted.is_inside(location, tmp_path / tracking.ARTIFACTS_FOLDER)


def test_parents_of_one_name_with_other_settings_never_join(tmp_path):
    # A shipped config that changed between two runs keeps their name: merging must not put
    # the new settings' seeds under the old settings' parent.
    uri = f"sqlite:///{tmp_path / 'gpu' / 'tracking.db'}"
    (tmp_path / "gpu").mkdir()
    client = tracking.client(uri)
    experiment = client.create_experiment(EXPERIMENT,
                                          artifact_location=str(tmp_path / "gpu" / "art"))
    for learning_rate in ("0.01", "0.004"):
        parent = client.create_run(experiment, run_name="vit_mnist_pepita", tags={
            tracking.ROLE_TAG: "cell", "pepita.cell": "vit_mnist_pepita"})
        client.log_param(parent.info.run_id, "learning_rate", learning_rate)
        client.set_terminated(parent.info.run_id)
    target = f"sqlite:///{tmp_path / 'here' / 'tracking.db'}"
    store_merge.merge_store(tmp_path / "gpu" / "tracking.db", target, say=lambda _: None)
    here = tracking.read_client(target)
    runs = here.search_runs([here.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert sorted(run.data.params["learning_rate"] for run in runs) == ["0.004", "0.01"]
