"""Atomic file writes: a killed process leaves the old file or the new one, never half of one.

Each writer puts the bytes into a temporary file in the destination folder (same file
system, so the final ``os.replace`` is atomic), flushes and fsyncs it, then renames it.
JSON goes through :func:`core.utils.json_safe.json_safe`, so every file written is strict JSON.
"""

from __future__ import annotations

import errno
import io
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

import numpy as np

from core.utils.json_safe import json_safe

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_save_npz",
    "atomic_torch_save",
    "sha256_file",
    "open_regular_file",
]


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(fileobj)`` on a temporary file, then atomically move it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    """``obj`` as strict JSON (:func:`~core.utils.json_safe.json_safe`: NaN / inf → null, numpy, tensors,
    paths) to ``path``; a value JSON cannot hold raises TypeError before anything is written."""
    text = json.dumps(json_safe(obj), indent=indent, sort_keys=False, allow_nan=False) + "\n"
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npz(path: str | os.PathLike, compressed: bool = False, **arrays: np.ndarray) -> Path:
    """``np.savez`` to ``path`` atomically (the name is kept exactly, no ``.npz`` appended)."""
    buffer = io.BytesIO()
    if compressed:
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
    else:
        np.savez(buffer, **arrays)  # type: ignore[arg-type]  # likewise
    return atomic_write_bytes(path, buffer.getvalue())


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    import torch

    return atomic_write(path, lambda handle: torch.save(obj, handle))


def open_regular_file(path: str | os.PathLike) -> IO[bytes]:
    """Open ``path`` for reading only if it is a regular file (links followed).

    A FIFO named like a data file would block ``open`` until some writer appears (a hung run), and
    a device would stream forever: the file is opened non-blocking and checked before any read, so
    the check cannot be raced by a rename between a look and the open. Raises ``OSError``.
    """
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "folder" if stat.S_ISDIR(mode) else "FIFO, socket or device"
            raise OSError(errno.EINVAL, f"not a regular file (a {kind})", os.fspath(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a regular file's bytes, read in blocks so a large mesh is never held in memory twice."""
    import hashlib

    digest = hashlib.sha256()
    with open_regular_file(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
