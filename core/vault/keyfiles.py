"""Owner-only key files: exclusive creation, atomic replacement, change detection, locking."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

KEY_FILE_MODE = 0o600

# (device, inode, mtime ns, size): an os.replace changes the inode, an in-place edit the mtime.
FileSignature = tuple[int, int, int, int]


def _signature(st: os.stat_result) -> FileSignature:
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_exclusive(path: Path, content: bytes) -> None:
    """Create ``path`` with mode 0600 holding ``content``; FileExistsError if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, KEY_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            # The umask can only narrow the mode; set it explicitly anyway.
            os.fchmod(handle.fileno(), KEY_FILE_MODE)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def replace_atomically(path: Path, content: bytes) -> None:
    """Replace ``path`` by a fully written 0600 file, so readers never see a partial one."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp_path = Path(tmp_name)
    try:
        os.fchmod(fd, KEY_FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def read_key_file(path: Path) -> tuple[bytes, FileSignature]:
    """Read a key file and its signature; refuse files others may write (planted keys)."""
    with path.open("rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("key file is not a regular file")
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise PermissionError("key file is writable by group or others; chmod 600 it")
        return handle.read(), _signature(st)


def file_signature(path: Path) -> FileSignature | None:
    """Return the file's current signature (one stat call), or None when it is missing."""
    try:
        return _signature(os.stat(path))
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def directory_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on the key file's directory (serialises rotations)."""
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
