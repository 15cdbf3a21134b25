"""Atomic writes: outputs appear complete or not at all, and nothing a user already had is lost."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path


class OutputExistsError(FileExistsError):
    pass


@contextlib.contextmanager
def atomic_directory(out: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``out``; on success it replaces ``out`` in one rename.

    On any exception the temporary directory is removed and ``out`` is left exactly as it was. An existing
    ``out`` is refused unless ``overwrite``; then it is moved aside first and deleted only after the new
    directory is in place. The temporary directory sits beside ``out`` so the rename never crosses file
    systems (and, on a cluster, lives on the same shared storage the executors write to).
    """
    out = Path(out).absolute()
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: output already exists (pass --overwrite to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    backup = None
    if out.exists():
        backup = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:12]}"
        os.replace(out, backup)
    os.replace(tmp, out)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def _write_temp(path: Path, data: bytes) -> str:
    """Write ``data`` to a synced temporary sibling of ``path``; returns its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file through a temporary sibling and a rename, so readers never see half a file."""
    tmp = _write_temp(Path(path), data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_create(path: str | Path, data: bytes) -> None:
    """Like :func:`atomic_write_bytes`, but never replaces an existing file (FileExistsError), even in a race:
    the complete temporary file is hard-linked to ``path``, which fails if ``path`` exists."""
    tmp = _write_temp(Path(path), data)
    try:
        os.link(tmp, path)
    finally:
        os.unlink(tmp)
