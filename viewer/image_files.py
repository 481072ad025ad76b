"""Image files the viewer writes: the format the suffix names, checked before any rendering, written atomically.

A ``.jpg`` path gets JPEG bytes (it used to get PNG bytes under a .jpg name), an unknown
suffix is refused with the list of known ones, and a path that is a folder or lies in a folder
that cannot be written is refused before a model is loaded or a mesh extracted. The bytes go
through :func:`core.utils.io_utils.atomic_write`, so a failed write leaves neither half a file nor a
``.part`` file beside it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from core.utils.errors import ExplorerError
from core.utils.io_utils import atomic_write_bytes

__all__ = ["IMAGE_FORMATS", "ImagePathError", "check_image_path", "check_output_folder", "save_image"]

IMAGE_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}
"""Suffix → Pillow format name."""
_NO_ALPHA = ("JPEG", "BMP")


class ImagePathError(ExplorerError):
    """A screenshot path the viewer cannot write: unknown suffix, a folder, no write permission."""


def _writable_folder(folder: Path, option: str, target: Path) -> None:
    """Create ``folder`` (and parents) or raise; then require write permission in it."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise ImagePathError(f"{option} {target}: {existing} is a file, not a folder. Choose another path.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImagePathError(
            f"{option} {target}: cannot create the folder {folder} ({exc.strerror or exc}). Choose a writable place."
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ImagePathError(f"{option} {target}: the folder {folder} is not writable. Choose a writable place.")


def check_image_path(path: str | os.PathLike, option: str = "--screenshot") -> Path:
    """``path`` if an image can be written there (its folder is created), else :class:`ImagePathError`."""
    path = Path(path)
    if path.is_dir():
        raise ImagePathError(
            f"{option} {path}: is a folder. Give a file name such as {path / 'shot.png'} "
            "(or use --screenshots DIR for a set of images)."
        )
    suffix = path.suffix.lower()
    if suffix not in IMAGE_FORMATS:
        raise ImagePathError(
            f"{option} {path}: unknown image type {suffix or '(no suffix)'!r}; "
            f"end the name with one of {', '.join(IMAGE_FORMATS)}."
        )
    _writable_folder(path.parent if str(path.parent) else Path("."), option, path)
    return path


def check_output_folder(path: str | os.PathLike, option: str = "--screenshots") -> Path:
    """``path`` created as a writable folder, else :class:`ImagePathError`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ImagePathError(f"{option} {path}: is a file, not a folder. Give a folder path (it is created).")
    _writable_folder(path, option, path)
    return path


def save_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write ``image`` ((H, W, 3|4) uint8) in the format ``path``'s suffix names, atomically.

    Formats without alpha (JPEG, BMP) get the image composed on white.
    """
    from PIL import Image

    path = check_image_path(path, "image")
    fmt = IMAGE_FORMATS[path.suffix.lower()]
    picture = Image.fromarray(np.ascontiguousarray(image))
    if fmt in _NO_ALPHA and picture.mode == "RGBA":
        background = Image.new("RGB", picture.size, (255, 255, 255))
        background.paste(picture, mask=picture.split()[3])
        picture = background
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return atomic_write_bytes(path, buffer.getvalue())
