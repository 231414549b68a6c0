"""Writing files without following links: every output of the package goes through here.

A run or tuning folder, an output folder or a store's folder may hold a symbolic
link planted where the package writes (a lock, a checkpoint's temporary name,
`state.json`, a table). Writing through such a link would truncate or overwrite
whatever it points to. So:

- `write_atomic` writes to a fresh temporary file created with `O_EXCL` (a new
  random name in the target folder, never an existing path or link), then
  renames it over the target: the rename replaces a link itself, never its
  target, and a killed process leaves the previous file intact;
- `open_lock` opens a lock file with `O_NOFOLLOW` and refuses a link in one line;
- `save_figure` renders a matplotlib figure in memory and writes it atomically.

Example:

```python
safe_files.write_atomic(folder / "state.json", text)
with safe_files.open_lock(folder / ".lock") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
```
"""

import io
import os
import pathlib
import tempfile


class LinkedPathError(ValueError):
    """A path the package writes or reads as its own is a symbolic link."""


def refuse_link(path, what="file"):
    """Raises `LinkedPathError` if `path` is a symbolic link (dangling or not)."""
    path = pathlib.Path(path)
    if path.is_symlink():
        raise LinkedPathError(
            f"{path} is a symbolic link (to {os.readlink(path)}); pepita writes its {what} "
            "there itself and never through a link. Remove the link and rerun.")


def write_atomic(path, data, mode=0o644):
    """Writes `data` (str or bytes) to `path` atomically, never through a link.

    Args:
        path: the target file; its folder must exist.
        data: the content; str is encoded as UTF-8.
        mode: permission bits of the new file.
    """
    path = pathlib.Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if path.is_dir() and not path.is_symlink():
        raise IsADirectoryError(f"{path} is a folder; pepita writes a file there.")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)  # replaces a link at `path`, not its target
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def open_lock(path):
    """Opens (creating) the lock file `path` for reading and writing, never through a link.

    Returns:
        A text file object positioned at the start.

    Raises:
        LinkedPathError: if `path` is a symbolic link.
    """
    path = pathlib.Path(path)
    refuse_link(path, "lock file")
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        if path.is_symlink():  # planted between the check and the open
            refuse_link(path, "lock file")
        raise error
    return os.fdopen(descriptor, "r+")


def save_figure(figure, path, **kwargs):
    """`figure.savefig(path, **kwargs)`, written atomically and never through a link.

    The format follows the suffix of `path` (`.png`, `.svg`, `.pdf`).
    """
    path = pathlib.Path(path)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix.lstrip(".") or "png", **kwargs)
    write_atomic(path, buffer.getvalue())
