"""MkDocs hooks: the results page and the changelog come from the repository, never copied by hand.

`reproductions/results/README.md` (written by `pepita results` from the committed
MLflow store) and its curve figures become `docs/results/`, and `CHANGELOG.md`
becomes `docs/changelog.md`, each time the site is built.
"""

import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parents[1]


def on_pre_build(config, **kwargs):
    docs = pathlib.Path(config["docs_dir"])
    results = docs / "results"
    shutil.rmtree(results, ignore_errors=True)
    (results / "curves").mkdir(parents=True)
    source = ROOT / "reproductions" / "results"
    (results / "index.md").write_text((source / "README.md").read_text())
    for figure in sorted((source / "curves").glob("*.png")):
        shutil.copyfile(figure, results / "curves" / figure.name)
    shutil.copyfile(ROOT / "CHANGELOG.md", docs / "changelog.md")
