"""Tests for `pepita_keras.datasets`.

Fixtures are tiny files in the genuine formats, written by hand from the format
specs (IDX headers with struct, CIFAR pickles with bytes keys and channel-plane
rows), so expectations come from the format, not from the loader.
"""

import gzip
import hashlib
import io
import os
import pathlib
import pickle
import struct
import tarfile
import time

import keras
import numpy as np
import pytest

from pepita_keras import dataset_files, datasets

REAL_DATA_DIR = os.environ.get(datasets.ENV_VAR)  # read before fixtures clear it
MNIST_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# ----------------------------------------------------------------- fixtures --
def write_mnist(directory, rng, gz=True, n_train=7, n_test=3):
    """Writes IDX files; returns the uint8 images and labels written."""
    directory.mkdir(parents=True, exist_ok=True)
    x_train = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    x_train[0, 0, 0], x_train[0, 0, 1] = 0, 255  # both ends of the range
    x_test = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    y_train = rng.integers(0, 10, n_train, dtype=np.uint8)
    y_test = rng.integers(0, 10, n_test, dtype=np.uint8)
    blobs = (
        struct.pack(">IIII", 2051, n_train, 28, 28) + x_train.tobytes(),
        struct.pack(">II", 2049, n_train) + y_train.tobytes(),
        struct.pack(">IIII", 2051, n_test, 28, 28) + x_test.tobytes(),
        struct.pack(">II", 2049, n_test) + y_test.tobytes(),
    )
    for name, blob in zip(MNIST_NAMES, blobs):
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(blob))
        else:
            (directory / name).write_bytes(blob)
    return (x_train, y_train), (x_test, y_test)


def cifar_rows(images):
    """NHWC uint8 -> genuine CIFAR rows: the R plane, then G, then B, row-major."""
    return np.stack([np.concatenate([im[:, :, c].ravel() for c in range(3)]) for im in images])


def write_cifar(root, rng, kind, as_tar):
    """Writes CIFAR-10 (5 train batches of 2, test of 3) or CIFAR-100 (train 6, test 3)."""
    if kind == "cifar10":
        folder, tar_name = "cifar-10-batches-py", "cifar-10-python.tar.gz"
        sizes = {f"data_batch_{i}": 2 for i in range(1, 6)} | {"test_batch": 3}
    else:
        folder, tar_name = "cifar-100-python", "cifar-100-python.tar.gz"
        sizes = {"train": 6, "test": 3}
    blobs, written = {}, {}
    for member, n in sizes.items():
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        batch = {b"batch_label": member.encode(), b"data": cifar_rows(images)}
        if kind == "cifar10":
            labels = {b"labels": rng.integers(0, 10, n).tolist()}
        else:
            labels = {b"fine_labels": rng.integers(0, 100, n).tolist(),
                      b"coarse_labels": rng.integers(0, 20, n).tolist()}
        batch.update(labels)
        blobs[member] = pickle.dumps(batch, protocol=2)
        written[member] = (images, labels)
    root.mkdir(parents=True, exist_ok=True)
    if as_tar:
        with tarfile.open(root / tar_name, "w:gz") as tar:
            for member, blob in blobs.items():
                info = tarfile.TarInfo(f"{folder}/{member}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    else:
        (root / folder).mkdir()
        for member, blob in blobs.items():
            (root / folder / member).write_bytes(blob)
    return written


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No env data dir, an empty TFDS dir and no network, unless a test says so."""
    monkeypatch.delenv(datasets.ENV_VAR, raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds_empty"))
    monkeypatch.setattr(datasets, "_network_available", lambda *a, **k: False)


# -------------------------------------------------------------------- MNIST --
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_pixels_shapes_labels(tmp_path, rng, gz):
    (x_train, y_train), (x_test, y_test) = write_mnist(tmp_path / "mnist", rng, gz=gz)
    (xa, ya), (xb, yb) = datasets.load_arrays("mnist", tmp_path, verify=False)
    assert xa.shape == (7, 28, 28, 1) and xb.shape == (3, 28, 28, 1)
    assert xa.dtype == np.float32 and ya.dtype == np.int32
    np.testing.assert_allclose(xa[..., 0], x_train / 255.0, rtol=1e-6)
    np.testing.assert_allclose(xb[..., 0], x_test / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ya, y_train)
    np.testing.assert_array_equal(yb, y_test)
    assert xa[0, 0, 0, 0] == 0.0 and xa[0, 0, 1, 0] == 1.0


@pytest.mark.parametrize("layout", ["dataset_folder", "files_directly"])
def test_layouts(tmp_path, rng, layout):
    target = tmp_path / "mnist" if layout == "dataset_folder" else tmp_path
    write_mnist(target, rng)
    data = datasets.load("mnist", tmp_path, verify=False)
    assert data.source == str(target) and data.num_train == 7 and data.num_test == 3
    assert (data.name, data.num_classes, data.input_shape) == ("mnist", 10, (28, 28, 1))


def test_env_var_honoured_and_data_dir_beats_it(tmp_path, monkeypatch):
    (_, y_env), _ = write_mnist(tmp_path / "env" / "mnist", np.random.default_rng(1))
    (_, y_arg), _ = write_mnist(tmp_path / "arg" / "mnist", np.random.default_rng(2), n_train=5)
    monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "env"))
    (_, y), _ = datasets.load_arrays("mnist", verify=False)
    np.testing.assert_array_equal(y, y_env)
    (_, ya), _ = datasets.load_arrays("mnist", tmp_path / "arg", verify=False)
    np.testing.assert_array_equal(ya, y_arg)


# -------------------------------------------------------------------- CIFAR --
@pytest.mark.parametrize("as_tar", [False, True])
def test_cifar10_channel_planes(tmp_path, rng, as_tar):
    written = write_cifar(tmp_path / "cifar10", rng, "cifar10", as_tar)
    (x, y), (xt, yt) = datasets.load_arrays("cifar10", tmp_path, verify=False)
    assert x.shape == (10, 32, 32, 3) and xt.shape == (3, 32, 32, 3)
    # Pixel (row 5, col 7, blue) of the 1st image of data_batch_2 is byte
    # 2*1024 + 5*32 + 7 of its row (documented layout), and train example 2.
    row = cifar_rows(written["data_batch_2"][0])[0]
    assert x[2, 5, 7, 2] == pytest.approx(row[2 * 1024 + 5 * 32 + 7] / 255.0)
    expected = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_allclose(x, expected / 255.0, rtol=1e-6)
    np.testing.assert_allclose(xt, written["test_batch"][0] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(
        y, sum((written[f"data_batch_{i}"][1][b"labels"] for i in range(1, 6)), []))
    np.testing.assert_array_equal(yt, written["test_batch"][1][b"labels"])


@pytest.mark.parametrize("as_tar", [False, True])
@pytest.mark.parametrize("label_mode,key,classes",
                         [("fine", b"fine_labels", 100), ("coarse", b"coarse_labels", 20)])
def test_cifar100_label_modes(tmp_path, rng, as_tar, label_mode, key, classes):
    written = write_cifar(tmp_path, rng, "cifar100", as_tar)  # files directly in data_dir
    data = datasets.load("cifar100", tmp_path, label_mode=label_mode, verify=False)
    assert data.num_classes == classes and (data.num_train, data.num_test) == (6, 3)
    (x, y), (_, yt) = datasets.load_arrays("cifar100", tmp_path, label_mode=label_mode,
                                           verify=False)
    assert x[4, 31, 0, 1] == pytest.approx(cifar_rows(written["train"][0])[4][1024 + 31 * 32] / 255)
    np.testing.assert_array_equal(y, written["train"][1][key])
    np.testing.assert_array_equal(yt, written["test"][1][key])


def test_cifar_pickle_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "train").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    (folder / "test").write_bytes(b"")
    with pytest.raises(datasets.DatasetIntegrityError, match="train"):
        datasets.load_arrays("cifar100", tmp_path, verify=False)
    assert not marker.exists()


# ------------------------------------------------------------------- errors --
def test_missing_data_fails_fast_and_names_paths(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "env"))
    start = time.monotonic()
    with pytest.raises(datasets.DatasetNotFoundError) as info:
        datasets.load("cifar10")
    assert time.monotonic() - start < 5
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    for path in (tmp_path / "env" / "cifar10", tmp_path / "env", tmp_path / "tfds_empty"):
        assert str(path) in message
    assert "PEPITA_DATA_DIR" in message and "cifar-10-python.tar.gz" in message


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_explicit_data_dir_never_falls_back(tmp_path, rng, monkeypatch, name):
    """A data_dir without the files is an error naming it, even if PEPITA_DATA_DIR has them."""
    write_mnist(tmp_path / "env" / "mnist", rng)
    write_cifar(tmp_path / "env" / "cifar10", rng, "cifar10", as_tar=True)
    monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "env"))
    datasets.load_arrays(name, verify=False)  # the env copy is fine
    given = tmp_path / "given"
    (given / name).mkdir(parents=True)
    if name == "mnist":  # half a copy: two of the four files
        write_mnist(tmp_path / "scratch", rng)
        for stem in MNIST_NAMES[:2]:
            (given / name / f"{stem}.gz").write_bytes((tmp_path / "scratch" / f"{stem}.gz")
                                                      .read_bytes())
        missing = MNIST_NAMES[2:]
    else:
        missing = ["cifar-10-python.tar.gz", "data_batch_1", "test_batch"]
    with pytest.raises(datasets.DatasetNotFoundError) as info:
        datasets.load_arrays(name, given, verify=False)
    message = str(info.value)
    assert str(given / name) in message and str(given) in message
    assert all(m in message for m in missing), message
    if name == "mnist":  # the half copy's line lists just the two absent files
        (line,) = [ln for ln in message.splitlines() if f"{given / name} (" in ln]
        assert MNIST_NAMES[2] in line and MNIST_NAMES[3] in line
        assert MNIST_NAMES[0] not in line and MNIST_NAMES[1] not in line
    assert str(tmp_path / "env") not in message  # not consulted, so not listed


def test_tfds_fallback_only_when_prepared_or_online(tmp_path, monkeypatch):
    calls = []
    fake = ((np.zeros((2, 28, 28, 1), np.uint8), np.array([1, 2])),
            (np.zeros((1, 28, 28, 1), np.uint8), np.array([3])))
    monkeypatch.setattr(datasets, "_load_tfds", lambda name, d, download, lm: (
        calls.append(download) or fake))
    monkeypatch.setattr(datasets, "_tfds_prepared", lambda name, d: True)
    assert datasets.load("mnist").source.startswith("tfds:")
    monkeypatch.setattr(datasets, "_tfds_prepared", lambda name, d: False)
    monkeypatch.setattr(datasets, "_network_available", lambda *a, **k: True)
    assert datasets.load("mnist").num_train == 2
    assert calls == [False, True]


@pytest.mark.parametrize("bad,args", [
    ("imagenet", {}), ("mnist", {"label_mode": "coarse"}), ("mnist", {"subset": (5,)}),
    ("mnist", {"batch_size": 0}), ("mnist", {"subset": (0, 0)}), ("mnist", {"subset": (4, 0)}),
    ("mnist", {"subset": (0, None)}),
])
def test_bad_arguments_raise_value_error(tmp_path, rng, bad, args):
    write_mnist(tmp_path, rng)
    with pytest.raises(ValueError, match="received|Supported") as info:
        datasets.load(bad, tmp_path, verify=False, **args)
    assert repr(next(iter(args.values()), bad)) in str(info.value)
    if "subset" in args and len(args["subset"]) == 2:  # names the empty split(s)
        empty = " and ".join(s for s, n in zip(("train", "test"), args["subset"]) if n == 0)
        assert f"keeps no examples of the {empty} split" in str(info.value)
    if bad == "imagenet":
        assert all(n in str(info.value) for n in ("mnist", "fashion_mnist", "cifar10", "cifar100"))


@pytest.mark.parametrize("damage", ["bad_magic", "truncated", "trailing_bytes", "truncated_gzip"])
def test_corrupted_idx_raises_clear_error(tmp_path, rng, damage):
    write_mnist(tmp_path, rng, gz=damage == "truncated_gzip")
    path = tmp_path / ("train-images-idx3-ubyte" + (".gz" if damage == "truncated_gzip" else ""))
    blob = path.read_bytes()
    damaged = {"bad_magic": b"\x00\x00\x09\x03" + blob[4:], "trailing_bytes": blob + b"\x00"}
    path.write_bytes(damaged.get(damage, blob[:-50]))
    with pytest.raises(datasets.DatasetIntegrityError, match="train-images-idx3-ubyte"):
        datasets.load_arrays("mnist", tmp_path, verify=False)


def test_sha256sums_mismatch_names_file_and_hashes(tmp_path, rng):
    write_cifar(tmp_path, rng, "cifar10", as_tar=False)
    folder = tmp_path / "cifar-10-batches-py"
    actual = hashlib.sha256((folder / "data_batch_3").read_bytes()).hexdigest()
    (folder / "SHA256SUMS").write_text(f"{'0' * 64}  data_batch_3\n")
    with pytest.raises(datasets.DatasetIntegrityError) as info:
        datasets.load_arrays("cifar10", tmp_path)
    assert all(s in str(info.value) for s in ("data_batch_3", "0" * 64, actual, "verify=False"))
    datasets.load_arrays("cifar10", tmp_path, verify=False)  # escape hatch
    (folder / "SHA256SUMS").write_text(f"{actual} *data_batch_3\n")
    datasets.load_arrays("cifar10", tmp_path)  # correct sum: verified and accepted


def test_a_sha256sums_of_binary_junk_is_named_not_a_traceback(tmp_path, rng):
    write_cifar(tmp_path, rng, "cifar10", as_tar=False)
    sums = tmp_path / "cifar-10-batches-py" / "SHA256SUMS"
    sums.write_bytes(bytes(range(128, 256)) * 3)
    with pytest.raises(datasets.DatasetIntegrityError,
                       match=f"{sums} cannot be read as a checksum list"):
        datasets.load_arrays("cifar10", tmp_path)


def test_official_mnist_hashes_are_enforced_and_cached(tmp_path, rng, monkeypatch):
    write_mnist(tmp_path, rng)  # genuine file names, not genuine content
    with pytest.raises(datasets.DatasetIntegrityError, match="official mnist"):
        datasets.load_arrays("mnist", tmp_path)
    hashed = []
    real_sha256 = hashlib.sha256
    monkeypatch.setattr(dataset_files.hashlib, "sha256", lambda: hashed.append(1) or real_sha256())
    for _ in range(2):
        with pytest.raises(datasets.DatasetIntegrityError):
            datasets.load_arrays("mnist", tmp_path)
    assert hashed == []  # hashed during the first call above, then served from the cache


# ----------------------------------------------------------------- pipeline --
def test_pipeline_batches_options_and_subset(tmp_path, rng):
    (x_train, y_train), (x_test, y_test) = write_mnist(tmp_path, rng)
    data = datasets.load("mnist", tmp_path, batch_size=4, subset=(6, 2), seed=3, verify=False)
    assert (data.num_train, data.num_test) == (6, 2)
    for ds in (data.train, data.test):
        assert ds.options().autotune.enabled is False
    batches = list(data.train.as_numpy_iterator())
    assert [len(b[1]) for b in batches] == [4, 2]
    x, y = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    assert x.dtype == np.float32 and y.dtype == np.int32 and x.shape[1:] == (28, 28, 1)
    assert 0.0 <= x.min() and x.max() <= 1.0
    # An epoch is a permutation of the first 6 examples, images still paired with labels.
    pixels = np.rint(x[..., 0] * 255).astype(np.uint8)
    order = [int(np.flatnonzero((x_train[:6] == p).all(axis=(1, 2)))[0]) for p in pixels]
    assert sorted(order) == list(range(6))
    np.testing.assert_array_equal(y, y_train[order])
    (xt, yt), = list(data.test.as_numpy_iterator())  # test split: never shuffled
    np.testing.assert_array_equal(yt, y_test[:2])
    again = datasets.load("mnist", tmp_path, batch_size=4, subset=(6, 2), seed=3, verify=False)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in again.train]), y)


def test_unbatched_pipeline_yields_single_examples(tmp_path, rng):
    write_mnist(tmp_path, rng)
    data = datasets.load("mnist", tmp_path, shuffle=False, verify=False)
    x, y = next(iter(data.train))
    assert x.shape == (28, 28, 1) and y.shape == () and data.train.cardinality() == 7
    assert data.train.options().autotune.enabled is False


# ------------------------------------------- PyDataset (non-TF backends) --
def test_array_batches_reshuffle_each_epoch_by_seed():
    x = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    y = np.arange(10, dtype=np.int32)
    batches = datasets.ArrayBatches(x, y, 4, shuffle=True, seed=7)
    assert isinstance(batches, keras.utils.PyDataset) and len(batches) == 3

    def epoch(pipeline):
        parts = list(pipeline)  # a full pass ends the epoch, as for tf.data
        assert [len(p[1]) for p in parts] == [4, 4, 2]
        for xb, yb in parts:
            np.testing.assert_array_equal(xb[:, 0], yb)  # images stay with labels
        return np.concatenate([p[1] for p in parts])

    epochs = [epoch(batches) for _ in range(3)]
    assert all(sorted(e) == list(range(10)) for e in epochs)
    assert len({tuple(e) for e in epochs}) == 3  # a new order every epoch
    again = datasets.ArrayBatches(x, y, 4, shuffle=True, seed=7)
    assert [tuple(epoch(again)) for _ in range(3)] == [tuple(e) for e in epochs]
    assert tuple(epoch(datasets.ArrayBatches(x, y, 4, shuffle=True, seed=8))) != tuple(
        epochs[0])
    fixed = datasets.ArrayBatches(x, y, 4, shuffle=False)
    assert [tuple(epoch(fixed)) for _ in range(2)] == [tuple(range(10))] * 2
    with pytest.raises(IndexError):
        batches[3]


def test_array_batches_advance_with_fit_epochs():
    """`fit` calls `on_epoch_end`: epoch 2 trains on the seed's second order."""
    x = np.arange(12, dtype=np.float32)[:, None]
    y = np.arange(12, dtype=np.int32)
    seen = []

    class Recording(datasets.ArrayBatches):
        def __getitem__(self, index):
            batch = super().__getitem__(index)
            seen.append(batch[1])
            return batch

    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    model.fit(Recording(x, y, 4, shuffle=True, seed=1), epochs=2, shuffle=False, verbose=0)
    first, second = np.concatenate(seen[-6:-3]), np.concatenate(seen[-3:])
    # Keras may peek at batches and end a pseudo-epoch before training (the TF
    # trainer does, for the output signature): fit's epochs are then consecutive
    # epochs of the seed's sequence, not necessarily starting at 0.
    reference = datasets.ArrayBatches(x, y, 4, shuffle=True, seed=1)
    sequence = [tuple(np.concatenate([b[1] for b in reference])) for _ in range(4)]
    start = sequence.index(tuple(first))
    assert sequence[start + 1] == tuple(second) and sequence[start] != sequence[start + 1]


def test_pipelines_are_pydatasets_without_tf_data(tmp_path, rng, monkeypatch):
    """What load / make_pipeline return under JAX (tested here by the backend switch)."""
    (x_train, y_train), (_, y_test) = write_mnist(tmp_path, rng)
    monkeypatch.setattr(datasets, "uses_tf_data", lambda: False)
    data = datasets.load("mnist", tmp_path, batch_size=4, subset=(6, 2), seed=3, verify=False)
    assert isinstance(data.train, datasets.ArrayBatches)
    assert isinstance(data.test, datasets.ArrayBatches)
    xb, yb = data.train[0]
    assert xb.shape == (4, 28, 28, 1) and xb.dtype == np.float32 and yb.dtype == np.int32
    batches = list(data.train)  # one epoch
    labels = np.concatenate([b[1] for b in batches])
    pixels = np.rint(np.concatenate([b[0] for b in batches])[..., 0] * 255).astype(np.uint8)
    order = [int(np.flatnonzero((x_train[:6] == p).all(axis=(1, 2)))[0]) for p in pixels]
    assert sorted(order) == list(range(6))
    np.testing.assert_array_equal(labels, y_train[order])
    np.testing.assert_array_equal(np.concatenate([b[1] for b in data.test]), y_test[:2])
    with pytest.raises(ValueError, match="batch_size=None"):
        datasets.load("mnist", tmp_path, verify=False)
    with pytest.raises(ValueError, match="batch_size=None"):
        datasets.make_pipeline(x_train, y_train)


# ---------------------------------------------------------------- real data --
@pytest.mark.real_data
def test_real_mnist(monkeypatch):
    root = REAL_DATA_DIR
    if not root or not (pathlib.Path(root) / "mnist").is_dir():
        pytest.skip("real MNIST not found: set PEPITA_DATA_DIR to a folder holding mnist/")
    monkeypatch.setenv(datasets.ENV_VAR, root)
    folder = pathlib.Path(root) / "mnist"
    for line in (folder / "SHA256SUMS").read_text().splitlines():  # independent check
        digest, name = line.split()
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    (x, y), (xt, yt) = datasets.load_arrays("mnist", verify=True)
    assert (x.shape, xt.shape) == ((60000, 28, 28, 1), (10000, 28, 28, 1))
    assert x.min() == 0.0 and x.max() == 1.0 and 0.0 <= xt.min() and xt.max() <= 1.0
    assert abs(float(x.mean(dtype=np.float64)) - 0.1307) < 1e-3
    assert set(y.tolist()) == set(yt.tolist()) == set(range(10))
    with pytest.raises(datasets.DatasetIntegrityError, match="official fashion_mnist"):
        datasets.load_arrays("fashion_mnist", folder)  # MNIST files found under another name
    data = datasets.load("mnist", batch_size=128, seed=0)
    assert (data.num_train, data.num_test) == (60000, 10000)
    xb, yb = next(iter(data.train))
    assert xb.shape == (128, 28, 28, 1) and yb.dtype == "int32"


@pytest.mark.parametrize("label", [10, 42, 255])
def test_labels_outside_the_classes_name_the_file(tmp_path, rng, label):
    write_mnist(tmp_path / "mnist", rng)
    path = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    blob = bytearray(gzip.decompress(path.read_bytes()))
    blob[8 + 3] = label  # the 4th training label
    path.write_bytes(gzip.compress(bytes(blob)))
    with pytest.raises(datasets.DatasetIntegrityError,
                       match=rf"mnist train labels in .*mnist must lie in \[0, 10\).*\[{label}\]"):
        datasets.load_arrays("mnist", tmp_path, verify=False)


def test_an_empty_split_is_refused_with_the_file_named(tmp_path, rng):
    write_mnist(tmp_path / "mnist", rng, n_test=0)
    with pytest.raises(datasets.DatasetIntegrityError, match="test split in .*mnist has no"):
        datasets.load_arrays("mnist", tmp_path, verify=False)
