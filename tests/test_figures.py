"""`pepita figures` draws each figure from what a store holds."""

import pytest

from pepita_keras import cli, experiment_config, figures, reproduce, results
from pepita_keras.store import tracking


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("figures")
    uri = f"sqlite:///{folder / 'store.db'}"
    config = experiment_config.load_config("fc_mnist_pepita").smoke_version().replace(epochs=3)
    reproduce.reproduce(config, seeds=[0, 1], synthetic=True, run_root=folder / "runs",
                        tracking_uri=uri, verbose=0)
    return folder, uri, config


def test_every_figure_is_drawn_at_page_width(store):
    from matplotlib.image import imread

    folder, uri, config = store
    client = tracking.client(uri)
    # The smoke run stands for the cell here (a real store counts only shipped settings).
    cells = results.collect(client, configs={config.name: config.replace(paper=(98.01, 0.09))},
                            include_smoke=True)
    paths = figures.write_figures(cells, client, folder / "out")
    assert sorted(p.name for p in paths) == sorted([
        "accuracy_fc_mnist.png", "alignment_angle.png", "slowness.png", "results_vs_paper.png"])
    for path in paths:
        height, width = imread(path).shape[:2]
        assert 600 <= width <= 1400 and height <= 1400, (path.name, width, height)


def test_an_empty_store_draws_nothing_and_says_so(tmp_path, capsys):
    from pepita_keras.store import tracking

    tracking.client(f"sqlite:///{tmp_path / 'empty.db'}").search_experiments()
    code = cli.main(["figures", "--tracking-uri", f"sqlite:///{tmp_path / 'empty.db'}",
                     "--output", str(tmp_path / "out")])
    assert code == 1 and "no figures written" in capsys.readouterr().err
    # A store that does not exist is not created: one line, exit 2.
    code = cli.main(["figures", "--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}",
                     "--output", str(tmp_path / "out")])
    assert code == 2 and "no MLflow store at" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


def test_rules_by_architecture_shows_each_rule_beside_bp(tmp_path):
    from matplotlib.image import imread

    from pepita_keras import experiment_config
    from pepita_keras.results import CellResult

    cells = {}
    for architecture in ("resnet", "vit"):
        for rule, finals in (("bp", {0: 96.0, 1: 96.4}), ("fa", {0: 90.0, 1: 91.0}),
                             ("pepita", {0: 88.0})):
            name = f"{architecture}_mnist_{rule}"
            cells[name] = CellResult(experiment_config.load_config(name), finals=dict(finals))
    cells["fc_mnist_bp"] = CellResult(experiment_config.load_config("fc_mnist_bp"))  # not run
    path = figures.architecture_figure(cells, tmp_path)
    assert path.name == "rules_by_architecture.png"
    height, width = imread(path).shape[:2]
    assert 600 <= width <= 1400 and height <= 1400
    # Nothing to draw without a graph-architecture cell.
    assert figures.architecture_figure({"fc_mnist_bp": cells["fc_mnist_bp"]}, tmp_path) is None
