"""Files a user names: checks on where files will be written, made before any work is
done, and reading a file that may be a pipe, a device or huge."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO


class UnreadableFile(ValueError):
    """A named file that cannot be read as asked; the message names it and says why."""


def open_regular_file(path: Path, what: str = "file") -> BinaryIO:
    """`path` opened for reading in binary, refused (`UnreadableFile`) unless it is a
    regular file: opened without blocking, so a named pipe or a device (`/dev/zero`) is
    refused at once instead of hanging or filling memory. `what` names the file in messages
    ("prompts file")."""
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise UnreadableFile(f"{what} {name!r} does not exist") from None
    except IsADirectoryError:
        raise UnreadableFile(f"{what} {name!r} is a directory") from None
    except OSError as exc:
        raise UnreadableFile(f"cannot read {what} {name!r}: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UnreadableFile(f"{what} {name!r} is a directory")
        raise UnreadableFile(f"{what} {name!r} is not a regular file (a pipe, socket or device)")
    return os.fdopen(fd, "rb")


def read_regular_file(path: Path, limit: int, what: str = "file") -> bytes:
    """The bytes of `path`, a regular file (see `open_regular_file`) of at most `limit`
    bytes (`UnreadableFile` else)."""
    with open_regular_file(path, what) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise UnreadableFile(
                f"cannot read {what} {str(path)!r}: {exc.strerror or exc}"
            ) from None
    if len(data) > limit:
        raise UnreadableFile(f"{what} {str(path)!r} is larger than {_size(limit)}")
    return data


def read_text_file(path: Path, limit: int, what: str = "file") -> str:
    """`read_regular_file` decoded as UTF-8 (`UnreadableFile` when it is not)."""
    data = read_regular_file(path, limit, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(
            f"cannot read {what} {str(path)!r}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None


def _size(limit: int) -> str:
    return f"{limit // 2**20} MiB" if limit % 2**20 == 0 else f"{limit} bytes"


def creation_problem(path: Path) -> str | None:
    """Why nothing can be created at `path`, which need not exist yet (None: it can).

    The nearest folder that exists, `path` itself or one above it, must be a directory the
    user may write in. Creates nothing.
    """
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{str(existing)!r} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot create files in {str(existing)!r}"
    return None
