"""MkDocs hooks: the results page and the changelog come from the repository, never copied by hand.

`reproductions/results/README.md` (written by `pepita results` from the committed
MLflow store) and its curve figures become `docs/results/`, and `CHANGELOG.md`
becomes `docs/changelog.md`, each time the site is built. MathJax is served from
the site itself when `npm install --no-save mathjax@3` put it in `node_modules/`
(machines without internet render the equations then); else from its CDN.
"""

import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parents[1]


def on_config(config, **kwargs):
    docs = pathlib.Path(config["docs_dir"])
    results = docs / "results"
    shutil.rmtree(results, ignore_errors=True)
    (results / "curves").mkdir(parents=True)
    source = ROOT / "reproductions" / "results"
    (results / "index.md").write_text((source / "README.md").read_text())
    for figure in sorted((source / "curves").glob("*.png")):
        shutil.copyfile(figure, results / "curves" / figure.name)
    if (source / "figures").is_dir():
        shutil.copytree(source / "figures", results / "figures")
    shutil.copyfile(ROOT / "CHANGELOG.md", docs / "changelog.md")
    vendored = ROOT / "node_modules" / "mathjax" / "es5"
    target = docs / "javascripts" / "mathjax"
    shutil.rmtree(target, ignore_errors=True)
    scripts = config["extra_javascript"]
    if vendored.is_dir():
        shutil.copytree(vendored, target)
        for index, script in enumerate(scripts):
            if "cdn.jsdelivr.net/npm/mathjax" in str(script):
                scripts[index] = type(script)("javascripts/mathjax/tex-mml-chtml.js") \
                    if not isinstance(script, str) else "javascripts/mathjax/tex-mml-chtml.js"
    return config
