"""Reading never writes; files we write never follow links; our own files are data (issue 36).

Each test recreates an attack or fault of the audit and asserts that nothing
outside the target is read, written or deleted.
"""

import hashlib
import os
import pathlib
import shutil
import sqlite3
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
    """A store whose schema revision the installed MLflow would upgrade on open.

    The committed store when the installed MLflow is newer than 3.17 (3.18 is what pip
    resolves today); else a fresh store stamped with an older revision name.
    """
    path = tmp_path / "old" / "tracking.db"
    path.parent.mkdir()
    if tracking.schema_revision(COMMITTED) != tracking.installed_schema_revision():
        shutil.copy(COMMITTED, path)
    else:
        shutil.copy(mlflow_template, path)
        with sqlite3.connect(path) as connection:
            connection.execute("UPDATE alembic_version SET version_num = 'an_older_revision'")
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
