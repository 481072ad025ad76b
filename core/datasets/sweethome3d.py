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
own hold-out lists with ``exclude_hashes``.
"""
from __future__ import annotations

import contextlib
import hashlib
import posixpath
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.datasets.folder import stable_split
from core.datasets.jobs import MeshJob
from core.errors import SourceError

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
DEFAULT_LIBRARY_DIR = Path("/usr/share/sweethome3d/furniture")
DEFAULT_CLASS_MAP = RESOURCES / "sweethome3d" / "class_map.toml"
RESERVED_DIGESTS = RESOURCES / "reserved" / "sweethome3d-furniture-1.8-1.sha256"
INSTALL_HINT = ("install Debian's furniture libraries with `make data-real` "
                "(or `sudo apt-get install sweethome3d-furniture`), or point --library-dir at a folder of .sh3f files")
ALL_LICENCES = ("CC0-1.0", "CC-BY-3.0", "CC-BY-3.0-US")

__all__ = ["SweetHome3DConfig", "CatalogItem", "Library", "ClassMap", "SourceReport", "read_properties",
           "read_library", "read_digests", "item_text", "transform_obj", "sweethome3d_jobs",
           "DEFAULT_LIBRARY_DIR", "DEFAULT_CLASS_MAP", "RESERVED_DIGESTS"]


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

    @property
    def key(self) -> str:
        """A file-name-safe id unique across the libraries: ``<library>_<model folder>``."""
        folder = posixpath.basename(posixpath.dirname(self.model)) or posixpath.splitext(self.model)[0]
        return re.sub(r"[^A-Za-z0-9_-]+", "_", f"{self.library}_{folder}").strip("_")


@dataclass
class Library:
    path: Path
    name: str
    licence: str
    items: list[CatalogItem]


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
    """Items that could not be read from their library, with the reason."""

    def summary_line(self) -> str:
        chosen = sum(self.per_class.values())
        return (f"Sweet Home 3D: {self.items_seen} items in {len(self.libraries)} libraries, "
                f"{self.reserved_skipped} reserved models skipped, {self.licence_skipped} of other licences skipped, "
                f"{len(self.unmapped)} unmapped, {len(self.failures)} unreadable, {chosen} selected "
                f"({', '.join(f'{k} {v}' for k, v in sorted(self.per_class.items()))})")


# -- catalogue files ---------------------------------------------------------------------------------

_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2:i + 6] or ""):
                out.append(chr(int(text[i + 2:i + 6], 16)))
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


def _float(props: dict[str, str], key: str, where: str) -> float:
    try:
        value = float(props[key])
    except (KeyError, ValueError) as exc:
        raise SourceError(f"{where}: {key} is missing or not a number") from exc
    if not np.isfinite(value) or value <= 0:
        raise SourceError(f"{where}: {key}={value} is not a positive size")
    return value


def read_library(path: Path) -> Library:
    """Read one ``.sh3f`` library's catalogue, translations and licence (no model is read)."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise SourceError(f"{path}: not a readable .sh3f (zip) library ({exc}); reinstall the package") from exc
    with archive:
        names = set(archive.namelist())
        if "PluginFurnitureCatalog.properties" not in names:
            raise SourceError(f"{path}: no PluginFurnitureCatalog.properties inside; is this a furniture library?")
        props = read_properties(archive.read("PluginFurnitureCatalog.properties").decode("latin-1"))
        translations: dict[str, dict[str, str]] = {}
        for name in names:
            match = re.fullmatch(r"PluginFurnitureCatalog_([A-Za-z_]+)\.properties", name)
            if match:
                translations[match.group(1)] = read_properties(archive.read(name).decode("latin-1"))
        licence_text = archive.read("LICENSE.TXT").decode("latin-1", "replace") if "LICENSE.TXT" in names else ""
    licence = _licence_of(licence_text)
    indices = sorted({int(k.split("#")[1]) for k in props if re.fullmatch(r"name#\d+", k)})
    items = []
    for n in indices:
        model = props.get(f"model#{n}", "").lstrip("/")
        where = f"{path}: item #{n} ({props.get(f'name#{n}', '?')})"
        if not model.lower().endswith(".obj"):
            continue  # not a mesh item this source can read
        rotation = None
        if f"modelRotation#{n}" in props:
            try:
                values = tuple(float(v) for v in props[f"modelRotation#{n}"].split())
            except ValueError as exc:
                raise SourceError(f"{where}: modelRotation is not 9 numbers") from exc
            if len(values) != 9:
                raise SourceError(f"{where}: modelRotation has {len(values)} numbers, expected 9")
            rotation = values
        items.append(CatalogItem(
            library=path.stem, index=n, item_id=props.get(f"id#{n}", model), name=props[f"name#{n}"].strip(),
            tags=tuple(t.strip() for t in props.get(f"tags#{n}", "").split(",") if t.strip()),
            category=props.get(f"category#{n}", "").strip(), creator=props.get(f"creator#{n}", "").strip(),
            model=model,
            size_cm=(_float(props, f"width#{n}", where), _float(props, f"height#{n}", where),
                     _float(props, f"depth#{n}", where)),
            rotation=rotation, licence=licence,
            names={lang: t[f"name#{n}"] for lang, t in sorted(translations.items()) if t.get(f"name#{n}")},
        ))
    return Library(path=path, name=path.stem, licence=licence, items=items)


def read_digests(paths: list[Path] | tuple[Path, ...]) -> set[str]:
    """SHA-256 digests (lower-case hex, one per line; ``#`` comments and blank lines ignored)."""
    digests: set[str] = set()
    for path in paths:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise SourceError(f"{path}: cannot read the digest list ({exc.strerror}); check --exclude-hashes") from exc
        for number, line in enumerate(lines, 1):
            text = line.split("#", 1)[0].strip().lower()
            if not text:
                continue
            token = text.split()[0]  # also accepts `sha256sum` output: "<digest>  <file>"
            if not re.fullmatch(r"[0-9a-f]{64}", token):
                raise SourceError(f"{path}:{number}: {line.strip()!r} is not a SHA-256 digest (64 hex digits)")
            digests.add(token)
    return digests


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


@dataclass
class ClassMap:
    """Ordered keyword rules from a TOML file; the first matching rule names the class."""

    rules: list[ClassRule]
    skip_categories: set[str]
    path: Path | None = None

    @classmethod
    def load(cls, path: Path = DEFAULT_CLASS_MAP) -> ClassMap:
        import tomllib

        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise SourceError(f"{path}: cannot read the class map ({exc.strerror}); check --class-map") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SourceError(f"{path}: not valid TOML ({exc}); fix the file or use the shipped class map") from exc
        rules = []
        for i, rule in enumerate(data.get("class", [])):
            if not isinstance(rule, dict) or not rule.get("name") or not rule.get("keywords"):
                raise SourceError(f"{path}: [[class]] rule {i + 1} needs a name and a non-empty keywords list")
            rules.append(ClassRule(
                name=str(rule["name"]), keywords=[_phrase_pattern(k) for k in rule["keywords"]],
                exclude=[_phrase_pattern(k) for k in rule.get("exclude", [])],
                categories={str(c) for c in rule.get("categories", [])}))
        if not rules:
            raise SourceError(f"{path}: no [[class]] rules; see resources/sweethome3d/class_map.toml")
        return cls(rules=rules, skip_categories={str(c) for c in data.get("skip_categories", [])}, path=Path(path))

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


def _materialise(archive: zipfile.ZipFile, item: CatalogItem, dest: Path) -> Path:
    """Write the item's folder (transformed OBJ, MTL, textures) to ``dest`` atomically; reuse it."""
    obj_path = dest / posixpath.basename(item.model)
    if obj_path.is_file():
        return obj_path
    folder = posixpath.dirname(item.model)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for info in archive.infolist():
            inside = info.filename.startswith(folder + "/")
            if info.is_dir() or not inside:
                continue
            relative = posixpath.relpath(info.filename, folder)
            if relative.startswith("..") or relative.lower().endswith((".html", ".txt")):
                continue
            target = tmp / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if info.filename == item.model:
                text = transform_obj(archive.read(info).decode("utf-8", "replace"), item.rotation, item.size_cm)
                target.write_text(text, encoding="utf-8")
            else:
                target.write_bytes(archive.read(info))
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return obj_path


def _library_paths(library_dir: Path) -> list[Path]:
    library_dir = Path(library_dir)
    if not library_dir.is_dir():
        raise SourceError(f"{library_dir}: no Sweet Home 3D furniture libraries here; {INSTALL_HINT}")
    paths = sorted(library_dir.glob("*.sh3f"))
    if not paths:
        raise SourceError(f"{library_dir}: holds no .sh3f files; {INSTALL_HINT}")
    return paths


def sweethome3d_jobs(config: SweetHome3DConfig) -> tuple[list[MeshJob], SourceReport]:
    """Mesh jobs for the selected, unreserved items, and a report of what was skipped and why.

    Reserved items are dropped first (only counted). An item whose OBJ cannot be read or
    transformed is listed in ``report.failures`` and the others go on.
    """
    class_map = ClassMap.load(config.class_map)
    wanted = list(config.classes) if config.classes else class_map.class_names
    unknown = sorted(set(wanted) - set(class_map.class_names))
    if unknown:
        raise SourceError(f"{class_map.path}: no rule for class(es) {unknown}; the map has {class_map.class_names}")
    excluded = read_digests([RESERVED_DIGESTS, *config.exclude_hashes])
    report = SourceReport()
    candidates: dict[str, list[tuple[CatalogItem, str]]] = {c: [] for c in wanted}
    libraries = [read_library(p) for p in _library_paths(config.library_dir)]
    with contextlib.ExitStack() as stack:  # each archive opened once, for the hashes and the selected items
        archives = {lib.name: stack.enter_context(zipfile.ZipFile(lib.path)) for lib in libraries}
        _select(libraries, archives, class_map, excluded, config, candidates, report)
        return _materialise_jobs(wanted, candidates, archives, config, report), report


def _select(libraries: list[Library], archives: dict[str, zipfile.ZipFile], class_map: ClassMap, excluded: set[str],
            config: SweetHome3DConfig, candidates: dict[str, list[tuple[CatalogItem, str]]],
            report: SourceReport) -> None:
    """Hash every item's OBJ, drop the reserved ones first (counted only), then licence and class."""
    for library in libraries:
        report.libraries[library.name] = library.licence
        archive = archives[library.name]
        for item in library.items:
            report.items_seen += 1
            try:
                obj_bytes = archive.read(item.model)
            except KeyError:
                report.failures.append({"library": library.name, "item": item.item_id,
                                        "reason": f"{item.model} is named by the catalogue but missing"})
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
                report.unmapped.append({"library": library.name, "item": item.item_id, "name": item.name,
                                        "category": item.category})
                continue
            if class_name in candidates:
                candidates[class_name].append((item, digest))


def _materialise_jobs(wanted: list[str], candidates: dict[str, list[tuple[CatalogItem, str]]],
                      archives: dict[str, zipfile.ZipFile], config: SweetHome3DConfig,
                      report: SourceReport) -> list[MeshJob]:
    """Draw ``per_class`` items per class with the seed, write their folders, and make their jobs."""
    rng = np.random.default_rng(config.seed)
    jobs: list[MeshJob] = []
    for class_name in wanted:
        chosen = sorted(candidates[class_name], key=lambda pair: pair[0].key)
        if config.per_class and len(chosen) > config.per_class:
            keep = sorted(rng.choice(len(chosen), size=config.per_class, replace=False))
            chosen = [chosen[i] for i in keep]
        for item, digest in chosen:
            try:
                obj_path = _materialise(archives[item.library], item, Path(config.cache_dir) / class_name / item.key)
            except (SourceError, OSError, zipfile.BadZipFile, UnicodeError) as exc:
                report.failures.append({"library": item.library, "item": item.item_id, "reason": str(exc)})
                continue
            report.per_class[class_name] = report.per_class.get(class_name, 0) + 1
            jobs.append(MeshJob(
                id=item.key, class_name=class_name, source=obj_path, text=item_text(item),
                split=stable_split(item.key, config.test_fraction),
                extra={"library": item.library, "item_id": item.item_id, "name": item.name, "tags": list(item.tags),
                       "category": item.category, "creator": item.creator, "licence": item.licence,
                       "size_cm": list(item.size_cm), "model_rotation": list(item.rotation or ()),
                       "obj_sha256": digest, "names": dict(item.names),
                       "prompts": list(dict.fromkeys([item.name, *item.names.values()]))},
            ))
    return jobs


def write_report(report: SourceReport, path: Path) -> None:
    """``sweethome3d_report.json``: counts, unmapped items and failures (never a reserved item)."""
    from core.io_utils import atomic_write_json

    payload: dict[str, Any] = {
        "libraries": report.libraries, "items_seen": report.items_seen,
        "reserved_skipped": report.reserved_skipped, "licence_skipped": report.licence_skipped,
        "per_class": report.per_class, "unmapped": report.unmapped, "failures": report.failures,
    }
    atomic_write_json(Path(path), payload)


def attribution_markdown(extras: list[dict[str, Any]]) -> str:
    """The CC-BY attribution list of the items a data set or model uses: item, creator, library, licence.

    ``extras``: the per-shape records this source writes (``MeshJob.extra``, kept in the manifest).
    """
    rows = ["| item | creator | library | licence |", "|---|---|---|---|"]
    for e in sorted(extras, key=lambda e: (e.get("library", ""), e.get("item_id", ""))):
        rows.append(f"| {e.get('name', '')} | {e.get('creator', '')} | {e.get('library', '')} | "
                    f"{e.get('licence', '')} |")
    return "\n".join(rows) + "\n"
