"""Reading never writes; files we write never follow links; our own files are data (issue 36).

Each test recreates an attack or fault of the audit and asserts that nothing
outside the target is read, written or deleted.
"""

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import types

import pytest

from pepita_keras import cli
from pepita_keras.store import checkpoints, json_files, recorder, safe_files, tracking
from pepita_keras.store.seed_state import SeedState

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMMITTED = ROOT / tracking.COMMITTED_STORE


def _digest(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def _older_store(tmp_path, mlflow_template):
    """A store whose schema the installed MLflow would upgrade (or refuse) on open.

    The committed store when the installed MLflow is newer than the one that wrote it;
    else an empty store downgraded one revision (alembic, as `mlflow db` would).
    """
    path = tmp_path / "old" / "tracking.db"
    path.parent.mkdir()
    if tracking.schema_revision(COMMITTED) != tracking.installed_schema_revision():
        shutil.copy(COMMITTED, path)
        return path
    # The installed MLflow wrote the committed store: an empty store one revision older.
    import sqlalchemy
    from alembic import command
    from mlflow.store.db.utils import _get_alembic_config

    shutil.copy(mlflow_template, path)
    config = _get_alembic_config(f"sqlite:///{path}")
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "-1")
    engine.dispose()
    assert tracking.schema_revision(path) != tracking.installed_schema_revision()
    return path


# ---------------------------------------------------------------------------
# A store read is a copy read.
# ---------------------------------------------------------------------------
def test_read_client_reads_an_older_store_and_leaves_every_byte(tmp_path, mlflow_template):
    store = _older_store(tmp_path, mlflow_template)
    before = _digest(store)
    client = tracking.read_client(f"sqlite:///{store}")
    client.search_experiments()
    assert _digest(store) == before
    # Nothing beside it either (no lock file, no journal).
    assert sorted(p.name for p in store.parent.iterdir()) == ["tracking.db"]
    # Artifacts resolve against the store the copy stands for.
    assert tracking.original_uri(tracking.client_uri(client)) == f"sqlite:///{store}"


def test_writers_refuse_a_store_mlflow_would_upgrade_and_name_migrate_store(
        tmp_path, mlflow_template):
    store = _older_store(tmp_path, mlflow_template)
    before = _digest(store)
    with pytest.raises(ValueError, match="pepita migrate-store"):
        tracking.client(f"sqlite:///{store}")
    assert _digest(store) == before


def test_results_without_a_store_fails_in_one_line_and_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "none" / "mlflow.db"
    code = cli.main(["results", "--tracking-uri", f"sqlite:///{missing}",
                     "--output", str(tmp_path / "out")])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and str(missing) in error
    assert not (tmp_path / "none").exists() and not (tmp_path / "out").exists()


def test_default_outputs_are_refused_outside_a_clone(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["results", "--tracking-uri", f"sqlite:///{COMMITTED}"]) == 2
    assert "pass --output" in capsys.readouterr().err
    assert cli.main(["figures", "--tracking-uri", f"sqlite:///{COMMITTED}"]) == 2
    assert list(tmp_path.iterdir()) == []


def test_tune_report_outside_a_clone_prints_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["tune-report", "--tracking-uri", f"sqlite:///{COMMITTED}"]) == 0
    assert "pepita_fc_mnist" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_figures_refuse_to_overwrite_without_force(tmp_path):
    from pepita_keras import figures

    (tmp_path / "slowness.png").write_bytes(b"a figure a reviewer approved")
    with pytest.raises(FileExistsError, match="--force"):
        figures.write_figures({}, None, tmp_path)
    assert (tmp_path / "slowness.png").read_bytes() == b"a figure a reviewer approved"


@pytest.mark.slow  # four fresh `pepita` processes on a copy of the committed store
def test_read_only_commands_leave_a_clone_untouched(tmp_path):
    # A clone as git sees it: the committed store, its table, the configs.
    clone = tmp_path / "clone"
    for part in ("reproductions/results/tracking.db", "reproductions/results/results.csv",
                 "reproductions/results/README.md", "reproductions/results/tuning.md"):
        (clone / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / part, clone / part)
    shutil.copytree(ROOT / "reproductions/configs", clone / "reproductions/configs")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q"], cwd=clone, check=True)
    subprocess.run(git + ["add", "-A"], cwd=clone, check=True)
    subprocess.run(git + ["commit", "-qm", "clone"], cwd=clone, check=True)
    out = tmp_path / "out"
    environment = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg")
    environment.pop("MLFLOW_TRACKING_URI")
    store = "sqlite:///reproductions/results/tracking.db"
    for command in (["list"], ["show", "fc_mnist_pepita"],
                    ["reproduce", "fc_mnist_pepita", "--plan", "--tracking-uri", store],
                    ["results", "--no-plots", "--tracking-uri", store, "--output", str(out)],
                    ["tune-report", "--tracking-uri", store, "--output", "-"]):
        result = subprocess.run([sys.executable, "-m", "pepita_keras.cli", *command], cwd=clone,
                                env=environment, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (command, result.stderr)
    status = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=clone,
                            capture_output=True, text=True, check=True).stdout
    assert status == ""


# ---------------------------------------------------------------------------
# Files we write never follow links.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("writer", ["json", "checkpoint", "figure"])
def test_atomic_writes_replace_a_planted_link_never_its_target(tmp_path, writer):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    folder = tmp_path / "run"
    folder.mkdir()
    name = {"json": "state.json", "checkpoint": "checkpoint-e0001.npz",
            "figure": "slowness.png"}[writer]
    (folder / name).symlink_to(victim)
    # The old fixed temporary names too: a link there must not be written through.
    (folder / f"{name}.tmp").symlink_to(victim)
    if writer == "json":
        json_files.write_json(folder / name, {"epoch": 1})
    elif writer == "checkpoint":
        import numpy as np

        checkpoints.save_checkpoint({"model/0000": np.zeros(3)}, folder, 1)
    else:
        from matplotlib.figure import Figure

        safe_files.save_figure(Figure(), folder / name)
    assert victim.read_text() == "precious"
    assert not (folder / name).is_symlink() and (folder / name).stat().st_size > 0


def test_locks_refuse_a_planted_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / ".lock").symlink_to(victim)
    with pytest.raises(safe_files.LinkedPathError, match="symbolic link"):
        with checkpoints.RunLock(tmp_path / ".lock", "seed 0"):
            pass
    (tmp_path / "store.db.lock").symlink_to(victim)
    with pytest.raises(safe_files.LinkedPathError):
        with tracking.store_lock(f"sqlite:///{tmp_path / 'store.db'}"):
            pass
    assert victim.read_text() == "precious"


# ---------------------------------------------------------------------------
# Our own files are data.
# ---------------------------------------------------------------------------
def _seed_folder(tmp_path, name="seed0", checkpoint="checkpoint-e0002.npz", epoch=2):
    folder = tmp_path / "cell" / name
    folder.mkdir(parents=True)
    (folder / "checkpoint-e0002.npz").write_bytes(b"weights")
    state = SeedState(run_id="0" * 32, seed=0, epoch=epoch, checkpoint=checkpoint)
    state.save(folder)
    return folder, state


@pytest.mark.parametrize("checkpoint", ["../seed1/checkpoint-e0002.npz", "/etc/passwd",
                                        "checkpoint-e0001.npz", "link.npz"])
def test_a_state_naming_a_foreign_checkpoint_is_refused(tmp_path, checkpoint):
    other = tmp_path / "cell" / "seed1"
    other.mkdir(parents=True)
    (other / "checkpoint-e0002.npz").write_bytes(b"another seed's weights")
    folder, state = _seed_folder(tmp_path, checkpoint=checkpoint)
    (folder / "link.npz").symlink_to(other / "checkpoint-e0002.npz")
    with pytest.raises(ValueError, match="own regular file checkpoint-e0002.npz"):
        recorder.check_own_files(SeedState.load(folder), folder)
    assert (other / "checkpoint-e0002.npz").read_bytes() == b"another seed's weights"


def test_a_state_linked_from_elsewhere_is_refused(tmp_path):
    folder, state = _seed_folder(tmp_path)
    (folder / "state.json").rename(tmp_path / "elsewhere.json")
    (folder / "state.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(safe_files.LinkedPathError):
        recorder.check_own_files(SeedState.load(folder), folder)


def _run(seed, platform):
    return types.SimpleNamespace(
        info=types.SimpleNamespace(run_id="0" * 32),
        data=types.SimpleNamespace(tags={"pepita.seed": str(seed), "pepita.platform": platform}))


def test_a_seed_folder_copied_to_another_seed_is_refused(tmp_path):
    from pepita_keras.store import provenance

    folder, state = _seed_folder(tmp_path, name="seed3")
    with pytest.raises(ValueError, match="holds the state of seed 0"):
        recorder.check_same_seed_and_platform(_run(0, provenance.platform_name()), state, folder)


def test_resuming_on_another_platform_is_refused(tmp_path):
    from pepita_keras.store import provenance

    folder, state = _seed_folder(tmp_path)
    other = "jax-gpu" if provenance.platform_name() != "jax-gpu" else "tensorflow-cpu"
    with pytest.raises(ValueError, match=f"trained on {other}"):
        recorder.check_same_seed_and_platform(_run(0, other), state, folder)
    # The same platform resumes.
    recorder.check_same_seed_and_platform(_run(0, provenance.platform_name()), state, folder)


# ---------------------------------------------------------------------------
# Store text is data in pages and queries.
# ---------------------------------------------------------------------------
HOSTILE = "x<script>alert(1)</script>|cell\n## heading `code` [link](http://e)"


def test_display_text_is_inert_one_line_markup_free():
    from pepita_keras.store import untrusted

    text = untrusted.display_text(HOSTILE)
    assert "\n" not in text and "<" not in text and ">" not in text and "`" not in text
    assert "|" not in text.replace("\\|", "")  # only escaped pipes: a table row stays whole
    assert "](" not in text.replace("\\](", "")


def test_tune_report_escapes_every_store_field():
    from pepita_keras.tuning import report

    search = {"name": HOSTILE, "search_id": "s", "params": {"rule": HOSTILE, "space.x": HOSTILE},
              "tags": {"git.commit": HOSTILE, "hardware": HOSTILE}, "best_objective": 0.5,
              "objective": "val_accuracy", "trials": [
                  {"trial_id": HOSTILE, "objective": 0.5, "final": 0.4, "best": True,
                   "params": {HOSTILE: HOSTILE}}],
              "counts": {"COMPLETED": 1}, "wall_s": 1.0, "command": HOSTILE, "status": HOSTILE,
              "run_id": HOSTILE, "started": "2026-12-08 00:00 UTC"}
    text = report.format_report([search])
    assert "<script>" not in text and "\n## heading" not in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    header_cells = rows[0].count(" | ")
    # Each table keeps its column count: no row was split or widened by store text.
    assert all(row.replace("\\|", "").count(" | ") in (header_cells, 4) for row in rows)


@pytest.mark.parametrize("tags, metrics, message", [
    ({"pepita.seed": "abc"}, {"final_test_accuracy": 0.9}, "pepita.seed='abc' is not an integer"),
    ({"pepita.seed": "0", "pepita.diverged_epoch": "abc"}, {}, "diverged_epoch='abc'"),
    ({}, {}, "no pepita.seed tag"),
])
def test_crafted_seed_tags_name_the_run_instead_of_a_traceback(tags, metrics, message):
    from pepita_keras.results import records
    from pepita_keras.store import untrusted

    run = types.SimpleNamespace(info=types.SimpleNamespace(run_id="a" * 32),
                                data=types.SimpleNamespace(tags=tags, metrics=metrics))
    with pytest.raises(untrusted.UntrustedInputError, match=message):
        records._seed_outcome(run)


def test_a_missing_or_nan_final_accuracy_leaves_the_seed_unfinished():
    from pepita_keras.results import records

    for metrics in ({}, {"final_test_accuracy": float("nan")}):
        run = types.SimpleNamespace(info=types.SimpleNamespace(run_id="a" * 32),
                                    data=types.SimpleNamespace(tags={"pepita.seed": "2"},
                                                               metrics=metrics))
        assert records._seed_outcome(run) == (2, None, None)


def test_the_committed_store_is_written_by_the_pinned_mlflow():
    # The pin in pyproject.toml and the committed store move together (docs/tracking.md):
    # the installed MLflow writes exactly the committed store's schema.
    assert tracking.schema_revision(COMMITTED) == tracking.installed_schema_revision()


# ---------------------------------------------------------------------------
# Bad values fail in one line (audit classes 4 and 5).
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["show", "fc_mnist_pepita", "--set", "batch_size=True"], "batch_size must be a positive"),
    (["show", "fc_mnist_pepita", "--set", "lr_decay_epochs=(2,1)"], "strictly increasing"),
    (["reproduce", "fc_mnist_pepita", "--seeds", "0-4294967295", "--plan"],
     "more than 1000 seeds"),
    (["results", "--tracking-uri", "sqlite:////tmp", "--output", "/nonexistent/o"],
     "is a folder, not an MLflow SQLite file"),
    (["results", "--tracking-uri", "postgresql://u:p@127.0.0.1:1/x", "--output", "/nonexistent/o"],
     "needs the Python package"),
])
def test_bad_values_fail_in_one_line(argv, message, capsys):
    code = cli.main(argv)
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and message in error[0], error


def test_empty_experiment_and_a_file_as_run_root_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["results", "--experiment", "", "--output", str(tmp_path / "o")])
    assert "must not be empty" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert cli.main(["reproduce", "fc_mnist_pepita", "--smoke", "--synthetic", "--run-root",
                     str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_the_readme_results_block_is_generated_from_results_csv():
    # Numbers and status sentences in README come from the store, never by hand.
    import csv

    from pepita_keras import results

    with open(ROOT / "reproductions" / "results" / "results.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    readme = (ROOT / "README.md").read_text()
    assert results.readme_block(rows) in readme
    for row in rows:
        if int(row["n_seeds"] or 0):
            assert f"`{row['cell']}`" in readme


def test_a_store_killed_while_its_schema_is_built_is_absent_not_half_built(tmp_path, monkeypatch):
    import mlflow.store.db.utils as mlflow_db

    real = mlflow_db._initialize_tables

    def killed_halfway(engine):
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32))")
            connection.exec_driver_sql("INSERT INTO alembic_version VALUES ('halfway')")
        raise KeyboardInterrupt  # as a kill between two migrations

    monkeypatch.setattr(mlflow_db, "_initialize_tables", killed_halfway)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    with pytest.raises(KeyboardInterrupt):
        tracking.client(uri)
    assert list(tmp_path.glob("*.db")) == [] and list(tmp_path.glob(".store.db.*")) == []
    monkeypatch.setattr(mlflow_db, "_initialize_tables", real)
    tracking.client(uri).search_experiments()  # the next command builds it whole
    assert tracking.schema_revision(tmp_path / "store.db") == tracking.installed_schema_revision()


def test_the_data_page_quotes_the_checksums_the_package_checks():
    import re

    from pepita_keras import dataset_files

    page = (ROOT / "docs" / "data.md").read_text()
    quoted = set(re.findall(r"`([0-9a-f]{64})`", page))
    known = {digest for files in dataset_files._KNOWN_SHA256.values() for digests in files.values()
             for digest in ([digests] if isinstance(digests, str) else digests)}
    assert quoted and quoted <= known
    assert "pepita data --fetch mnist" in page and "shared/data" not in page


def test_an_archive_with_a_huge_extended_header_is_refused_before_it_is_read(tmp_path):
    import io
    import tarfile

    from pepita_keras.store import untrusted

    archive = tmp_path / "bomb.tgz"
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("mlartifacts/a.txt")
        info.pax_headers = {"comment": "x" * (3 * untrusted.MAX_HEADER_BYTES)}
        info.size = 1
        tar.addfile(info, io.BytesIO(b"1"))
    assert archive.stat().st_size < 100_000  # small on disk, large once read
    with pytest.raises(untrusted.UntrustedInputError, match="extended header declares"):
        untrusted.extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # an MLflow UI server: ~15 s, ~500 MB
def test_pepita_ui_serves_the_committed_store_without_writing_it(tmp_path):
    import json
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = tmp_path / "clone" / "reproductions" / "results" / "tracking.db"
    store.parent.mkdir(parents=True)
    shutil.copy(COMMITTED, store)
    before = _digest(store)
    server = subprocess.Popen([sys.executable, "-m", "pepita_keras.cli", "ui", "--port", str(port)],
                              cwd=tmp_path / "clone", stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        names, deadline = None, time.monotonic() + 120
        while names is None and time.monotonic() < deadline:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search",
                    data=b'{"max_results": 10}', headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=5) as response:
                    names = {e["name"] for e in json.load(response)["experiments"]}
            except OSError:
                time.sleep(1)
        assert names is not None and tracking.REPRODUCTIONS_EXPERIMENT in names
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    assert _digest(store) == before
    assert sorted(p.name for p in store.parent.iterdir()) == ["tracking.db"]
