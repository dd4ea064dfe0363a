"""Every file the package reads or writes goes through here, and through `tf.io.gfile`.

So every directory flag may be a local path or a `gs://`, `hdfs://`, `ram://`
(in-memory, for tests) or, with tensorflow-io installed, `s3://` URL.

Files that must never be seen half written (JSON artifacts, shards) are written
to a temporary sibling and renamed into place (on object stores a file rename
is a copy of one object, which appears whole). Directories are renamed into
place only where that is atomic (`renames_directories_atomically`: local
paths); on URL paths a directory is written where it will be read, and a
reader trusts it only once its completion marker exists (`stats.json` of a
dataset, `metrics.json` of a run, a pairs summary, a version's
`saved_model.pb`): those markers are always written last.
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import posixpath
import re
import socket
import time
import uuid
from typing import Any, Iterable, Iterator, Mapping

from sllmr_tf.errors import ArtifactError

_READ_BUFFER = 1 << 20
_PREFIX_LISTING_SCHEME = "ram://"  # TensorFlow's in-memory filesystem lists and finds by name prefix
# What a refused write raises: os (local directories) by errno, tf.io.gfile by error class.
_REFUSED_WRITES = {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                   errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on device",
                   errno.EDQUOT: "disk quota exceeded"}


def _gfile():
    """tf.io.gfile, imported on first use: modules that only name paths stay light to import."""
    import tensorflow as tf

    return tf.io.gfile


def is_url(path: str) -> bool:
    """True for scheme://... paths (gs://, hdfs://, ram://, s3://)."""
    return "://" in path


def join(*parts: str) -> str:
    return posixpath.join(*parts) if is_url(parts[0]) else os.path.join(*parts)


def absolute(path: str) -> str:
    """An absolute local path; URLs are already absolute and stay as they are."""
    return path if is_url(path) else os.path.abspath(path)


def dirname(path: str) -> str:
    return posixpath.dirname(path.rstrip("/")) if is_url(path) else os.path.dirname(os.path.abspath(path))


def basename(path: str) -> str:
    return posixpath.basename(path.rstrip("/"))


def renames_directories_atomically(path: str) -> bool:
    """Whether a finished directory can be published at `path` by renaming a temporary one.

    True for local paths only. GCS and S3 rename a directory object by object (a copy and a
    delete each), ram:// cannot rename one (the files stay under the old names), and HDFS,
    which can, is not told apart: one rule for every URL scheme.
    """
    return not is_url(path)


def exists(path: str) -> bool:
    return _gfile().exists(path)


def isdir(path: str) -> bool:
    return _gfile().isdir(path)


@contextlib.contextmanager
def writing(path: str) -> Iterator[None]:
    """Turns a write the filesystem refuses (no permission, read-only, full) into one
    ArtifactError naming `path`; every other error passes unchanged.

    Raises:
        ArtifactError: "cannot write <path>: <reason>; ...".
    """
    import tensorflow as tf

    try:
        yield
    except (tf.errors.PermissionDeniedError, tf.errors.ResourceExhaustedError) as error:
        reason = error.message.rsplit("; ", 1)[-1].lower()
        raise ArtifactError(f"cannot write {path}: {reason}; give a writable directory with free space") from None
    except OSError as error:
        if error.errno not in _REFUSED_WRITES:
            raise
        raise ArtifactError(f"cannot write {path}: {_REFUSED_WRITES[error.errno]}; give a writable "
                            "directory with free space") from None


def makedirs(path: str) -> None:
    """Create a directory and its parents. Local ones get the mode the umask leaves (as files
    do), so a team with umask 002 can share a data dir; tf.io.gfile would make them 0755."""
    with writing(path):
        if is_url(path):
            _gfile().makedirs(path)
        else:
            os.makedirs(path, exist_ok=True)


def listdir(path: str) -> list[str]:
    """Entry names of a directory, sorted, without trailing slashes (and without ram://'s phantom
    entries, see `walk`)."""
    names = sorted(name.rstrip("/") for name in _gfile().listdir(path))
    if path.startswith(_PREFIX_LISTING_SCHEME):
        names = [name for name in names if exists(join(path, name))]
    return names


def glob(pattern: str) -> list[str]:
    return sorted(_gfile().glob(pattern))


def walk(root: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """(folder, sub-folder names, file names) of `root` and every folder below it, top down.

    ram:// lists by name prefix: beside `assets/` and `assets.extra/` (names TF Serving fixes) it
    lists a phantom `assets/.extra`, which does not exist. Such entries are left out there."""
    for folder, dirs, files in _gfile().walk(root):
        if folder.startswith(_PREFIX_LISTING_SCHEME):
            dirs[:] = [name for name in dirs if exists(join(folder, name))]
            files = [name for name in files if exists(join(folder, name))]
        yield folder, dirs, files


def find(root: str, filename: str) -> list[str]:
    """Every file named `filename` below `root` (recursively), sorted."""
    found = []
    for folder, _, files in walk(root):
        found += [join(folder, filename) for name in files if name == filename]
    return sorted(found)


def size(path: str) -> int:
    return int(_gfile().stat(path).length)


def remove(path: str) -> None:
    _gfile().remove(path)


def rmtree(path: str) -> None:
    """Remove a directory and everything below it, if it exists (on ram://, folder by folder from
    the deepest, as its own recursive delete trips over the phantom entries `walk` leaves out)."""
    if not exists(path):
        return
    folders = [folder for folder, _, _ in walk(path)] if path.startswith(_PREFIX_LISTING_SCHEME) else [path]
    for folder in reversed(folders):
        _gfile().rmtree(folder)


def rename(source: str, target: str, overwrite: bool = False) -> None:
    """Move a file or directory (atomic on local disks and HDFS)."""
    _gfile().rename(source, target, overwrite=overwrite)


def temporary_sibling(path: str, tag: str = "tmp") -> str:
    """A name beside `path` that no other writer uses: `.<tag>-<random>-<name>`. The real name is
    not a prefix of it, as ram:// answers `exists` (and lists) by name prefix."""
    return join(dirname(path), f".{tag}-{uuid.uuid4().hex[:12]}-{basename(path)}")


def move_directory(source: str, target: str, last: str) -> None:
    """Put the finished directory `source` at `target` (which must not exist): a rename where that
    is atomic, else a copy of every file with the one named `last` (the completion marker)
    copied after all others, and `source` removed."""
    if renames_directories_atomically(target):
        rename(source, target)
        return
    files = [(folder, name) for folder, _, names in walk(source) for name in names]
    for folder, name in sorted(files, key=lambda file: file[1] == last):
        copied = join(target, posixpath.relpath(join(folder, name), source.rstrip("/")))
        makedirs(dirname(copied))
        with writing(copied):
            _gfile().copy(join(folder, name), copied, overwrite=True)
    rmtree(source)


def owned_temporary_sibling(path: str, tag: str) -> str:
    """A name beside `path` for this process's unfinished work, saying whose it is:
    `<path>.<tag>-<host>-<pid>-<unix start time>-<random>`, so that a later run can
    recognise one left by a killed process (`remove_abandoned_siblings`)."""
    return (f"{path.rstrip('/')}.{tag}-{socket.gethostname()}-{os.getpid()}-{int(time.time())}-"
            f"{uuid.uuid4().hex[:8]}")


def remove_abandoned_siblings(path: str, tags: Iterable[str], max_age_s: float = 86_400) -> list[str]:
    """Remove what killed runs left beside `path` under `owned_temporary_sibling(path, tag)` names.

    A leftover is abandoned when its process no longer runs on this host, or,
    whatever its host, when it is older than `max_age_s` (a run on another host
    cannot be checked, so it gets a day). Running processes' work is kept.

    Returns:
        The paths removed.
    """
    parent = dirname(path)
    if not exists(parent):
        return []
    owned = re.compile(rf"^{re.escape(basename(path))}\.(?:{'|'.join(map(re.escape, tags))})"
                       r"-(?P<host>.+)-(?P<pid>\d+)-(?P<started>\d+)-[0-9a-f]{8}$")
    removed = []
    for name in listdir(parent):
        match = owned.match(name)
        if match is None:
            continue
        dead = match["host"] == socket.gethostname() and not _running(int(match["pid"]))
        if dead or time.time() - int(match["started"]) > max_age_s:
            rmtree(join(parent, name))
            removed.append(join(parent, name))
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def open_file(path: str, mode: str = "r"):
    """A file object for `path` ("r", "rb", "w", "wb", "a", "ab")."""
    return _gfile().GFile(path, mode)


class _RawGFile(io.RawIOBase):
    """GFile as a raw stream, so io.BufferedReader can serve lines fast.

    GFile's own line iteration is about 20x slower than a local file's; reading
    it in large blocks through a buffer is within 2x."""

    def __init__(self, path: str):
        self._file = _gfile().GFile(path, "rb")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._file.seek(offset, whence)
        return self._file.tell()

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer) -> int:
        data = self._file.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._file.close()
        super().close()


def open_binary_stream(path: str) -> io.BufferedReader:
    """A buffered, seekable binary reader of `path`, fast to iterate line by line."""
    return io.BufferedReader(_RawGFile(path), _READ_BUFFER)


def read_text(path: str) -> str:
    with open_file(path, "r") as f:
        return f.read()


def write_atomic(path: str, data: str | bytes) -> None:
    """Write the whole file under a temporary name, then rename it into place; a refused write
    leaves no temporary file and raises ArtifactError (`writing`)."""
    makedirs(dirname(path))
    tmp = temporary_sibling(path)
    try:
        with writing(path), open_file(tmp, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        with writing(path):
            rename(tmp, path, overwrite=True)
    except ArtifactError:
        if exists(tmp):
            remove(tmp)
        raise


def write_json(path: str, value: Mapping[str, Any]) -> None:
    """Write JSON atomically: a reader never sees half a file."""
    write_atomic(path, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str) -> dict | None:
    """The JSON object in `path`, or None if there is no such file."""
    if not exists(path):
        return None
    return json.loads(read_text(path))


def read_jsonl(path: str) -> Iterator[dict]:
    """The objects of a JSON-lines file, skipping blank lines."""
    with open_binary_stream(path) as f:
        for line in f:
            if line.strip():
                yield json.loads(line)
