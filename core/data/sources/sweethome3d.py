"""Sweet Home 3D furniture libraries (``.sh3f``) as a data source of real, coloured, licensed objects.

Debian's ``sweethome3d-furniture`` package installs five libraries under
``/usr/share/sweethome3d/furniture/``. A ``.sh3f`` file is a zip archive holding
``PluginFurnitureCatalog.properties`` (one numbered block per item: ``name#N``, ``tags#N``,
``category#N``, ``creator#N``, ``model#N``, ``width/depth/height#N`` in cm, optional
``modelRotation#N``), translated names in ``PluginFurnitureCatalog_xx.properties``, a
``LICENSE.TXT`` for the library and one folder per item with its OBJ, MTL and textures.

The libraries are read in place: the catalogue and each OBJ are read from the zip, and only the
items that are selected are written out (their own folder, OBJ + MTL + textures) into a cache
folder, with the item's ``modelRotation`` and catalogue size applied to the OBJ's vertices the way
Sweet Home 3D shows the item: rotated upright, then scaled so its bounding box is width × height ×
depth (x, y, z; Y-up like glTF). Without the rotation some models lie on their side.

Reserved models: every item whose OBJ bytes hash (SHA-256) to a digest of an exclusion list is
skipped before anything else looks at it — it is never materialised, classified, listed or
reported, only counted. The project's own copy of the reserved list
(``resources/reserved/sweethome3d-furniture-1.8-1.sha256``) is always applied; users add their
own hold-out lists with ``exclude_hashes``, whose digests may also be those of the extracted OBJ
(the file a manifest lists as ``source``): those are checked on the items of the wanted classes
before any is drawn or written.

Nothing in a library stops the others: a damaged library, a damaged member or a bad catalogue
entry is recorded with its reason in the report (``failures``) and the rest goes on. The archive
layer (bounded reads, the size limits, the resumable extraction that never deletes what the run did
not create) is :mod:`core.data.sources.sh3f`. The class map is checked whole before any work: its class
names become folders, so each must be a plain folder name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.data.sources import sh3f
from core.data.sources.folder import stable_split
from core.data.sources.jobs import MeshJob
from core.utils.errors import SourceError
from core.utils.folder_lock import FolderLock
from core.utils.io_utils import open_regular_file
from core.utils.names import plain_name_problem

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parents[3] / "resources"
DEFAULT_LIBRARY_DIR = Path("/usr/share/sweethome3d/furniture")
DEFAULT_CLASS_MAP = RESOURCES / "sweethome3d" / "class_map.toml"
RESERVED_DIGESTS = RESOURCES / "reserved" / "sweethome3d-furniture-1.8-1.sha256"
INSTALL_HINT = (
    "install Debian's furniture libraries with `make data-real` "
    "(or `sudo apt-get install sweethome3d-furniture`), or point --library-dir at a folder of .sh3f files"
)
ALL_LICENCES = ("CC0-1.0", "CC-BY-3.0", "CC-BY-3.0-US")
MIN_SIZE_CM, MAX_SIZE_CM = 0.01, 100_000.0
"""Catalogue widths / heights / depths accepted: 0.1 mm to 1 km (real items are 1 cm to 30 m)."""
_MAX_KEY = 120

__all__ = [
    "SweetHome3DConfig",
    "CatalogItem",
    "Library",
    "ClassMap",
    "SourceReport",
    "read_properties",
    "read_library",
    "read_digests",
    "item_text",
    "transform_obj",
    "sweethome3d_jobs",
    "DEFAULT_LIBRARY_DIR",
    "DEFAULT_CLASS_MAP",
    "RESERVED_DIGESTS",
]


@dataclass
class SweetHome3DConfig:
    """Which Sweet Home 3D items to use and where to put them."""

    cache_dir: Path
    """Where selected items are written (one folder per item); reused on the next run."""
    library_dir: Path = DEFAULT_LIBRARY_DIR
    """Folder holding the ``.sh3f`` libraries (Debian: /usr/share/sweethome3d/furniture)."""
    classes: tuple[str, ...] | None = None
    """Classes to keep (names of the class map's rules); ``None``: every class of the map."""
    per_class: int = 0
    """Items drawn per class with ``seed``; 0 keeps every unreserved item of the class."""
    seed: int = 0
    """Seed of the per-class draw."""
    test_fraction: float = 0.2
    """Fraction of each class held out as test, decided by a hash of the shape id."""
    class_map: Path = DEFAULT_CLASS_MAP
    """TOML file mapping catalogue items to classes (see resources/sweethome3d/class_map.toml)."""
    exclude_hashes: tuple[Path, ...] = ()
    """Extra files of SHA-256 digests of OBJ files to skip (the reserved list is always applied)."""
    licences: tuple[str, ...] = ALL_LICENCES
    """Licences to accept (``CC0-1.0``, ``CC-BY-3.0``, ``CC-BY-3.0-US``)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.test_fraction < 1.0:
            raise SourceError(f"test fraction {self.test_fraction} is outside [0, 1); use e.g. 0.2")
        if self.per_class < 0:
            raise SourceError(f"--per-class {self.per_class} is negative; use 0 for all items or a positive count")
        unknown = sorted(set(self.licences) - set(ALL_LICENCES))
        if unknown:
            raise SourceError(f"unknown licence(s) {unknown}; choose from {list(ALL_LICENCES)}")


@dataclass(frozen=True)
class CatalogItem:
    """One furniture item of a library's catalogue."""

    library: str
    """Library file stem, e.g. ``BlendSwap-CC-0``."""
    index: int
    """The ``N`` of ``name#N`` in the catalogue."""
    item_id: str
    """The catalogue's ``id#N`` (e.g. ``Blend Swap CC-0#armchair``), or the model folder when absent."""
    name: str
    tags: tuple[str, ...]
    category: str
    creator: str
    model: str
    """Path of the OBJ inside the zip, without the leading slash."""
    size_cm: tuple[float, float, float]
    """(width, height, depth) in cm: the item's extent along x, y, z once upright."""
    rotation: tuple[float, ...] | None
    """Row-major 3×3 ``modelRotation``, or ``None`` for identity."""
    licence: str
    names: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    """Translated names by language code (``de``, ``fr``, ...)."""
    key_suffix: str = ""
    """``-<hash>`` when the plain key is shared with another item (see :func:`_assign_unique_keys`)."""

    @property
    def plain_key(self) -> str:
        """``<library>_<model folder>`` with every other character than ``[A-Za-z0-9_-]`` as ``_``."""
        folder = posixpath.basename(posixpath.dirname(self.model)) or posixpath.splitext(self.model)[0]
        key = re.sub(r"[^A-Za-z0-9_-]+", "_", f"{self.library}_{folder}").strip("_-") or "item"
        if len(key) > _MAX_KEY:  # a file name has 255 bytes, the extraction folder adds a fingerprint
            key = f"{key[:_MAX_KEY]}-{hashlib.sha1(key.encode('utf-8')).hexdigest()[:8]}"
        return key

    @property
    def key(self) -> str:
        """A file-name-safe id unique across the libraries: the plain key, plus a suffix where two items share it
        (libraries whose names differ only in punctuation, two items of one model folder)."""
        return self.plain_key + self.key_suffix


@dataclass
class Library:
    path: Path
    name: str
    licence: str
    items: list[CatalogItem]
    failures: list[dict[str, str]] = field(default_factory=list)
    """Catalogue entries that could not be read (``library``, ``item``, ``reason``, and ``model``: the OBJ it
    names, so that a reserved model's broken entry is counted, never listed)."""


@dataclass
class SourceReport:
    """What the source did; written as ``sweethome3d_report.json`` and summarised on the console."""

    libraries: dict[str, str] = field(default_factory=dict)
    """Library name → licence."""
    items_seen: int = 0
    reserved_skipped: int = 0
    """Items whose OBJ digest is in an exclusion list: counted only, never named."""
    licence_skipped: int = 0
    unmapped: list[dict[str, str]] = field(default_factory=list)
    """Items no class rule took (or of a skipped category): library, item id, name, category."""
    per_class: dict[str, int] = field(default_factory=dict)
    """Selected items per class."""
    failures: list[dict[str, str]] = field(default_factory=list)
    """Items (or whole libraries: ``item`` empty) that could not be read, with the reason."""

    def summary_line(self) -> str:
        chosen = sum(self.per_class.values())
        return (
            f"Sweet Home 3D: {self.items_seen} items in {len(self.libraries)} libraries, "
            f"{self.reserved_skipped} reserved models skipped, {self.licence_skipped} of other licences skipped, "
            f"{len(self.unmapped)} unmapped, {len(self.failures)} unreadable, {chosen} selected "
            f"({', '.join(f'{k} {v}' for k, v in sorted(self.per_class.items()))})"
        )


# -- catalogue files ---------------------------------------------------------------------------------

_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2 : i + 6] or ""):
                out.append(chr(int(text[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def read_properties(text: str) -> dict[str, str]:
    """Parse a Java ``.properties`` file: comments, ``=``/``:``/space separators, line continuations,
    ``\\uXXXX`` and backslash escapes (what Sweet Home 3D's catalogues use)."""
    result: dict[str, str] = {}
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.lstrip()
        if not pending and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending += line[:-1]
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)
    for line in logical:
        match = re.match(r"((?:\\.|[^=:\s\\])+)\s*[=:\s]\s*(.*)$", line)
        if match:
            result[_unescape(match.group(1))] = _unescape(match.group(2))
        else:
            result[_unescape(line.strip())] = ""
    return result


def _licence_of(text: str) -> str:
    lowered = " ".join(text.lower().split())
    if "creative commons zero" in lowered or "public domain" in lowered or "/zero/" in lowered:
        return "CC0-1.0"
    if "attribution 3.0" in lowered and ("united states" in lowered or "/by/3.0/us" in lowered):
        return "CC-BY-3.0-US"
    if "attribution 3.0" in lowered:
        return "CC-BY-3.0"
    return "unknown"


def _size(props: dict[str, str], key: str, where: str) -> float:
    try:
        value = float(props[key])
    except (KeyError, ValueError) as exc:
        raise SourceError(f"{where}: {key} is missing or not a number; fix the catalogue entry") from exc
    if not np.isfinite(value) or not MIN_SIZE_CM <= value <= MAX_SIZE_CM:
        raise SourceError(
            f"{where}: {key}={value} is not a size in [{MIN_SIZE_CM:g}, {MAX_SIZE_CM:g}] cm; fix the catalogue entry"
        )
    return value


def _rotation(props: dict[str, str], key: str, where: str) -> tuple[float, ...] | None:
    """The row-major 3×3 ``modelRotation`` (None when absent): 9 finite numbers of a rotation matrix (Debian's
    33 rotations are orthonormal to 1e-4; anything else would squash or blow up the model)."""
    if key not in props:
        return None
    try:
        values = tuple(float(v) for v in props[key].split())
    except ValueError:
        values = ()
    if len(values) != 9 or not all(np.isfinite(values)):
        raise SourceError(
            f"{where}: modelRotation {props[key][:60]!r} is not 9 finite numbers; fix the catalogue entry"
        )
    matrix = np.asarray(values).reshape(3, 3)
    if not np.abs(matrix).max() <= 1.01 or np.abs(matrix @ matrix.T - np.eye(3)).max() > 1e-2:
        raise SourceError(
            f"{where}: modelRotation {props[key][:60]!r} is not a rotation (its rows are not "
            "orthonormal); fix the catalogue entry"
        )
    return values


def _model_path(props: dict[str, str], n: int, where: str) -> str | None:
    """The OBJ of item ``n`` inside the zip (None: not an OBJ item); refused when it leaves the archive."""
    model = props.get(f"model#{n}", "").strip().lstrip("/")
    if not model.lower().endswith(".obj"):
        return None  # not a mesh item this source can read
    normal = posixpath.normpath(model)
    if normal == ".." or normal.startswith("../") or "\x00" in model:
        raise SourceError(f"{where}: model path {model!r} leaves the library's folders; fix the catalogue entry")
    return model


def _catalog_item(
    props: dict[str, str], n: int, path: Path, licence: str, translations: dict[str, dict[str, str]]
) -> CatalogItem | None:
    """Item ``n`` of a catalogue (None: not an OBJ item); :class:`SourceError` names the entry and what is wrong."""
    where = f"{path}: item #{n} ({props.get(f'name#{n}', '?')[:60]})"
    model = _model_path(props, n, where)
    if model is None:
        return None
    return CatalogItem(
        library=path.stem,
        index=n,
        item_id=props.get(f"id#{n}", model),
        name=props[f"name#{n}"].strip(),
        tags=tuple(t.strip() for t in props.get(f"tags#{n}", "").split(",") if t.strip()),
        category=props.get(f"category#{n}", "").strip(),
        creator=props.get(f"creator#{n}", "").strip(),
        model=model,
        size_cm=(
            _size(props, f"width#{n}", where),
            _size(props, f"height#{n}", where),
            _size(props, f"depth#{n}", where),
        ),
        rotation=_rotation(props, f"modelRotation#{n}", where),
        licence=licence,
        names={lang: t[f"name#{n}"] for lang, t in sorted(translations.items()) if t.get(f"name#{n}")},
    )


def read_library(path: Path) -> Library:
    """Read one ``.sh3f`` library's catalogue, translations and licence (no model is read).

    A catalogue entry that cannot be read is listed in ``Library.failures``; :class:`SourceError`
    only when the library as a whole is unreadable.
    """
    path = Path(path)
    with sh3f.open_library(path) as archive:
        return _read_catalogue(archive, path)


def _read_catalogue(archive: zipfile.ZipFile, path: Path) -> Library:
    names = set(archive.namelist())
    if "PluginFurnitureCatalog.properties" not in names:
        raise SourceError(f"{path}: no PluginFurnitureCatalog.properties inside; is this a furniture library?")

    def text(name: str) -> str:
        return sh3f.read_member(archive, name, path).decode("latin-1")

    props = read_properties(text("PluginFurnitureCatalog.properties"))
    translations: dict[str, dict[str, str]] = {}
    for name in sorted(names):
        match = re.fullmatch(r"PluginFurnitureCatalog_([A-Za-z_]+)\.properties", name)
        if match:
            translations[match.group(1)] = read_properties(text(name))
    licence = _licence_of(text("LICENSE.TXT") if "LICENSE.TXT" in names else "")
    library = Library(path=path, name=path.stem, licence=licence, items=[])
    for n in sorted({int(k.split("#")[1]) for k in props if re.fullmatch(r"name#\d{1,9}", k)}):
        try:
            item = _catalog_item(props, n, path, licence, translations)
        except SourceError as exc:  # one bad entry never stops the library
            library.failures.append(
                {
                    "library": path.stem,
                    "item": props.get(f"id#{n}", f"#{n}"),
                    "reason": str(exc),
                    "model": props.get(f"model#{n}", "").strip().lstrip("/"),
                }
            )
            continue
        if item is not None:
            library.items.append(item)
    return library


def read_digests(paths: list[Path] | tuple[Path, ...]) -> set[str]:
    """SHA-256 digests (lower-case hex, one per line; ``#`` comments and blank lines ignored)."""
    digests: set[str] = set()
    for path in paths:
        lines = _read_text(Path(path), "digest list", "check --exclude-hashes").splitlines()
        for number, line in enumerate(lines, 1):
            text = line.split("#", 1)[0].strip().lower()
            if not text:
                continue
            token = text.split()[0]  # also accepts `sha256sum` output: "<digest>  <file>"
            if not re.fullmatch(r"[0-9a-f]{64}", token):
                raise SourceError(f"{path}:{number}: {line.strip()[:80]!r} is not a SHA-256 digest (64 hex digits)")
            digests.add(token)
    return digests


def _read_text(path: Path, what: str, fix: str) -> str:
    """A UTF-8 text file given on the command line; a FIFO, a folder or binary data is one clear error."""
    try:
        with open_regular_file(path) as handle:
            data = handle.read(sh3f.MAX_MEMBER_BYTES + 1)
    except OSError as exc:
        raise SourceError(f"{path}: cannot read the {what} ({exc.strerror or exc}); {fix}") from exc
    if len(data) > sh3f.MAX_MEMBER_BYTES:
        raise SourceError(f"{path}: the {what} is larger than {sh3f.MAX_MEMBER_BYTES >> 20} MiB; {fix}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: the {what} is not UTF-8 text (byte {exc.start}: a binary file?); {fix}") from None


# -- classes and text ---------------------------------------------------------------------------------


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in phrase.lower().split()]
    return re.compile(r"(?<![a-z])" + r"\s+".join(words) + r"(?:e?s)?(?![a-z])")


@dataclass
class ClassRule:
    name: str
    keywords: list[re.Pattern[str]]
    exclude: list[re.Pattern[str]]
    categories: set[str]


_RULE_KEYS = {"name", "keywords", "exclude", "categories"}


def _check_keys(path: Path, where: str, table: object, known: set[str]) -> None:
    if not isinstance(table, dict):
        raise SourceError(
            f"{path}: {where} is a {type(table).__name__}, not a table; see resources/sweethome3d/class_map.toml"
        )
    unknown = sorted(set(table) - known)
    if unknown:
        raise SourceError(
            f"{path}: {where} has unknown key(s) {unknown} (known: {sorted(known)}); "
            "fix the spelling, see resources/sweethome3d/class_map.toml"
        )


def _text_list(path: Path, where: str, value: object, allow_empty: bool = False) -> list[str]:
    """A list of non-blank texts; a plain string (``"chair"`` for ``["chair"]``) is refused, not split."""
    if (
        not isinstance(value, list)
        or not all(isinstance(v, str) and v.strip() for v in value)
        or not (value or allow_empty)
    ):
        raise SourceError(
            f"{path}: {where} must be a {'' if allow_empty else 'non-empty '}list of texts, e.g. "
            f'["chair", "stool"], not {str(value)[:60]!r}; fix the class map'
        )
    return list(value)


def _class_rule(path: Path, number: int, rule: object) -> ClassRule:
    where = f"[[class]] rule {number}"
    _check_keys(path, where, rule, _RULE_KEYS)
    assert isinstance(rule, dict)
    if "name" not in rule or "keywords" not in rule:
        raise SourceError(f"{path}: {where} needs a name and a non-empty keywords list")
    problem = plain_name_problem(rule["name"])
    if problem:  # the name becomes a folder under --out: '../x' would write outside it
        raise SourceError(
            f"{path}: {where}: class name {str(rule['name'])[:60]!r} {problem}; class names become "
            'folders under --out, e.g. name = "chair"'
        )
    keywords = _text_list(path, f"{where} keywords", rule["keywords"])
    exclude = _text_list(path, f"{where} exclude", rule.get("exclude", []), allow_empty=True)
    categories = _text_list(path, f"{where} categories", rule.get("categories", []), allow_empty=True)
    return ClassRule(
        name=rule["name"],
        keywords=[_phrase_pattern(k) for k in keywords],
        exclude=[_phrase_pattern(k) for k in exclude],
        categories=set(categories),
    )


@dataclass
class ClassMap:
    """Ordered keyword rules from a TOML file; the first matching rule names the class."""

    rules: list[ClassRule]
    skip_categories: set[str]
    path: Path | None = None

    @classmethod
    def load(cls, path: Path = DEFAULT_CLASS_MAP) -> ClassMap:
        """Read and check a class map: every key known, every value of its type, every class name a plain
        folder name (it becomes ``<out>/.../<class>/``); :class:`SourceError` names the file and the rule."""
        import tomllib

        text = _read_text(Path(path), "class map", "check --class-map")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SourceError(f"{path}: not valid TOML ({exc}); fix the file or use the shipped class map") from exc
        _check_keys(path, "the class map", data, {"class", "skip_categories"})
        rules_data = data.get("class", [])
        if not isinstance(rules_data, list) or not rules_data:
            raise SourceError(f"{path}: no [[class]] rules; see resources/sweethome3d/class_map.toml")
        rules = [_class_rule(path, i + 1, rule) for i, rule in enumerate(rules_data)]
        skip = _text_list(path, "skip_categories", data.get("skip_categories", []), allow_empty=True)
        return cls(rules=rules, skip_categories=set(skip), path=Path(path))

    @property
    def class_names(self) -> list[str]:
        return list(dict.fromkeys(rule.name for rule in self.rules))

    def classify(self, item: CatalogItem) -> str | None:
        if item.category in self.skip_categories:
            return None
        name = " ".join(item.name.lower().replace("-", " ").split())
        for rule in self.rules:
            if rule.categories and item.category not in rule.categories:
                continue
            if any(p.search(name) for p in rule.keywords) and not any(p.search(name) for p in rule.exclude):
                return rule.name
        return None


def item_text(item: CatalogItem) -> str:
    """One-line description: ``"Office chair — seat, swivel; Office"`` (name — tags; category).

    Tags that only name the library or its maker (``Blend Swap``, ``Scopia``) are left out: they
    say nothing about the shape.
    """
    noise = {item.library.lower(), "blend swap", "scopia", "katorlegaz", "reallusion", "kator legaz"}
    tags = [t for t in item.tags if t.lower() not in noise and t.lower() != item.name.lower()]
    text = item.name
    if tags:
        text += " — " + ", ".join(t.lower() for t in tags)
    if item.category:
        text += f"; {item.category}"
    return text


# -- meshes ------------------------------------------------------------------------------------------


def transform_obj(text: str, rotation: tuple[float, ...] | None, size_cm: tuple[float, float, float]) -> str:
    """Apply ``modelRotation`` then scale to the catalogue size, on an OBJ's ``v`` lines only.

    The rotated model's bounding box is centred on the origin and scaled per axis to
    (width, height, depth), as Sweet Home 3D does. Normals (``vn``) are rotated and re-normalised
    under the inverse-transpose of the scale; texture coordinates, faces and materials are
    untouched, so the MTL and textures keep working.
    """
    lines = text.splitlines()
    v_rows = [i for i, line in enumerate(lines) if line.startswith("v ")]
    if not v_rows:
        raise SourceError("the OBJ has no vertices")
    parsed = [lines[i].split() for i in v_rows]
    try:
        xyz = np.array([[float(p[1]), float(p[2]), float(p[3])] for p in parsed], dtype=np.float64)
    except (IndexError, ValueError) as exc:
        raise SourceError(f"the OBJ has a malformed vertex line ({exc})") from exc
    if not np.isfinite(xyz).all() or np.abs(xyz).max() > 1e30:
        raise SourceError("the OBJ has vertex coordinates that are NaN, infinite or beyond 1e30")
    matrix = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    xyz = xyz @ matrix.T
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    extent = hi - lo
    scale = np.where(extent > 1e-12, np.asarray(size_cm) / np.maximum(extent, 1e-12), 1.0)
    xyz = (xyz - (lo + hi) / 2.0) * scale
    for row, p, point in zip(v_rows, parsed, xyz, strict=True):
        lines[row] = "v " + " ".join(f"{c:.6g}" for c in point) + ("" if len(p) <= 4 else " " + " ".join(p[4:]))
    normal_matrix = np.diag(1.0 / scale) @ matrix
    for i, line in enumerate(lines):
        if line.startswith("vn "):
            p = line.split()
            try:
                n = normal_matrix @ np.array([float(p[1]), float(p[2]), float(p[3])])
            except (IndexError, ValueError):
                continue
            n = n / max(np.linalg.norm(n), 1e-12)
            lines[i] = "vn " + " ".join(f"{c:.6g}" for c in n)
    return "\n".join(lines) + "\n"


def _library_paths(library_dir: Path) -> list[Path]:
    """Every ``*.sh3f`` entry of the folder, whatever its type: one that is not a regular file (a FIFO, a
    folder) is reported by :func:`core.data.sources.sh3f.open_library` and the others go on."""
    library_dir = Path(library_dir)
    if not library_dir.is_dir():
        raise SourceError(f"{library_dir}: no Sweet Home 3D furniture libraries here; {INSTALL_HINT}")
    paths = sorted(library_dir.glob("*.sh3f"))
    if not paths:
        raise SourceError(f"{library_dir}: holds no .sh3f files; {INSTALL_HINT}")
    return paths


@dataclass
class _Candidate:
    """An item of a wanted class, with the digest of its OBJ inside the library."""

    item: CatalogItem
    digest: str


def sweethome3d_jobs(config: SweetHome3DConfig) -> tuple[list[MeshJob], SourceReport]:
    """Mesh jobs for the selected, unreserved items, and a report of what was skipped and why.

    The class map and the digest lists are checked before any library is read. Reserved items are
    dropped first (only counted). A library, a catalogue entry or an item that cannot be read or
    transformed is listed in ``report.failures`` and the others go on.
    """
    class_map = ClassMap.load(config.class_map)
    wanted = list(config.classes) if config.classes else class_map.class_names
    unknown = sorted(set(wanted) - set(class_map.class_names))
    if unknown:
        raise SourceError(f"{class_map.path}: no rule for class(es) {unknown}; the map has {class_map.class_names}")
    reserved = read_digests([RESERVED_DIGESTS])
    user = read_digests(config.exclude_hashes)
    report = SourceReport()
    paths = _library_paths(config.library_dir)
    with contextlib.ExitStack() as stack:  # each archive opened once, for the hashes and the selected items
        archives = _open_libraries(paths, stack, reserved | user, report)
        libraries = _assign_unique_keys([library for library, _ in archives.values()])
        candidates = _select(libraries, archives, class_map, reserved | user, user, config, wanted, report)
        with FolderLock(
            Path(config.cache_dir) / ".extract.lock",
            "Sweet Home 3D extraction",
            "Wait for it to finish, or give another --out.",
        ):
            jobs = _materialise_jobs(wanted, candidates, archives, config, report)
        return jobs, report


def _open_libraries(
    paths: list[Path], stack: contextlib.ExitStack, excluded: set[str], report: SourceReport
) -> dict[str, tuple[Library, zipfile.ZipFile]]:
    """Library name → (catalogue, open archive) of every readable library; the others, and the catalogue
    entries that could not be read, go to the report (a reserved model's entry is only counted)."""
    opened: dict[str, tuple[Library, zipfile.ZipFile]] = {}
    for path in paths:
        try:
            archive = stack.enter_context(sh3f.open_library(path))
            library = _read_catalogue(archive, path)
        except SourceError as exc:  # one unreadable library never stops the others
            report.failures.append({"library": path.name, "item": "", "reason": str(exc)})
            continue
        report.libraries[library.name] = library.licence
        for failure in library.failures:
            report.items_seen += 1
            model = failure.pop("model")
            if _reserved(archive, model, path, excluded):
                report.reserved_skipped += 1
            else:
                report.failures.append(failure)
        opened[library.name] = (library, archive)
    return opened


def _reserved(archive: zipfile.ZipFile, model: str, library: Path, excluded: set[str]) -> bool:
    """True when ``model`` is readable and its digest is on an exclusion list."""
    try:
        return bool(model) and hashlib.sha256(sh3f.read_member(archive, model, library)).hexdigest() in excluded
    except SourceError:
        return False


def _assign_unique_keys(libraries: list[Library]) -> list[Library]:
    """Give every item a key no other item has: an item whose plain key is shared (``Mini lib.sh3f`` beside
    ``Mini_lib.sh3f``, two items of one model folder) gets a short hash of its library file and entry
    number appended; the others keep their plain key, so their splits and folders do not move."""
    counts: dict[str, int] = {}
    for library in libraries:
        for item in library.items:
            counts[item.plain_key] = counts.get(item.plain_key, 0) + 1
    for library in libraries:
        library.items = [
            item
            if counts[item.plain_key] == 1
            else dataclasses.replace(
                item, key_suffix="-" + hashlib.sha1(f"{library.path.name}#{item.index}".encode()).hexdigest()[:8]
            )
            for item in library.items
        ]
    return libraries


def _select(
    libraries: list[Library],
    archives: dict[str, tuple[Library, zipfile.ZipFile]],
    class_map: ClassMap,
    excluded: set[str],
    user: set[str],
    config: SweetHome3DConfig,
    wanted: list[str],
    report: SourceReport,
) -> dict[str, list[_Candidate]]:
    """Hash every item's OBJ, drop the reserved ones first (counted only), then licence and class.

    A digest of the user's lists may also be that of the extracted OBJ (the manifest's ``source``):
    each item of a wanted class is transformed in memory to compare it, before any draw or write.
    """
    candidates: dict[str, list[_Candidate]] = {c: [] for c in wanted}
    for library in libraries:
        archive = archives[library.name][1]
        for item in library.items:
            report.items_seen += 1
            try:
                obj_bytes = sh3f.read_member(archive, item.model, library.path)
            except SourceError as exc:
                report.failures.append({"library": library.name, "item": item.item_id, "reason": str(exc)})
                continue
            digest = hashlib.sha256(obj_bytes).hexdigest()
            if digest in excluded:
                report.reserved_skipped += 1
                continue
            if item.licence not in config.licences:
                report.licence_skipped += 1
                continue
            class_name = class_map.classify(item)
            if class_name is None:
                report.unmapped.append(
                    {"library": library.name, "item": item.item_id, "name": item.name, "category": item.category}
                )
                continue
            if class_name not in candidates:
                continue
            try:
                if user and hashlib.sha256(_extracted_obj(item, obj_bytes, library.path)).hexdigest() in user:
                    report.reserved_skipped += 1
                    continue
            except SourceError as exc:
                report.failures.append({"library": library.name, "item": item.item_id, "reason": str(exc)})
                continue
            candidates[class_name].append(_Candidate(item, digest))
    return candidates


def _extracted_obj(item: CatalogItem, obj_bytes: bytes, library: Path) -> bytes:
    """The OBJ file as written into the item's folder: rotated upright and scaled to the catalogue size."""
    try:
        return transform_obj(obj_bytes.decode("utf-8", "replace"), item.rotation, item.size_cm).encode("utf-8")
    except SourceError as exc:
        raise SourceError(f"{library}: {item.model}: {exc}; fix or remove the item") from None


def _materialise(archive: zipfile.ZipFile, library: Path, item: CatalogItem, class_dir: Path) -> tuple[Path, str]:
    """Write (or reuse) the item's folder ``<class>/<key>-<fingerprint>``; return its OBJ and the fingerprint.

    The fingerprint covers the item's files (paths, CRCs, sizes), its rotation and its size, so a
    library that changed (another width, a fixed rotation) is extracted again into a new folder.
    """
    members = sh3f.item_members(archive, item.model, library)
    digest = sh3f.fingerprint(members, item.model, item.rotation or (), item.size_cm)
    dest = class_dir / f"{item.key}-{digest[:12]}"
    obj_path = sh3f.extract_item(
        archive, library, members, item.model, dest, lambda data: _extracted_obj(item, data, library)
    )
    return obj_path, digest


def _materialise_jobs(
    wanted: list[str],
    candidates: dict[str, list[_Candidate]],
    archives: dict[str, tuple[Library, zipfile.ZipFile]],
    config: SweetHome3DConfig,
    report: SourceReport,
) -> list[MeshJob]:
    """Draw ``per_class`` items per class with the seed, write their folders, and make their jobs."""
    rng = np.random.default_rng(config.seed)
    jobs: list[MeshJob] = []
    for class_name in wanted:
        chosen = sorted(candidates[class_name], key=lambda c: c.item.key)
        if config.per_class and len(chosen) > config.per_class:
            keep = sorted(rng.choice(len(chosen), size=config.per_class, replace=False))
            chosen = [chosen[i] for i in keep]
        for candidate in chosen:
            item = candidate.item
            library, archive = archives[item.library]
            try:
                obj_path, fingerprint = _materialise(archive, library.path, item, Path(config.cache_dir) / class_name)
            except (SourceError, OSError) as exc:
                report.failures.append({"library": item.library, "item": item.item_id, "reason": str(exc)})
                continue
            report.per_class[class_name] = report.per_class.get(class_name, 0) + 1
            jobs.append(_job(item, class_name, obj_path, candidate.digest, fingerprint, config))
    _note_leftovers([Path(config.cache_dir) / c for c in wanted])
    return jobs


def _note_leftovers(class_dirs: list[Path]) -> None:
    """Say where partial folders of an interrupted run remain that this run did not complete (their item's
    library changed since, or the item was not selected): they are not used, and not deleted either."""
    left = [p for folder in class_dirs if folder.is_dir() for p in folder.glob(".*.partial")]
    if left:
        log.warning(
            "%d folder(s) of an interrupted extraction remain unused, e.g. %s; delete them by hand to "
            "free the space (a run with the same libraries and classes completes them)",
            len(left),
            left[0],
        )


def _job(
    item: CatalogItem, class_name: str, obj_path: Path, digest: str, fingerprint: str, config: SweetHome3DConfig
) -> MeshJob:
    return MeshJob(
        id=item.key,
        class_name=class_name,
        source=obj_path,
        text=item_text(item),
        split=stable_split(item.key, config.test_fraction),
        fingerprint=f"sweethome3d:{fingerprint}",
        extra={
            "library": item.library,
            "item_id": item.item_id,
            "name": item.name,
            "tags": list(item.tags),
            "category": item.category,
            "creator": item.creator,
            "licence": item.licence,
            "size_cm": list(item.size_cm),
            "model_rotation": list(item.rotation or ()),
            "obj_sha256": digest,
            "names": dict(item.names),
            "prompts": list(dict.fromkeys([item.name, *item.names.values()])),
        },
    )


def write_report(report: SourceReport, path: Path) -> None:
    """``sweethome3d_report.json``: counts, unmapped items and failures (never a reserved item)."""
    from core.utils.io_utils import atomic_write_json

    payload: dict[str, Any] = {
        "libraries": report.libraries,
        "items_seen": report.items_seen,
        "reserved_skipped": report.reserved_skipped,
        "licence_skipped": report.licence_skipped,
        "per_class": report.per_class,
        "unmapped": report.unmapped,
        "failures": report.failures,
    }
    atomic_write_json(Path(path), payload)


def attribution_markdown(extras: list[dict[str, Any]]) -> str:
    """The CC-BY attribution list of the items a data set or model uses: item, creator, library, licence.

    ``extras``: the per-shape records this source writes (``MeshJob.extra``, kept in the manifest).
    """
    rows = ["| item | creator | library | licence |", "|---|---|---|---|"]
    for e in sorted(extras, key=lambda e: (e.get("library", ""), e.get("item_id", ""))):
        rows.append(
            f"| {e.get('name', '')} | {e.get('creator', '')} | {e.get('library', '')} | {e.get('licence', '')} |"
        )
    return "\n".join(rows) + "\n"
