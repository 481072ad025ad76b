"""The ``.sh3f`` archive of a Sweet Home 3D library: bounded reads and a safe, resumable extraction.

A library is a zip file, and nothing in it is trusted: a member may be damaged (bad deflate data,
a CRC mismatch, a truncated file), declare a size far beyond the real models (a zip bomb: a
360 KB library once wrote 300 MB and used 1 GB of memory), name a path outside its folder
(``../``), or the library itself may be a FIFO or a folder named ``*.sh3f``. So:

- a library is opened only when it is a regular file (:func:`open_library`);
- a member is read only up to :data:`MAX_MEMBER_BYTES`, by its declared size and by what it
  really inflates to (:func:`read_member`); an item's folder is written only within
  :data:`MAX_ITEM_FILES` files and :data:`MAX_ITEM_BYTES` bytes (:func:`item_members`);
- every failure is a :class:`SourceError` naming the library, the member and the reason, which
  the source records for that item (or library) while the others go on;
- an item's folder is written under a name holding a fingerprint of what it is made from
  (:func:`extract_item`), into a hidden ``.NAME.partial`` folder renamed into place when complete.
  A killed run's partial folder is completed by the next run (the name is the same for the same
  inputs); a changed library gets a new folder; nothing the run did not create is ever deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import lzma
import os
import posixpath
import re
import shutil
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Iterable, Iterator

from core.utils.errors import SourceError
from core.utils.io_utils import open_regular_file

__all__ = [
    "MAX_MEMBER_BYTES",
    "MAX_ITEM_BYTES",
    "MAX_ITEM_FILES",
    "ARCHIVE_ERRORS",
    "open_library",
    "read_member",
    "item_members",
    "fingerprint",
    "extract_item",
]

log = logging.getLogger(__name__)

MAX_MEMBER_BYTES = 64 * 2**20
"""Largest file read from a library: 64 MiB (Debian's largest model, Scopia's japaneseMaple.obj, is 8.8 MB)."""
MAX_ITEM_BYTES = 256 * 2**20
"""Largest item folder written (its OBJ, MTL and textures together): 256 MiB."""
MAX_ITEM_FILES = 1000
"""Most files in one item folder (Debian's items have at most a few dozen)."""
EXTRACTION_VERSION = 1
"""Part of every fingerprint: raise it when the files written for the same inputs change."""

ARCHIVE_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    KeyError,
    IndexError,
    struct.error,
    OverflowError,
    MemoryError,
)
"""What ``zipfile`` raises on a damaged archive: bad headers, deflate data, CRCs, encryption, methods."""
_SKIPPED_SUFFIXES = (".html", ".htm", ".txt")
"""An item folder's licence pages: not part of the model."""
_MTL_MAPS = re.compile(r"^\s*(?:map_\w+|bump|disp|decal|refl|norm)\s+(.+)$", re.IGNORECASE | re.MULTILINE)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


@contextlib.contextmanager
def open_library(path: Path) -> Iterator[zipfile.ZipFile]:
    """The library's zip archive, opened only if ``path`` is a regular file (a FIFO would hang the run)."""
    try:
        handle = open_regular_file(path)
    except OSError as exc:
        raise SourceError(
            f"{path}: cannot be read as a library ({exc.strerror or exc}); "
            "remove it from --library-dir or replace it with a .sh3f file"
        ) from exc
    with handle:
        try:
            archive = zipfile.ZipFile(handle)
        except ARCHIVE_ERRORS as exc:
            raise SourceError(
                f"{path}: not a readable .sh3f (zip) library ({_reason(exc)}); reinstall the "
                "package or remove the file from --library-dir"
            ) from exc
        with archive:
            yield archive


def read_member(archive: zipfile.ZipFile, member: str | zipfile.ZipInfo, library: Path) -> bytes:
    """A member's bytes, at most :data:`MAX_MEMBER_BYTES` (declared or inflated), with any damage as one
    :class:`SourceError` naming the library and the member."""
    try:
        info = member if isinstance(member, zipfile.ZipInfo) else archive.getinfo(member)
    except KeyError:
        raise SourceError(
            f"{library}: {member} is named by the catalogue but missing from the library; reinstall the package"
        ) from None
    _check_declared_size(info, library)
    try:
        with archive.open(info) as handle:
            data = handle.read(MAX_MEMBER_BYTES + 1)
    except ARCHIVE_ERRORS as exc:
        raise SourceError(
            f"{library}: {info.filename} is damaged ({_reason(exc)}); reinstall the package or replace the library"
        ) from exc
    if len(data) > MAX_MEMBER_BYTES:
        raise SourceError(
            f"{library}: {info.filename} inflates past {MAX_MEMBER_BYTES >> 20} MiB, the limit per "
            "file (a damaged library or a zip bomb); replace the library"
        )
    return data


def _check_declared_size(info: zipfile.ZipInfo, library: Path) -> None:
    if info.file_size > MAX_MEMBER_BYTES:
        raise SourceError(
            f"{library}: {info.filename} declares {info.file_size} bytes, past the limit of "
            f"{MAX_MEMBER_BYTES >> 20} MiB per file (real models are under 10 MB: a damaged "
            "library or a zip bomb); replace the library"
        )


def _safe_relative(relative: str) -> bool:
    """True for a relative member path that stays inside the item's folder."""
    parts = relative.split("/")
    return bool(relative) and all(p not in ("", ".", "..") and "\x00" not in p for p in parts)


def item_members(archive: zipfile.ZipFile, model: str, library: Path) -> list[tuple[zipfile.ZipInfo, str]]:
    """(member, path inside the item folder) of every file of the item whose OBJ is ``model``, checked
    against the limits before anything is written.

    A model in a folder takes that folder's files (its MTL, textures); one at the root of the archive
    takes only the files its OBJ and MTLs name (the root also holds the catalogue and the licence).
    """
    folder = posixpath.dirname(model)
    if folder:
        members = [
            (info, posixpath.relpath(info.filename, folder))
            for info in archive.infolist()
            if info.filename.startswith(folder + "/") and not info.is_dir()
        ]
    else:
        members = [(archive.getinfo(name), name) for name in _root_files(archive, model, library)]
    members = [
        (info, rel) for info, rel in members if _safe_relative(rel) and not rel.lower().endswith(_SKIPPED_SUFFIXES)
    ]
    if not any(info.filename == model for info, _ in members):
        raise SourceError(
            f"{library}: {model} is named by the catalogue but missing from the library; reinstall the package"
        )
    if len(members) > MAX_ITEM_FILES:
        raise SourceError(
            f"{library}: the folder of {model} holds {len(members)} files, past the limit of "
            f"{MAX_ITEM_FILES} per item; replace the library"
        )
    for info, _ in members:
        _check_declared_size(info, library)
    total = sum(info.file_size for info, _ in members)
    if total > MAX_ITEM_BYTES:
        raise SourceError(
            f"{library}: the files of {model} declare {total} bytes, past the limit of "
            f"{MAX_ITEM_BYTES >> 20} MiB per item (a damaged library or a zip bomb); replace the library"
        )
    return members


def _root_files(archive: zipfile.ZipFile, model: str, library: Path) -> list[str]:
    """The OBJ at the archive's root and the MTL and texture files it names that the archive holds."""
    names = set(archive.namelist())
    if model not in names:
        return []
    wanted = [model]
    obj_text = read_member(archive, model, library).decode("utf-8", "replace")
    for line in re.findall(r"^\s*mtllib\s+(.+)$", obj_text, re.MULTILINE):
        for mtl in line.split():
            if mtl in names and mtl not in wanted:
                wanted.append(mtl)
                mtl_text = read_member(archive, mtl, library).decode("utf-8", "replace")
                wanted += [
                    t
                    for t in (m.split()[-1] for m in _MTL_MAPS.findall(mtl_text) if m.split())
                    if t in names and t not in wanted
                ]
    return wanted


def fingerprint(members: list[tuple[zipfile.ZipInfo, str]], *inputs: Iterable[object]) -> str:
    """SHA-256 of what an item folder is made from: each member's path, CRC-32 and size (from the
    archive's directory, no read needed) and the ``inputs`` that change its files (rotation, size)."""
    record = [
        EXTRACTION_VERSION,
        [list(i) for i in inputs],
        sorted((rel, info.CRC, info.file_size) for info, rel in members),
    ]
    return hashlib.sha256(json.dumps(record, default=str).encode("utf-8")).hexdigest()


def extract_item(
    archive: zipfile.ZipFile,
    library: Path,
    members: list[tuple[zipfile.ZipInfo, str]],
    model: str,
    dest: Path,
    convert: Callable[[bytes], bytes],
) -> Path:
    """Write the item folder ``dest`` (``convert`` applied to the OBJ ``model``); return the OBJ's path.

    ``dest`` must name the inputs (:func:`fingerprint`): an existing ``dest`` is the same item already
    extracted and is reused as it is. The files go into ``.<dest>.partial`` first, renamed to ``dest``
    when all are written; a partial folder a killed run left is completed (never deleted), and one
    this call created is removed again if the item fails.
    """
    obj_path = dest / posixpath.basename(model)
    if obj_path.is_file() and not dest.is_symlink():
        return obj_path
    if dest.exists() or dest.is_symlink():
        raise SourceError(
            f"{dest}: exists but is not a complete extraction of {model} (no {obj_path.name} in it); "
            "move it out of --out and run again"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial")
    created = _partial_folder(partial)
    try:
        for info, relative in members:
            data = read_member(archive, info, library)
            _write_new(partial / relative, convert(data) if info.filename == model else data)
        os.rename(partial, dest)
    except BaseException:
        if created:  # made by this call: nothing else is in it
            shutil.rmtree(partial, ignore_errors=True)
        raise
    return obj_path


def _partial_folder(partial: Path) -> bool:
    """Create ``partial`` (True), or take over a killed run's (False) after checking it is a plain folder
    without links, so that completing it cannot write anywhere else."""
    try:
        partial.mkdir()
        return True
    except FileExistsError:
        pass
    if partial.is_symlink() or not partial.is_dir() or any(p.is_symlink() for p in partial.rglob("*")):
        raise SourceError(
            f"{partial}: left by an interrupted extraction but not a plain folder (it holds links); "
            "move it out of --out and run again"
        )
    log.info("completing %s, left by an interrupted run", partial)
    return False


def _write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` inside a partial folder, never through a link; usual permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o666)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
