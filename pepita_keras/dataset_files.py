"""Where each dataset's files are looked for, what they are called, and their checksums.

Keras-free (NumPy is not needed either), so `pepita data` answers without
loading TensorFlow; `pepita_keras.datasets` reads the arrays from what this
module locates, and `pepita_keras.data_fetch` downloads into the same layout.
A data folder holds one folder per dataset (`<data_dir>/mnist/...`) or the
dataset's files directly.
"""

import dataclasses
import hashlib

ENV_VAR = "PEPITA_DATA_DIR"
_MNIST_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")



class DatasetIntegrityError(ValueError):
    """A dataset file is corrupted, truncated or fails its SHA256 check."""



@dataclasses.dataclass(frozen=True)
class _Spec:
    input_shape: tuple
    num_classes: int
    folder: str = ""  # CIFAR: extracted folder name
    tarball: str = ""  # CIFAR: archive name
    train_members: tuple = ()
    test_members: tuple = ()
    url: str = ""


_SPECS = {
    "mnist": _Spec((28, 28, 1), 10, url="https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "fashion_mnist": _Spec(
        (28, 28, 1), 10, url="https://github.com/zalandoresearch/fashion-mnist#get-the-data"),
    "cifar10": _Spec(
        (32, 32, 3), 10, "cifar-10-batches-py", "cifar-10-python.tar.gz",
        tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",),
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    "cifar100": _Spec(
        (32, 32, 3), 100, "cifar-100-python", "cifar-100-python.tar.gz", ("train",), ("test",),
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
}
SUPPORTED_NAMES = tuple(_SPECS)

# Known-good SHA256 per dataset and file name. MNIST / Fashion-MNIST .gz: the
# first value is the original distribution (TFDS url_checksums); the second MNIST
# value is the gzip-recompressed copy in ../shared/data (its SHA256SUMS). Raw
# MNIST IDX: the decompressed payload of that copy. CIFAR tarballs: the hashes
# Keras verifies its downloads against (the python versions, not the binary ones).
_KNOWN_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": {
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971"},
        "train-labels-idx1-ubyte.gz": {
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203"},
        "t10k-images-idx3-ubyte.gz": {
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be"},
        "t10k-labels-idx1-ubyte.gz": {
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b"},
        "train-images-idx3-ubyte": {
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"},
        "train-labels-idx1-ubyte": {
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"},
        "t10k-images-idx3-ubyte": {
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"},
        "t10k-labels-idx1-ubyte": {
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": {
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"},
        "train-labels-idx1-ubyte.gz": {
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"},
        "t10k-images-idx3-ubyte.gz": {
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"},
        "t10k-labels-idx1-ubyte.gz": {
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"},
    },
    "cifar10": {"cifar-10-python.tar.gz": {
        "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"}},
    "cifar100": {"cifar-100-python.tar.gz": {
        "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7"}},
}
_HASH_CACHE = {}  # (path, size, mtime_ns) -> sha256 hex; avoids re-hashing on reload


def _sha256(path):
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASH_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _HASH_CACHE[key] = digest.hexdigest()
    return _HASH_CACHE[key]


def _sums_file_hash(path):
    """The hash listed for `path` in a `SHA256SUMS` beside it, or None."""
    sums = path.parent / "SHA256SUMS"
    if not sums.is_file():
        return None
    try:
        text = sums.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetIntegrityError(
            f"{sums} cannot be read as a checksum list ({type(error).__name__}: {error}). "
            "It should hold lines '<sha256>  <file name>' (as `sha256sum` writes); fix or "
            "delete it.") from None
    for line in text.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[1].strip().lstrip("*").removeprefix("./") == path.name:
            return parts[0].lower()
    return None


def _verify(path, name):
    """Checks `path` against a SHA256SUMS beside it and the official hashes."""
    checks = []
    listed = _sums_file_hash(path)
    if listed:
        checks.append((f"{path.parent / 'SHA256SUMS'}", {listed}))
    known = _KNOWN_SHA256[name].get(path.name)
    if known:
        checks.append((f"the official {name} checksums", known))
    for origin, accepted in checks:
        actual = _sha256(path)
        if actual not in accepted:
            raise DatasetIntegrityError(
                f"SHA256 mismatch for {path}: expected {' or '.join(sorted(accepted))} "
                f"(from {origin}), got {actual}. The file is corrupted, truncated or not "
                f"the genuine {name} file; re-download it, or pass verify=False to skip.")


def _locate(name, directory):
    """The dataset's files inside `directory`, or None."""
    spec = _SPECS[name]
    if name in ("mnist", "fashion_mnist"):
        files = []
        for stem in _MNIST_STEMS:
            found = [p for p in (directory / f"{stem}.gz", directory / stem) if p.is_file()]
            if not found:
                return None
            files.append(found[0])
        return files
    for folder in (directory / spec.folder, directory):
        if all((folder / m).is_file() for m in spec.train_members + spec.test_members):
            return folder
    return directory / spec.tarball if (directory / spec.tarball).is_file() else None


def _missing(name, directory):
    """What `_locate` did not find in `directory`, as one line of text."""
    spec = _SPECS[name]
    if not directory.is_dir():
        return "folder does not exist"
    if name in ("mnist", "fashion_mnist"):
        absent = [f"{stem}(.gz)" for stem in _MNIST_STEMS
                  if not any((directory / n).is_file() for n in (f"{stem}.gz", stem))]
        return "missing " + ", ".join(absent)
    members = spec.train_members + spec.test_members
    # Report the extracted copy that is most nearly complete (the folder wins ties).
    folder = max((directory / spec.folder, directory),
                 key=lambda f: sum((f / m).is_file() for m in members))
    absent = [str((folder / m).relative_to(directory)) for m in members
              if not (folder / m).is_file()]
    return f"missing {spec.tarball}, or the extracted {', '.join(absent)}"
