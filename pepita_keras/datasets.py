"""Image-classification datasets as in-memory arrays and batched pipelines.

Data is read from local copies of the original files (MNIST IDX, CIFAR python
pickles). An explicit `data_dir` is the only place searched; without one, the
`PEPITA_DATA_DIR` environment variable, then TensorFlow Datasets (only when a
prepared copy exists locally or the network answers, so an offline machine
fails in seconds). A data dir holds one folder per dataset
(`<data_dir>/mnist/...`) or the dataset's files directly.

Pipelines are `tf.data.Dataset`s under the TensorFlow backend and
`ArrayBatches` (a `keras.utils.PyDataset`) under any other (JAX), so the JAX
path never imports TensorFlow. Reading the files needs NumPy only.
"""

import dataclasses
import gzip
import importlib.util
import io
import logging
import os
import pathlib
import pickle
import socket
import struct
import sys
import tarfile
import threading

import keras
import numpy as np

# The files' layout, names and checksums (keras-free, shared with `pepita data`);
# `_KNOWN_SHA256` and `_sha256` are also read through this module (store.dataset_inputs, tests).
from pepita_keras.dataset_files import (  # noqa: F401
    _KNOWN_SHA256,
    _MNIST_STEMS,
    _SPECS,
    ENV_VAR,
    SUPPORTED_NAMES,
    DatasetIntegrityError,
    _locate,
    _missing,
    _sha256,
    _verify,
)

logger = logging.getLogger(__name__)

class DatasetNotFoundError(FileNotFoundError):
    """No copy of the dataset was found; the message lists every path searched."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A loaded dataset: train/test pipelines of `(image, label)` plus metadata.

    Attributes:
        train: batches of float32 images in [0, 1] and int32 labels: a
            `tf.data.Dataset` under the TensorFlow backend, an `ArrayBatches`
            (`keras.utils.PyDataset`) under JAX; `fit` takes either.
        test: same for the test split (never shuffled).
        num_classes: number of label values.
        input_shape: image shape, `(28, 28, 1)` or `(32, 32, 3)`.
        name: the dataset name, e.g. `"mnist"`.
        source: where the data was read from (a path, or `"tfds:<dir>"`).
        num_train: number of training examples (after `subset`).
        num_test: number of test examples (after `subset`).
    """

    train: object
    test: object
    num_classes: int
    input_shape: tuple
    name: str
    source: str
    num_train: int
    num_test: int


def _parse_idx(data, path, ndim):
    """Parses an uncompressed IDX file of uint8 values with `ndim` dimensions."""
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08 or data[3] != ndim:
        raise DatasetIntegrityError(
            f"{path} is not an IDX uint8 file with {ndim} dims: magic bytes {data[:4].hex()} "
            f"(expected {2048 + ndim:08x}).")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetIntegrityError(f"{path} is truncated inside its IDX header.")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) - header != int(np.prod(dims)):
        raise DatasetIntegrityError(
            f"{path} holds {len(data) - header} data bytes but its header {dims} "
            f"needs {int(np.prod(dims))}: the file is truncated or corrupted.")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def _read_idx(path, ndim):
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DatasetIntegrityError(f"Cannot decompress {path}: {e}") from e
    return _parse_idx(data, path, ndim)


def _read_mnist(files, name, verify):
    if verify:
        for path in files:
            _verify(path, name)
    x_train, y_train, x_test, y_test = (
        _read_idx(path, 3 if i % 2 == 0 else 1) for i, path in enumerate(files))
    for x, y, xp in ((x_train, y_train, files[0]), (x_test, y_test, files[2])):
        if len(x) != len(y) or x.shape[1:] != (28, 28):
            raise DatasetIntegrityError(
                f"{xp}: images {x.shape} do not match {len(y)} labels of 28x28 images.")
    return (x_train[..., None], y_train), (x_test[..., None], y_test)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Loads the CIFAR pickles without letting a file run arbitrary code."""

    # numpy arrays, plus `_codecs.encode`, which Python 3 protocol-2 pickles use for bytes.
    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"Refusing to load {module}.{name} from a CIFAR pickle.")
        return super().find_class(module, name)


def _parse_cifar_batch(blob, where, label_key):
    try:
        batch = _NumpyOnlyUnpickler(io.BytesIO(blob), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[label_key])
    except Exception as e:  # any unpickling / key failure means a bad file
        raise DatasetIntegrityError(f"{where} is not a valid CIFAR python batch: {e!r}") from e
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DatasetIntegrityError(
            f"{where}: data {data.shape} / {len(labels)} labels, expected (N, 3072) / N.")
    # Rows are channel planes (R, G, B), each 32x32 row-major: NCHW -> NHWC.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _read_cifar(location, name, verify, label_mode):
    spec = _SPECS[name]
    members = spec.train_members + spec.test_members
    if location.is_dir():
        if verify:
            for m in members:
                _verify(location / m, name)
        blobs = {m: (location / m).read_bytes() for m in members}
    else:
        if verify:
            _verify(location, name)
        wanted = {f"{spec.folder}/{m}": m for m in members}
        try:
            with tarfile.open(location, "r:gz") as tar:
                blobs = {wanted[t.name]: tar.extractfile(t).read() for t in tar if t.name in wanted}
        except (OSError, EOFError, tarfile.TarError) as e:
            raise DatasetIntegrityError(f"Cannot read {location}: {e}") from e
        if len(blobs) != len(members):
            missing = sorted(set(wanted) - {f"{spec.folder}/{m}" for m in blobs})
            raise DatasetIntegrityError(f"{location} lacks members {missing}.")
    label_key = {"cifar10": b"labels", "fine": b"fine_labels", "coarse": b"coarse_labels"}[
        "cifar10" if name == "cifar10" else label_mode]
    where = (lambda m: location / m) if location.is_dir() else (lambda m: f"{location}:{m}")
    parts = {m: _parse_cifar_batch(blobs[m], where(m), label_key) for m in members}
    return tuple(_concat([parts[m] for m in split])
                 for split in (spec.train_members, spec.test_members))


def _concat(parts):
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _network_available(host="storage.googleapis.com", port=443, timeout=2.0):
    """True if a TCP connection opens within `timeout` s (DNS included)."""
    result = []

    def probe():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)  # getaddrinfo has no timeout
    thread.start()
    thread.join(timeout)
    return bool(result)


def _tfds_data_dir():
    return pathlib.Path(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")).expanduser()


def _tfds_prepared(name, tfds_dir):
    if not (tfds_dir / name).is_dir():  # cheap check first: importing tfds is slow
        return False
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=str(tfds_dir)).is_prepared()
    except Exception as e:  # a half-written TFDS folder must not hide the real error
        logger.warning("TFDS copy of %s in %s unusable: %r", name, tfds_dir, e)
        return False


def _load_tfds(name, tfds_dir, download, label_mode):
    import tensorflow_datasets as tfds

    label_key = "coarse_label" if label_mode == "coarse" else "label"
    splits = tfds.load(name, split=["train", "test"], batch_size=-1,
                       data_dir=str(tfds_dir), download=download)
    return tuple((s["image"], s[label_key]) for s in tfds.as_numpy(splits))


def _not_found(name, searched, explicit=False):
    spec = _SPECS[name]
    if spec.folder:
        expected = (f"{spec.tarball}, or the extracted {spec.folder}/ "
                    f"({', '.join(spec.train_members + spec.test_members)})")
    else:
        expected = ", ".join(f"{s}.gz" for s in _MNIST_STEMS) + " (or the same without .gz)"
    lines = "\n".join(f"  - {path} ({why})" for path, why in searched)
    if explicit:
        fix = (f"Fix: point data_dir at a folder holding {name}/ (or the files directly), "
               f"or pass data_dir=None to use ${ENV_VAR} / TFDS (not consulted when "
               f"data_dir is given).")
    else:
        fix = (f"Fix: pass data_dir=... or set {ENV_VAR} to a folder holding {name}/ (or the "
               f"files directly).")
    return DatasetNotFoundError(
        f"Dataset {name!r} not found. Searched:\n{lines}\n"
        f"{fix} Expected files: {expected}. Download from {spec.url}")


def _read_local(name, root, label_mode, verify):
    """`(splits, source)` from `root/name` or `root`, or None if neither has the files."""
    for directory in (root / name, root):
        found = _locate(name, directory)
        if found is not None:
            if isinstance(found, list):  # MNIST-like: the four IDX files
                source, splits = directory, _read_mnist(found, name, verify)
            else:
                source, splits = found, _read_cifar(found, name, verify, label_mode)
            logger.info("Loaded %s from %s", name, source)
            return splits, str(source)
    return None


def _installed(module):
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # e.g. a parent package that fails to import
        return False


def _read_arrays(name, data_dir, label_mode, verify):
    """Resolves the data source; returns (uint8 splits, source description)."""
    if data_dir is not None:
        # An explicit folder is the only place looked at: silently reading
        # another copy (PEPITA_DATA_DIR, TFDS) would hide a typo in the path.
        root = pathlib.Path(data_dir).expanduser()
        loaded = _read_local(name, root, label_mode, verify)
        if loaded is not None:
            return loaded
        searched = [(d, f"data_dir argument: {_missing(name, d)}") for d in (root / name, root)]
        raise _not_found(name, searched, explicit=True)
    searched = []
    root = os.environ.get(ENV_VAR)
    if root:
        root = pathlib.Path(root).expanduser()
        loaded = _read_local(name, root, label_mode, verify)
        if loaded is not None:
            return loaded
        searched += [(d, f"{ENV_VAR}: {_missing(name, d)}") for d in (root / name, root)]
    else:
        searched.append((f"${ENV_VAR}", "not set"))
    tfds_dir = _tfds_data_dir()
    if not _installed("tensorflow_datasets"):
        searched.append((tfds_dir / name, "TFDS not installed: pip install tensorflow-datasets"))
    elif _tfds_prepared(name, tfds_dir):
        return _load_tfds(name, tfds_dir, False, label_mode), f"tfds:{tfds_dir}"
    elif _network_available():
        return _load_tfds(name, tfds_dir, True, label_mode), f"tfds:{tfds_dir}"
    else:
        searched.append((tfds_dir / name, "TFDS: no prepared copy, network unreachable"))
    raise _not_found(name, searched)


def _check_args(name, label_mode):
    if name not in _SPECS:
        raise ValueError(
            f"Unknown dataset name: {name!r}. Supported: {', '.join(SUPPORTED_NAMES)}.")
    if label_mode not in ("fine", "coarse") or (label_mode == "coarse" and name != "cifar100"):
        raise ValueError(f"label_mode must be 'fine' (or 'coarse' for cifar100); received "
                         f"label_mode={label_mode!r} for {name!r}.")


def load_arrays(name, data_dir=None, *, label_mode="fine", verify=True):
    """Loads a dataset as NumPy arrays, float32 images in [0, 1], int32 labels.

    Args:
        name: one of `"mnist"`, `"fashion_mnist"`, `"cifar10"`, `"cifar100"`.
        data_dir: folder holding `<name>/` or the dataset's files directly;
            the only place searched when given (`DatasetNotFoundError` names
            it and the missing files). None: `$PEPITA_DATA_DIR`, then TFDS.
        label_mode: `"fine"` (100 classes) or `"coarse"` (20); cifar100 only.
        verify: check SHA256 of known files (and of any `SHA256SUMS` beside them).

    Returns:
        `((x_train, y_train), (x_test, y_test))`, images shaped `(N, 28, 28, 1)`
        or `(N, 32, 32, 3)`.

    Example:
    >>> (x, y), (x_test, y_test) = load_arrays("mnist", "/data")  # doctest: +SKIP
    """
    _check_args(name, label_mode)
    splits, source = _read_arrays(name, data_dir, label_mode, verify)
    _check_labels(name, splits, source, label_mode)
    return tuple(_to_float(x, y) for x, y in splits)


def _check_labels(name, splits, source, label_mode):
    """Refuses labels outside [0, classes) with the file named (else a TF error mid-epoch)."""
    classes = 20 if name == "cifar100" and label_mode == "coarse" else _SPECS[name].num_classes
    for split, (_, labels) in zip(("train", "test"), splits):
        labels = np.asarray(labels)
        if labels.size == 0:
            raise DatasetIntegrityError(f"{name} {split} split in {source} has no examples.")
        bad = labels[(labels < 0) | (labels >= classes)]
        if bad.size:
            raise DatasetIntegrityError(
                f"{name} {split} labels in {source} must lie in [0, {classes}); found "
                f"{bad.size} outside, e.g. {sorted(set(bad.tolist()))[:5]}. The file is not "
                f"{name}'s (or is damaged): replace it.")


def _to_float(images, labels):
    x = images.astype(np.float32)
    np.divide(x, 255.0, out=x)
    return x, np.asarray(labels, dtype=np.int32).reshape(-1)


def uses_tf_data():
    """True when pipelines are `tf.data` (TensorFlow backend), else `ArrayBatches`."""
    return keras.backend.backend() == "tensorflow"


def is_tf_dataset(x):
    """True if `x` is a `tf.data.Dataset`; never imports TensorFlow itself."""
    tf = sys.modules.get("tensorflow")  # not imported yet: x cannot be one
    return tf is not None and isinstance(x, tf.data.Dataset)


def pipeline_options():
    """`tf.data.Options` used for every returned pipeline (autotune off).

    Autotune's background threads made `fit()` return 8-41 s late on teardown.
    TensorFlow only.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return options


class ArrayBatches(keras.utils.PyDataset):
    """Batches of in-memory arrays, as a `keras.utils.PyDataset`.

    The pipeline of the non-TensorFlow backends (Keras-JAX `fit`, `evaluate`
    and `predict` take it; no TensorFlow needed). Batch `i` is
    `(x[order[i*B:(i+1)*B]], y[...])`, the last partial batch kept. With
    `shuffle=True`, `order` is `numpy.random.default_rng([seed, epoch])
    .permutation(n)` and `epoch` advances at the end of every `fit` epoch
    (`on_epoch_end`) and of every full iteration, so each epoch is reshuffled
    and the sequence of epochs depends only on `seed`.

    Keras's `fit(shuffle=True)` (its default) also permutes the *batch* order
    of a PyDataset with Python's `random`; pass `shuffle=False` to `fit` for
    an order that depends on `seed` alone (this class already shuffles).

    Args:
        x: array of examples. y: array of labels, same length.
        batch_size: positive int.
        shuffle: reshuffle every epoch.
        seed: shuffle seed; None draws one from NumPy's global generator
            (seeded by `keras.utils.set_random_seed`).
        order: a fixed order of example indices for every epoch (overrides
            `shuffle`), e.g. one epoch of `input_pipeline.epoch_order`.

    Example:
    >>> batches = ArrayBatches(np.zeros((10, 2)), np.arange(10), 4, shuffle=True, seed=0)
    >>> [len(y) for _, y in batches]
    [4, 4, 2]
    """

    def __init__(self, x, y, batch_size, *, shuffle=False, seed=None, order=None):
        super().__init__()
        if len(x) != len(y):
            raise ValueError(f"x and y lengths differ: received {len(x)} and {len(y)}.")
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle and order is None
        self.seed = int(np.random.randint(0, 2**31 - 1)) if seed is None else int(seed)
        self.epoch = 0
        self._order = None if order is None else np.asarray(order)
        if self.shuffle:
            self._order = np.random.default_rng([self.seed, 0]).permutation(len(y))

    def __len__(self):
        return -(-len(self.y) // self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range [0, {len(self)}).")
        batch = slice(index * self.batch_size, (index + 1) * self.batch_size)
        if self._order is not None:
            batch = self._order[batch]
        return self.x[batch], self.y[batch]

    def __iter__(self):
        # Like a tf.data pipeline: each complete pass is one epoch.
        for index in range(len(self)):
            yield self[index]
        self.on_epoch_end()

    def on_epoch_end(self):
        if self.shuffle:
            self.epoch += 1
            self._order = np.random.default_rng([self.seed, self.epoch]).permutation(
                len(self.y))


def make_pipeline(x, y, batch_size=None, *, shuffle=False, seed=None):
    """Builds the pipeline of `(x[i], y[i])` batches from in-memory arrays.

    Under the TensorFlow backend a `tf.data.Dataset`: indices are shuffled
    and batched first, then each batch is gathered in one vectorised op
    (batch-before-map, no per-example work, no copy in a buffer). Under any
    other backend an `ArrayBatches` (`keras.utils.PyDataset`), which needs
    no TensorFlow; it has no unbatched form, so `batch_size` is required.

    Args:
        x: array of examples. y: array of labels, same length.
        batch_size: positive int, or None for unbatched examples (tf.data).
        shuffle: reshuffle every epoch. seed: shuffle seed.

    Returns:
        A prefetched `tf.data.Dataset` with `pipeline_options()` applied, or
        an `ArrayBatches`.

    Example:
    >>> ds = make_pipeline(np.zeros((10, 2)), np.arange(10), batch_size=4)
    """
    if len(x) != len(y):
        raise ValueError(f"x and y lengths differ: received {len(x)} and {len(y)}.")
    _check_batch_size(batch_size)
    if not uses_tf_data():
        return ArrayBatches(x, y, batch_size, shuffle=shuffle, seed=seed)
    import tensorflow as tf

    x, y = tf.constant(x), tf.constant(y)
    ds = tf.data.Dataset.range(len(y))
    if shuffle:
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    if batch_size is not None:
        ds = ds.batch(batch_size)
    ds = ds.map(lambda i: (tf.gather(x, i), tf.gather(y, i)))
    return ds.prefetch(2).with_options(pipeline_options())


def _check_batch_size(batch_size):
    if batch_size is not None and (
            not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None; received {batch_size!r}.")
    if batch_size is None and not uses_tf_data():
        raise ValueError(
            f"batch_size=None (unbatched examples) needs tf.data, i.e. "
            f"KERAS_BACKEND=tensorflow; under {keras.backend.backend()!r} pass a "
            f"batch_size, or use load_arrays() for the arrays; received batch_size=None.")


def _check_subset(subset):
    ok = subset is None or (isinstance(subset, (tuple, list)) and len(subset) == 2 and all(
        n is None or (isinstance(n, int) and not isinstance(n, bool) and n >= 0)
        for n in subset))
    if not ok:
        raise ValueError(f"subset must be (n_train, n_test) of positive ints or None; "
                         f"received {subset!r}.")
    subset = tuple(subset or (None, None))
    empty = [split for split, n in zip(("train", "test"), subset) if n == 0]
    if empty:
        # An empty split would fail deep inside tf.data (ShuffleDatasetV3
        # refuses buffer_size 0) or train on nothing; say so here instead.
        raise ValueError(
            f"subset={subset!r} keeps no examples of the {' and '.join(empty)} "
            f"split{'s' if len(empty) > 1 else ''}: each entry must be >= 1 (or None for "
            f"the whole split); received subset={subset!r}.")
    return subset


def load(name, data_dir=None, *, batch_size=None, shuffle=True, seed=None, subset=None,
         label_mode="fine", verify=True):
    """Loads a dataset as batched pipelines of float32 images in [0, 1].

    The pipelines are `tf.data.Dataset`s under the TensorFlow backend and
    `ArrayBatches` (`keras.utils.PyDataset`) under JAX (see `make_pipeline`);
    under JAX pass `shuffle=False` to `fit` so the order depends on `seed` only.

    Args:
        name: one of `"mnist"`, `"fashion_mnist"`, `"cifar10"`, `"cifar100"`.
        data_dir: folder holding `<name>/` or the dataset's files directly;
            the only place searched when given. None: `$PEPITA_DATA_DIR`, then
            TFDS (prepared copy or network only). Raises
            `DatasetNotFoundError` naming the folders and missing files.
        batch_size: batch both splits; None yields single examples
            (TensorFlow backend only).
        shuffle: reshuffle the training split every epoch (test never is).
        seed: shuffle seed, for a reproducible order.
        subset: `(n_train, n_test)`: keep the first n of each split (None: all).
        label_mode: `"fine"` or `"coarse"` labels; cifar100 only.
        verify: check SHA256 of known files and any `SHA256SUMS` beside them.

    Returns:
        A `Dataset` with `train`/`test` pipelines and metadata.

    Example:
    >>> data = load("mnist", batch_size=64, seed=0)  # doctest: +SKIP
    >>> model.fit(data.train, validation_data=data.test)  # doctest: +SKIP
    """
    _check_args(name, label_mode)
    _check_batch_size(batch_size)
    n_train, n_test = _check_subset(subset)
    splits, source = _read_arrays(name, data_dir, label_mode, verify)
    (x_train, y_train), (x_test, y_test) = (
        _to_float(x[:n], y[:n]) for (x, y), n in zip(splits, (n_train, n_test)))
    spec = _SPECS[name]
    return Dataset(
        train=make_pipeline(x_train, y_train, batch_size, shuffle=shuffle, seed=seed),
        test=make_pipeline(x_test, y_test, batch_size),
        num_classes=20 if label_mode == "coarse" else spec.num_classes,
        input_shape=spec.input_shape, name=name, source=source,
        num_train=len(y_train), num_test=len(y_test))
