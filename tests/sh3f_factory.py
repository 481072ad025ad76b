"""Tiny Sweet Home 3D libraries (``.sh3f``) built by the tests: a few tetrahedra with an MTL colour each.

Small enough that a library is written, read and sampled in milliseconds, so the hostile and the
fuzz tests can build hundreds of them; each item's OBJ carries its name in a comment, so no two
items (and none of the project's reserved models) share a digest.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

CC0 = "LICENSE\n\nThis file is under the Creative Commons Zero (Public Domain)\nlicense\n"


def tetra_obj(tag: str, mtl: str | None = "tetra.mtl", scale: float = 1.0) -> bytes:
    """A closed tetrahedron (outward faces) naming its MTL; ``tag`` makes its digest unique."""
    s = scale
    head = f"# {tag}\n" + (f"mtllib {mtl}\n" if mtl else "")
    return (
        head + f"v 0 0 0\nv {s} 0 0\nv 0 {s} 0\nv 0 0 {s}\nusemtl red\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"
    ).encode()


MTL = b"newmtl red\nKd 0.8 0.1 0.1\n"


@dataclass
class Item:
    """One catalogue entry and its files (``files``: path inside the zip → bytes; default: OBJ + MTL)."""

    name: str
    """The catalogue name (what the class map reads); its folder and files use it with ``_`` for spaces."""
    folder: str = ""
    """Model folder inside the zip (default ``lib/<name>``); ``"/"`` puts the model at the root."""
    width: str = "50"
    depth: str = "40"
    height: str = "90"
    rotation: str | None = None
    category: str = "Living room"
    model: str | None = None
    """The catalogue's ``model#N`` (default ``/<folder>/<name>.obj``)."""
    files: dict[str, bytes] | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return self.name.replace(" ", "_")

    def model_path(self) -> str:
        if self.model is not None:
            return self.model
        return f"/{self._folder()}{self.slug}.obj"

    def _folder(self) -> str:
        if self.folder == "/":
            return ""
        return (self.folder or f"lib/{self.slug}") + "/"

    def zip_files(self) -> dict[str, bytes]:
        if self.files is not None:
            return self.files
        folder = self._folder()
        return {f"{folder}{self.slug}.obj": tetra_obj(self.name, f"{self.slug}.mtl"), f"{folder}{self.slug}.mtl": MTL}


def catalogue(items: list[Item]) -> str:
    lines = ["# test catalogue", "id=Test#Library"]
    for n, item in enumerate(items, 1):
        lines += [
            f"id#{n}=Test#{item.slug}",
            f"name#{n}={item.name}",
            f"category#{n}={item.category}",
            f"creator#{n}=Tester",
            f"model#{n}={item.model_path()}",
            f"width#{n}={item.width}",
            f"depth#{n}={item.depth}",
            f"height#{n}={item.height}",
        ]
        if item.rotation is not None:
            lines.append(f"modelRotation#{n}={item.rotation}")
        lines += [f"{key}#{n}={value}" for key, value in item.extra.items()]
    return "\n".join(lines) + "\n"


def write_library(path: Path, items: list[Item], licence: str = CC0, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """``path`` as a .sh3f zip holding the catalogue of ``items``, their files and a CC0 licence."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("PluginFurnitureCatalog.properties", catalogue(items))
        archive.writestr("LICENSE.TXT", licence)
        written = set()
        for item in items:
            for name, data in item.zip_files().items():
                if name not in written:  # two entries may share a model folder
                    archive.writestr(name, data)
                    written.add(name)
    return path


def chairs(count: int = 3, prefix: str = "Chair") -> list[Item]:
    """``count`` items the shipped class map files as chairs (``Chair 1``, ...)."""
    return [Item(name=f"{prefix} {i}") for i in range(1, count + 1)]


def member_offsets(path: Path) -> dict[str, tuple[int, int]]:
    """Member name → (offset of its compressed data in the file, compressed size)."""
    data = path.read_bytes()
    found = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            start = info.header_offset
            name_len = int.from_bytes(data[start + 26 : start + 28], "little")
            extra_len = int.from_bytes(data[start + 28 : start + 30], "little")
            found[info.filename] = (start + 30 + name_len + extra_len, info.compress_size)
    return found


def central_entry(data: bytes, member: str) -> int:
    """Offset of ``member``'s entry in the zip's central directory (its sizes: +20 compressed, +24 real)."""
    name = member.encode()
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        length = int.from_bytes(data[at + 28 : at + 30], "little")
        if data[at + 46 : at + 46 + length] == name:
            return at
        at = data.find(b"PK\x01\x02", at + 4)
    raise KeyError(member)


def set_declared_size(path: Path, member: str, size: int) -> None:
    """Make the central directory claim ``size`` bytes for ``member`` (the data stays as it is)."""
    data = bytearray(path.read_bytes())
    at = central_entry(bytes(data), member)
    data[at + 24 : at + 28] = size.to_bytes(4, "little")
    path.write_bytes(bytes(data))
