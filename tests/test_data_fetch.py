"""`pepita data`: what is found where, and fetching into that layout, against a local server.

The server on 127.0.0.1 serves small files in the genuine formats (gzipped
IDX, the CIFAR python tarball); the test gives the fetcher their SHA-256, as
the published ones are for the real files.
"""

import functools
import hashlib
import http.server
import socket
import threading

import numpy as np
import pytest

from pepita_keras import cli, data_fetch, datasets
from tests.test_datasets import write_cifar, write_mnist


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 over `tmp_path / "served"`; yields its base URL."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def _sums(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_fetch_mnist_lands_verified_files_the_loader_reads(tmp_path, server):
    served, url = server
    (x_train, y_train), (x_test, y_test) = write_mnist(served, np.random.default_rng(0))
    folder = data_fetch.fetch("mnist", tmp_path / "data", base_url=url,
                              checksums=_sums(served), say=lambda _: None)
    assert sorted(p.name for p in folder.iterdir()) == sorted(_sums(served))
    (xt, yt), (xs, ys) = datasets.load_arrays("mnist", tmp_path / "data", verify=False)
    np.testing.assert_allclose(xt[..., 0], x_train / 255.0, atol=1e-6)  # in [0, 1]
    np.testing.assert_array_equal(ys, y_test)
    # Fetching again finds them in place.
    said = []
    data_fetch.fetch("mnist", tmp_path / "data", base_url=url, checksums=_sums(served),
                     say=said.append)
    assert all("already there" in line for line in said)


def test_fetch_cifar10_tarball(tmp_path, server):
    served, url = server
    write_cifar(served, np.random.default_rng(1), "cifar10", as_tar=True)
    data_fetch.fetch("cifar10", tmp_path / "data", base_url=url, checksums=_sums(served),
                     say=lambda _: None)
    (x, y), (xt, yt) = datasets.load_arrays("cifar10", tmp_path / "data", verify=False)
    assert x.shape == (10, 32, 32, 3) and xt.shape == (3, 32, 32, 3)


def test_a_download_with_the_wrong_checksum_is_deleted(tmp_path, server):
    served, url = server
    write_mnist(served, np.random.default_rng(0))
    wrong = dict(_sums(served), **{"train-images-idx3-ubyte.gz": "0" * 64})
    with pytest.raises(ValueError, match="not the published"):
        data_fetch.fetch("mnist", tmp_path / "data", base_url=url, checksums=wrong,
                         say=lambda _: None)
    leftovers = [p.name for p in (tmp_path / "data" / "mnist").iterdir()]
    assert "train-images-idx3-ubyte.gz" not in leftovers
    assert not any(name.endswith(".part") for name in leftovers)


def test_offline_it_says_which_files_go_where(tmp_path, capsys, monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on: what offline looks like
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(data_fetch.MIRROR_ENV, f"http://127.0.0.1:{port}/")
    code = cli.main(["data", "--fetch", "mnist", "--data-dir", str(tmp_path / "data")])
    error = capsys.readouterr().err
    assert code == 2 and error.startswith("pepita data: error: cannot reach")
    for stem in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert str(tmp_path / "data" / "mnist" / stem) in error
    assert not (tmp_path / "data" / "mnist").exists()


def test_status_lists_where_each_dataset_was_looked_for(tmp_path, capsys):
    write_mnist(tmp_path / "data" / "mnist", np.random.default_rng(0))
    assert cli.main(["data", "--data-dir", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "mnist: found" in out and "cifar10: not found" in out
    # Small test files are not the published MNIST: the check says so.
    assert "train-images-idx3-ubyte.gz: SHA-256 MISMATCH" in out
    assert f"{tmp_path / 'data' / 'cifar10'}: folder does not exist" in out
