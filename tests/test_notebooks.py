"""The notebooks execute end to end on smoke data (nbclient).

Each runs in a fresh kernel with a small data budget; notebook 02 gets an
empty MLflow store, so it runs its own 2-epoch smoke reproduction and reads
it back. Real MNIST is used when PEPITA_DATA_DIR is set, synthetic data
otherwise.
"""

import pathlib

import nbclient
import nbformat
import pytest

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"


def execute(name, tmp_path):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    return notebook


def outputs(notebook, kind):
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if kind == "text" and output.get("name") == "stdout":
                found.append(output["text"])
            elif kind in output.get("data", {}):
                found.append(output["data"][kind])
    return found


@pytest.fixture
def small_budget(tmp_path, monkeypatch):
    # A global MPLBACKEND=Agg (CI sets it) would override the notebook's inline
    # backend, and the plots would never reach the cell outputs.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.setenv("PEPITA_NB_EXAMPLES", "1000")
    monkeypatch.setenv("PEPITA_NB_EPOCHS", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")


@pytest.mark.slow  # fresh kernel + TF import: ~20 s idle, ~50 s on a busy box
def test_quickstart_notebook_trains_and_plots(tmp_path, small_budget):
    notebook = execute("01_quickstart.ipynb", tmp_path)
    text = "".join(outputs(notebook, "text"))
    assert "test accuracy after 1 epochs:" in text
    accuracy = float(text.split("test accuracy after 1 epochs:")[1].split("%")[0])
    assert 0.0 <= accuracy <= 100.0
    assert outputs(notebook, "image/png"), "the learning-curve plot is missing"


@pytest.mark.slow  # + a new MLflow store and a smoke reproduction: ~40 s idle, ~100 s busy
def test_mlflow_results_notebook_builds_table_and_curves(tmp_path, small_budget):
    notebook = execute("02_mlflow_results.ipynb", tmp_path)
    assert "(smoke demo)" in "".join(outputs(notebook, "text"))
    tables = outputs(notebook, "text/html")
    assert any("fc_mnist_pepita" in html and "98.01" in html for html in tables)
    assert outputs(notebook, "image/png"), "the curves plot is missing"
