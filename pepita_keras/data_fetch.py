"""`pepita data`: where each dataset is looked for, whether it is there, and fetching it.

`status(data_dir)` lists, per dataset, the folders searched (in the loader's
order: the given folder or `$PEPITA_DATA_DIR`, each as `<folder>/<name>` then
`<folder>`), where the files were found and whether their SHA-256 matches a
known copy. `fetch(name, data_dir)` downloads the original files from their
usual source into `<data_dir>/<name>/`, verifies each against its published
checksum before it takes its final name (a partial or wrong download never
looks like data), and, offline, says exactly which files to put where.

Keras-free: answers without loading TensorFlow.

Example:

```python
from pepita_keras import data_fetch

for line in data_fetch.status_lines("/data"):
    print(line)
data_fetch.fetch("mnist", "/data")
```
"""

import hashlib
import os
import pathlib
import socket
import urllib.error
import urllib.parse
import urllib.request

from pepita_keras import dataset_files

MIRROR_ENV = "PEPITA_DATA_MIRROR"
# name -> (base URL, file names); the checksums are dataset_files._KNOWN_SHA256's.
SOURCES = {
    "mnist": ("https://storage.googleapis.com/cvdf-datasets/mnist/",
              tuple(f"{stem}.gz" for stem in dataset_files._MNIST_STEMS)),
    "fashion_mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                      tuple(f"{stem}.gz" for stem in dataset_files._MNIST_STEMS)),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/", ("cifar-10-python.tar.gz",)),
    "cifar100": ("https://www.cs.toronto.edu/~kriz/", ("cifar-100-python.tar.gz",)),
}


def searched_folders(name, data_dir=None):
    """The folders the loader looks in for `name`, in order (given folder, else the env var)."""
    root = data_dir or os.environ.get(dataset_files.ENV_VAR)
    if not root:
        return []
    root = pathlib.Path(root)
    return [root / name, root]


def _check(path, name):
    try:
        dataset_files._verify(path, name)
    except dataset_files.DatasetIntegrityError:
        return "SHA-256 MISMATCH"
    known = dataset_files._KNOWN_SHA256[name].get(path.name)
    listed = dataset_files._sums_file_hash(path)
    return "sha256 ok" if known or listed else "no known checksum"


def status(data_dir=None):
    """`{name: {"searched": [(folder, found or why not)], "files": {file: check}}}`."""
    report = {}
    for name in dataset_files.SUPPORTED_NAMES:
        searched, files = [], {}
        for folder in searched_folders(name, data_dir):
            found = dataset_files._locate(name, folder)
            if found is None:
                searched.append((folder, dataset_files._missing(name, folder)))
                continue
            paths = found if isinstance(found, list) else (
                [found] if found.is_file() else sorted(p for p in found.iterdir() if p.is_file()))
            searched.append((folder, "found"))
            files = {str(path): _check(path, name) for path in paths}
            break
        report[name] = {"searched": searched, "files": files}
    return report


def status_lines(data_dir=None):
    """`status` as the lines `pepita data` prints."""
    lines = []
    if not searched_folders("mnist", data_dir):
        lines.append(f"No data folder: pass --data-dir DIR or set {dataset_files.ENV_VAR}; "
                     "training would fall back to TensorFlow Datasets.")
    for name, entry in status(data_dir).items():
        state = "found" if entry["files"] else "not found"
        lines.append(f"{name}: {state}")
        for folder, outcome in entry["searched"]:
            lines.append(f"  {folder}: {outcome}")
        for path, check in entry["files"].items():
            lines.append(f"    {pathlib.Path(path).name}: {check}")
    return lines


def _online(url, timeout=3.0):
    parsed = urllib.parse.urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_help(name, folder, base, files):
    where = "\n".join(f"  {folder / file}  (from {base}{file})" for file in files)
    return (f"cannot reach {base} (offline?). Put these files there by hand, then run "
            f"`pepita data --data-dir {folder.parent}` to check them:\n{where}")


def fetch(name, data_dir, base_url=None, checksums=None, timeout=60, say=print):
    """Downloads dataset `name` into `<data_dir>/<name>/`, each file verified before it lands.

    Args:
        name: one of `SOURCES`.
        data_dir: the data folder (created).
        base_url: where the files are (default: `$PEPITA_DATA_MIRROR`, else the
            dataset's usual source).
        checksums: `{file name: sha256}` to verify against (default: the
            published ones in `dataset_files`).
        timeout: seconds per connection attempt.
        say: progress printer.

    Returns:
        The dataset's folder.

    Raises:
        ValueError: unknown name; offline (with the files to put where);
            a download whose SHA-256 is not the published one (deleted).
    """
    if name not in SOURCES:
        raise ValueError(f"Unknown dataset {name!r}; known: {', '.join(SOURCES)}.")
    default_base, files = SOURCES[name]
    base = base_url or os.environ.get(MIRROR_ENV) or default_base
    base = base if base.endswith("/") else base + "/"
    folder = pathlib.Path(data_dir) / name
    if not _online(base, timeout=min(timeout, 5)):
        raise ValueError(_offline_help(name, folder, base, files))
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        target = folder / file
        expected = (checksums or {}).get(file) or dataset_files._KNOWN_SHA256[name].get(file)
        expected = {expected} if isinstance(expected, str) else set(expected or ())
        if target.is_file() and (not expected or dataset_files._sha256(target) in expected):
            say(f"{target}: already there, checksum ok")
            continue
        partial = target.with_name(target.name + ".part")
        digest = hashlib.sha256()
        if partial.is_symlink():
            partial.unlink()  # a planted link: never written through
        try:
            with urllib.request.urlopen(base + file, timeout=timeout) as response, \
                    os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                                      | os.O_NOFOLLOW, 0o644), "wb") as out:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, OSError) as error:
            partial.unlink(missing_ok=True)
            raise ValueError(f"downloading {base + file} failed ({error}); "
                             + _offline_help(name, folder, base, files)) from None
        if expected and digest.hexdigest() not in expected:
            partial.unlink(missing_ok=True)
            raise ValueError(
                f"{base + file} has SHA-256 {digest.hexdigest()}, not the published "
                f"{' or '.join(sorted(expected))}; deleted. Try again, or another mirror "
                f"(${MIRROR_ENV}).")
        partial.replace(target)
        say(f"{target}: downloaded, sha256 ok" if expected else f"{target}: downloaded")
    return folder
