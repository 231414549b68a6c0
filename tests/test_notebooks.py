"""The notebooks execute end to end on smoke data (nbclient).

Each runs in a fresh kernel with a small data budget; notebook 02 gets an
empty MLflow store, so it runs its own 2-epoch smoke reproduction and reads
it back. Real MNIST is used when PEPITA_DATA_DIR is set, synthetic data
otherwise.
"""

import os
import pathlib
import re

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
    if os.environ.get("PEPITA_DATA_DIR"):
        assert "test accuracy after 1 epochs:" in text
        accuracy = float(text.split("test accuracy after 1 epochs:")[1].split("%")[0])
        assert 0.0 <= accuracy <= 100.0
    else:
        # The synthetic stand-in is trivially separable: no accuracy is claimed.
        assert "test accuracy" not in text and "%" not in text.split("synthetic data:")[1]
        assert "no accuracy is reported" in text
    assert outputs(notebook, "image/png"), "the learning-curve plot is missing"


@pytest.mark.slow  # fresh kernel + two rules trained: ~30 s idle
def test_pepita_vs_forward_forward_notebook_trains_both(tmp_path, small_budget):
    notebook = execute("03_pepita_vs_forward_forward.ipynb", tmp_path)
    text = "".join(outputs(notebook, "text"))
    for rule in ("PEPITA", "FF"):
        assert f"{rule}: test accuracy per epoch" in text
    assert "FF layer 2: goodness above θ" in text and "PEPITA: median relative change" in text
    assert len(outputs(notebook, "image/png")) == 2


@pytest.mark.slow  # fresh kernel + six rules trained: ~1 min idle
def test_any_model_notebook_converts_trains_saves_and_refuses(tmp_path, small_budget):
    notebook = execute("04_any_model_any_rule.ipynb", tmp_path)
    text = "".join(outputs(notebook, "text"))
    for rule, cls in (("bp", "GraphBackprop"), ("fa", "GraphFeedbackAlignment"),
                      ("usf", "UniformSignFeedback"), ("kp", "KolenPollack"),
                      ("dfa", "GraphDirectFeedbackAlignment"), ("pepita", "GraphPEPITA")):
        assert f"{rule} ({cls})" in text
    assert "same predictions after loading: True" in text
    assert "refused: Layer 'my_lstm' (LSTM)" in text
    assert outputs(notebook, "image/png")


def test_committed_notebooks_show_their_outputs_on_real_mnist():
    # They render on GitHub without running: executed on real MNIST, outputs kept.
    for name in ("01_quickstart.ipynb", "02_mlflow_results.ipynb",
                 "03_pepita_vs_forward_forward.ipynb", "04_any_model_any_rule.ipynb"):
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert all(cell.get("outputs") for cell in code), name
        assert outputs(notebook, "image/png"), name
    text = "".join(outputs(nbformat.read(NOTEBOOKS / "01_quickstart.ipynb", as_version=4),
                           "text"))
    assert "MNIST from" in text and "synthetic" not in text
    accuracy = float(text.split("test accuracy after 3 epochs:")[1].split("%")[0])
    assert 80.0 < accuracy < 100.0  # PEPITA on 10k real MNIST images, 3 epochs
    text = "".join(outputs(nbformat.read(NOTEBOOKS / "03_pepita_vs_forward_forward.ipynb",
                                         as_version=4), "text"))
    assert "MNIST from" in text and "slowness s =" in text
    text = "".join(outputs(nbformat.read(NOTEBOOKS / "04_any_model_any_rule.ipynb",
                                         as_version=4), "text"))
    assert "MNIST (10000" in text and "synthetic" not in text
    for line in text.splitlines():  # every rule trains the user's ResNet-style net
        if "test accuracy after 3 epochs:" in line:
            assert float(line.split(":")[-1].strip(" %")) > 80.0, line
    assert text.count("test accuracy after 3 epochs:") == 6


def test_committed_notebooks_have_no_stderr_output():
    # What a reader sees is the notebook's own output, not start-up noise.
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            for output in cell.get("outputs", []):
                assert output.get("name") != "stderr", (path.name, output.get("text", "")[:200])


@pytest.mark.slow  # + a new MLflow store and a smoke reproduction: ~40 s idle, ~100 s busy
def test_mlflow_results_notebook_builds_table_and_curves(tmp_path, small_budget):
    notebook = execute("02_mlflow_results.ipynb", tmp_path)
    assert "(smoke demo)" in "".join(outputs(notebook, "text"))
    tables = outputs(notebook, "text/html")
    assert any("fc_mnist_pepita" in html and "98.01" in html for html in tables)
    assert outputs(notebook, "image/png"), "the curves plot is missing"


def test_results_notebook_quotes_the_committed_table():
    # Re-executed whenever the committed results change: its saved table shows results.csv.
    import csv

    with open(NOTEBOOKS.parent / "reproductions" / "results" / "results.csv", newline="") as f:
        rows = [row for row in csv.DictReader(f) if int(row["n_seeds"] or 0)]
    notebook = nbformat.read(NOTEBOOKS / "02_mlflow_results.ipynb", as_version=4)
    html = "".join(outputs(notebook, "text/html"))
    for row in rows:
        shown = re.search(rf">{re.escape(row['cell'])}</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>"
                          rf"\s*<td>(\d+)</td>", html)
        assert shown, f"{row['cell']} is not in notebook 02's saved table"
        assert shown.groups() == (row["ours_mean"], row["ours_std"], row["n_seeds"]), row["cell"]


@pytest.mark.slow  # two fresh kernels
def test_quickstart_notebook_gives_the_same_numbers_on_a_rerun(tmp_path, small_budget):
    def metrics():
        text = "".join(outputs(execute("01_quickstart.ipynb", tmp_path), "text"))
        # Keras's per-epoch lines without their timings: loss and accuracy values only.
        return re.findall(r"(?:loss|accuracy): [\d.]+", text)

    first = metrics()
    assert first and first == metrics()
