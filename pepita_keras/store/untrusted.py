"""Reading another store's values and archives as data, never as code or paths to follow.

A store or an artifact archive may come from someone else (`pepita
merge-store`, then `pepita migrate-store`). Nothing read from it may choose
which Python file runs, which local folder is read, or where a file is
written. The checks here are applied before any file operation:

- a run id used in a path must be MLflow's 32 hexadecimal digits;
- a config named by a run's `pepita.cell` tag is looked up only by name among
  the config folders (`is_config_name`), never as a path;
- a folder copied from another store must lie inside that store's own folder,
  and is copied as regular files only (no links, devices or pipes), within a
  size cap;
- an archive is read entry by entry before anything is extracted: links,
  devices, absolute names and `..` are refused, and so is an archive whose
  content exceeds the cap.

Every refusal is an `UntrustedInputError` (a `ValueError`) whose message names
the value and what to do, so the command line prints it as one line.

Example:

```python
from pepita_keras.store import untrusted

untrusted.check_run_id("0123456789abcdef0123456789abcdef", "source store")
untrusted.extract_archive("gpu/artifacts.tgz", "/tmp/scratch")
```
"""

import bz2
import gzip
import lzma
import os
import pathlib
import re
import shutil
import stat
import tarfile

# 1 GiB: the committed store's artifacts are ~20 MB; a real archive from a GPU
# machine is of that order, so the cap only stops archives that expand wildly.
DEFAULT_MAX_BYTES = 1 << 30
MAX_ENTRIES = 200_000

_RUN_ID = re.compile(r"[0-9a-f]{32}")
_CONFIG_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


class UntrustedInputError(ValueError):
    """A value or file from another store or archive was refused."""


def check_run_id(run_id, where):
    """Refuses a run id that is not MLflow's 32 hexadecimal digits.

    Args:
        run_id: the id read from a store.
        where: what it was read from, for the message.

    Returns:
        `run_id`, unchanged.

    Raises:
        UntrustedInputError: if it could name anything but one run folder.
    """
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise UntrustedInputError(
            f"{where}: run id {run_id!r} is not an MLflow run id (32 hexadecimal digits); "
            "refusing to use it in a file path. Is this store from MLflow?")
    return run_id


# What a store's text may not carry into a generated page: markup, table and code delimiters.
_DISPLAY_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "\\|", "`": "'", "[": "\\[",
                    "]": "\\]"}


def display_text(value, limit=300):
    """`value` as inert one-line text for a generated Markdown/HTML page.

    Store text (run names, tags, params of a merged store) is data: control
    characters and line breaks become spaces, and `& < > | ` [ ]` are escaped,
    so it can neither open markup (a `<script>` survives `mkdocs build` raw)
    nor break a table row or a code span. Longer text is cut at `limit`.
    """
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in str(value)).split())
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return "".join(_DISPLAY_ESCAPES.get(ch, ch) for ch in text)


def integer_tag(tags, key, where):
    """`int(tags[key])`, None when absent; UntrustedInputError naming the run when not an integer."""
    value = tags.get(key)
    if value is None or value == "":
        return None
    try:
        return int(str(value))
    except ValueError:
        raise UntrustedInputError(
            f"{where}: tag {key}={display_text(value, 40)!r} is not an integer") from None


def is_config_name(name):
    """Whether `name` can only be a config's name (letters, digits, `_`, `-`), never a path."""
    return isinstance(name, str) and bool(_CONFIG_NAME.fullmatch(name))


def is_inside(path, root):
    """Whether `path`, with links resolved, lies inside `root` (or is `root`)."""
    try:
        pathlib.Path(path).resolve().relative_to(pathlib.Path(root).resolve())
    except ValueError:
        return False
    return True


def _refuse_special(path, what):
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        raise UntrustedInputError(
            f"{what}: {path} is a symbolic link; links are never followed out of another "
            "store. Replace it by the file it points to, or leave it out.")
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UntrustedInputError(
            f"{what}: {path} is not a regular file or folder (a device, pipe or socket); "
            "refusing to copy it.")
    return mode


def regular_files(folder, what, max_bytes=DEFAULT_MAX_BYTES):
    """The regular files under `folder`, after refusing links, devices and oversize content.

    Args:
        folder: a local folder read from another store.
        what: what it is, for the messages.
        max_bytes: the most bytes its files may hold together.

    Returns:
        A list of `(path, relative path)` of its regular files.

    Raises:
        UntrustedInputError: on a link, a special file, or more than `max_bytes`.
    """
    folder = pathlib.Path(folder)
    _refuse_special(folder, what)
    found, total = [], 0
    for here, dirs, files in os.walk(folder, followlinks=False):
        for name in sorted(dirs) + sorted(files):
            path = pathlib.Path(here) / name
            mode = _refuse_special(path, what)
            if stat.S_ISREG(mode):
                total += os.lstat(path).st_size
                found.append((path, path.relative_to(folder)))
        if total > max_bytes:
            raise UntrustedInputError(
                f"{what}: {folder} holds more than {max_bytes:,} bytes; refusing to copy it "
                "(raise the cap with --max-artifact-bytes if it is genuine).")
    return found


def copy_regular_files(source, destination, what, max_bytes=DEFAULT_MAX_BYTES):
    """Copies the regular files of `source` into `destination` (see `regular_files`).

    Returns:
        The number of files copied.
    """
    files = regular_files(source, what, max_bytes)
    destination = pathlib.Path(destination)
    for path, relative in files:
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target, follow_symlinks=False)
    return len(files)


def extract_archive(archive, into, max_bytes=DEFAULT_MAX_BYTES):
    """Extracts a tar archive of artifact folders after checking every entry.

    Args:
        archive: a `.tar`, `.tgz` or `.tar.gz` file.
        into: the folder to extract into (created).
        max_bytes: the most bytes the extracted files may hold together.

    Raises:
        UntrustedInputError: if the archive is unreadable, or holds a link, a
            device, an absolute name, a name with `..`, more than
            `MAX_ENTRIES` entries or more than `max_bytes`; nothing is
            extracted then.
    """
    archive = pathlib.Path(archive)
    if not archive.is_file():
        raise UntrustedInputError(f"artifact archive {archive} does not exist or is not a file.")
    _check_header_sizes(archive, max_bytes)
    try:
        with tarfile.open(archive) as tar:
            members = _checked_members(tar, archive, max_bytes)
            pathlib.Path(into).mkdir(parents=True, exist_ok=True)
            tar.extractall(into, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as error:
        reason = " ".join(str(error).split())  # one line: tarfile lists each method tried
        raise UntrustedInputError(
            f"artifact archive {archive} cannot be read as a tar archive ({reason}); "
            "make it with `tar czf artifacts.tgz mlartifacts`.") from None


# The largest extended header (pax, GNU long name) an artifact archive may carry: tarfile
# reads each one whole into memory, so a small archive can name a header of gigabytes.
MAX_HEADER_BYTES = 1 << 20


def _decompressed(archive):
    """The archive's bytes as a stream, decompressed by its magic number (gzip, bzip2, xz)."""
    with open(archive, "rb") as file:
        magic = file.read(6)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.open(archive, "rb")
    if magic.startswith(b"BZh"):
        return bz2.open(archive, "rb")
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.open(archive, "rb")
    return open(archive, "rb")


def _check_header_sizes(archive, max_bytes):
    """Walks the tar headers (512-byte blocks) before tarfile reads anything whole.

    Refuses an extended header over `MAX_HEADER_BYTES` and an archive whose content
    (headers and data) decompresses to more than `max_bytes` plus its headers' share, reading
    in bounded chunks: nothing is held in memory but one chunk.
    """
    limit = max_bytes + MAX_ENTRIES * 1024 + MAX_HEADER_BYTES
    total = 0
    try:
        with _decompressed(archive) as stream:
            while True:
                header = stream.read(512)
                total += len(header)
                if len(header) < 512 or not header.strip(b"\0"):
                    return  # end of archive (or a short one: tarfile names it)
                kind = header[156:157]
                size_field = header[124:136]
                if size_field[:1] and size_field[0] & 0x80:  # base-256 (GNU) size
                    size = int.from_bytes(size_field[1:], "big")
                else:
                    digits = size_field.split(b"\0", 1)[0].strip()
                    size = int(digits or b"0", 8)
                if kind in (b"x", b"g", b"L", b"K") and size > MAX_HEADER_BYTES:
                    raise UntrustedInputError(
                        f"artifact archive {archive}: an extended header declares {size:,} "
                        f"bytes (more than {MAX_HEADER_BYTES:,}); refusing the archive.")
                remaining = -(-size // 512) * 512
                total += remaining
                if total > limit:
                    raise UntrustedInputError(
                        f"artifact archive {archive} expands to more than {max_bytes:,} bytes; "
                        "refusing it (raise the cap with --max-artifact-bytes if it is "
                        "genuine).")
                while remaining:
                    chunk = stream.read(min(remaining, 1 << 16))
                    if not chunk:
                        return
                    remaining -= len(chunk)
    except (OSError, EOFError, ValueError, lzma.LZMAError) as error:
        reason = " ".join(str(error).split())
        raise UntrustedInputError(
            f"artifact archive {archive} cannot be read as a tar archive ({reason}); "
            "make it with `tar czf artifacts.tgz mlartifacts`.") from None


def _checked_members(tar, archive, max_bytes):
    members, total = [], 0
    for member in tar:
        name = member.name
        parts = pathlib.PurePosixPath(name).parts
        if name.startswith(("/", "\\")) or ".." in parts or re.match(r"[A-Za-z]:", name):
            raise UntrustedInputError(
                f"artifact archive {archive}: entry {name!r} would be written outside the "
                "folder it is extracted into; refusing the archive.")
        if member.issym() or member.islnk():
            raise UntrustedInputError(
                f"artifact archive {archive}: entry {name!r} is a link; refusing the archive "
                "(archive the files themselves, e.g. `tar czhf`).")
        if not (member.isfile() or member.isdir()):
            raise UntrustedInputError(
                f"artifact archive {archive}: entry {name!r} is a device, pipe or other "
                "special file; refusing the archive.")
        total += member.size
        members.append(member)
        if total > max_bytes or len(members) > MAX_ENTRIES:
            raise UntrustedInputError(
                f"artifact archive {archive} expands to more than {max_bytes:,} bytes or "
                f"{MAX_ENTRIES:,} entries; refusing it (raise the cap with "
                "--max-artifact-bytes if it is genuine).")
    return members
