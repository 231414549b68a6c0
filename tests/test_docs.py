"""The README fits a screen and quotes the committed table; the docs site builds and renders.

The site test builds with `mkdocs build --strict`, serves it on 127.0.0.1 and
opens it in a real headless Chromium (Debian's `chromium` + `chromium-driver`,
driven by Selenium): the results page must show the table with a cell's
number from `results.csv`, and the home page an equation typeset by MathJax
(served from the site: `npm install --no-save mathjax@3`). Without those
tools the site test skips, except under `CI=true`, where `.ci/run` installs them.
"""

import csv
import functools
import http.server
import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys
import threading

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "reproductions" / "results" / "results.csv"
CI = os.environ.get("CI") == "true"


def _results():
    with open(RESULTS, newline="") as file:
        return {row["cell"]: row for row in csv.DictReader(file)}


def test_readme_fits_a_screen_and_quotes_the_committed_table():
    from pepita_keras import results

    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 150
    rows = _results()
    # The results block is results.csv's rows as `readme_block` renders them, the eight
    # paper MNIST cells among them.
    assert results.readme_block(list(rows.values())) in "\n".join(lines)
    for architecture in ("fc", "conv"):
        for rule in ("bp", "fa", "drtp", "pepita"):
            row = rows[f"{architecture}_mnist_{rule}"]
            assert any(line.startswith(f"| `{architecture}_mnist_{rule}` |")
                       and f"| {row['ours_mean']} ± {row['ours_std']} |" in line
                       for line in lines), (architecture, rule)


def _tool(name):
    return shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}")
                                  else None)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if importlib.util.find_spec("mkdocs") is None:
        if CI:
            pytest.fail("CI=true but mkdocs is not installed (pip install -e '.[docs]')")
        pytest.skip("mkdocs not installed (pip install -e '.[docs]')")
    folder = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                             str(folder)], cwd=REPO, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert result.returncode == 0, result.stderr
    return folder


def test_the_site_builds_strictly_with_the_generated_results(site):
    page = (site / "results" / "index.html").read_text()
    assert "<table>" in page and "fc_mnist_pepita" in page
    assert (site / "api" / "index.html").read_text().count("PEPITA") > 3  # from docstrings


def test_the_site_renders_in_a_real_browser(site):
    chromium, driver = _tool("chromium"), _tool("chromedriver")
    selenium = importlib.util.find_spec("selenium")
    vendored = (site / "javascripts" / "mathjax" / "tex-mml-chtml.js").is_file()
    if not (chromium and driver and selenium and vendored):
        missing = [name for name, ok in (("chromium", chromium), ("chromedriver", driver),
                                         ("selenium", selenium), ("MathJax", vendored)) if not ok]
        if CI:
            pytest.fail(f"CI=true but {missing} missing (.ci/run installs them)")
        pytest.skip(f"needs {missing}")
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver),
                               options=options)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        browser.get(f"{base}/results/")
        mean = _results()["fc_mnist_pepita"]["ours_mean"]
        # The theme's scripts lay the page out after `load`: wait for the table's text.
        WebDriverWait(browser, 60).until(lambda b: any(
            mean in td.text for td in b.find_elements(By.CSS_SELECTOR, "table td")))
        browser.get(f"{base}/")
        # MathJax replaces the TeX source by its own elements once it has typeset it.
        WebDriverWait(browser, 60).until(
            lambda b: b.find_elements(By.CSS_SELECTOR, "mjx-container"))
        assert "x_{\\text{mod}}" not in browser.find_element(By.TAG_NAME, "article").text
    finally:
        browser.quit()
        server.shutdown()
