"""Names that become one folder or file name under an output folder, checked before any work.

A data set name (``--name``), a class name of the Sweet Home 3D class map, a class or shape id a
source hands to preprocessing: each becomes one path component of ``<out>/SdfSamples/<name>/<class>/
<id>.npz`` or of the source's mesh cache. A name with ``/``, ``..`` or a leading ``.`` would write
outside that folder (or over a hidden file of the project), so every such name passes one of the
two checks here first; nothing is written before it does.
"""

from __future__ import annotations

import re

__all__ = ["PLAIN_NAME", "MAX_NAME_BYTES", "plain_name_problem", "path_component_problem"]

PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
"""A plain folder name: ASCII letters, digits, ``_``, ``-`` and ``.``, not starting with ``.`` or ``-``."""
MAX_NAME_BYTES = 200
"""File systems allow 255 bytes a name; the rest is room for ``.npz`` and a temporary file's affixes."""


def _length_problem(name: str) -> str | None:
    size = len(name.encode("utf-8", "surrogatepass"))
    return f"is {size} bytes long (at most {MAX_NAME_BYTES})" if size > MAX_NAME_BYTES else None


def plain_name_problem(name: object) -> str | None:
    """Why ``name`` is not a plain folder name (see :data:`PLAIN_NAME`), or ``None`` when it is one.

    Used where the user chooses the name (``--name``, the class map's ``name``): the strict form
    is portable to every file system and shell.
    """
    if not isinstance(name, str):
        return f"is a {type(name).__name__}, not a text"
    if not PLAIN_NAME.fullmatch(name):
        return "is not a plain folder name (letters, digits, '_', '-' and '.' only; no '/', no leading '.')"
    return _length_problem(name)


def path_component_problem(name: object) -> str | None:
    """Why ``name`` cannot be one path component, or ``None``: the looser check for names taken from
    data (Unicode shape ids of the folder source, LVIS categories such as ``bow_(weapon)``).

    Refused: empty, ``.`` / ``..`` and other leading dots, ``/``, ``\\``, control characters, too long.
    """
    if not isinstance(name, str):
        return f"is a {type(name).__name__}, not a text"
    if not name or name.startswith("."):
        return "is empty or starts with '.'"
    if "/" in name or "\\" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "holds '/', '\\' or a control character"
    return _length_problem(name)
