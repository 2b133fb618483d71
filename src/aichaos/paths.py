"""Checks on where files will be written, made before any work is done."""

from __future__ import annotations

import os
from pathlib import Path


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
