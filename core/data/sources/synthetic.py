"""The built-in procedural data set: coloured, textured shapes of 7 classes with thin parts.

Why it exists: everything (preprocessing, training, TTO, the viewer, the tests) must run on a
fresh machine with no download. Each shape is a union of trimesh primitives (boxes, cylinders,
capsules, revolved profiles) with plausible random proportions, one material per part (a
base colour from a class palette) and, for some parts, an image texture with UVs, so all colour
paths of :mod:`core.data.mesh_io` are exercised. Thin parts (chair and table legs, lamp arms, mug
handles, wings, shelf rods) are 1-3 % of the shape's size and listed in the index, which is
what the thin-structure metrics and TTO losses are measured on.

Shapes are built Z-up and written Y-up (glTF's convention, as Objaverse). Each shape's
randomness comes from ``default_rng([seed, class number, index])``, so the output is
deterministic and does not depend on which classes are requested.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import trimesh
from PIL import Image

from core.utils.io_utils import atomic_write_bytes, atomic_write_json

__all__ = ["CLASSES", "SyntheticConfig", "build_shape", "write_synthetic_set", "Part"]

log = logging.getLogger(__name__)

CLASSES: tuple[str, ...] = ("chair", "table", "lamp", "mug", "vase", "airplane", "shelf")

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (200, 40, 40),
    "orange": (230, 130, 30),
    "yellow": (225, 200, 40),
    "green": (50, 160, 70),
    "teal": (30, 150, 150),
    "blue": (40, 80, 200),
    "purple": (130, 60, 170),
    "pink": (230, 120, 170),
    "white": (235, 235, 230),
    "grey": (130, 130, 135),
    "black": (35, 35, 40),
    "brown": (120, 75, 40),
    "beige": (215, 190, 150),
    "silver": (190, 195, 200),
}
CLASS_COLOURS: dict[str, tuple[str, ...]] = {
    "chair": ("red", "blue", "green", "brown", "black", "white", "orange"),
    "table": ("brown", "beige", "white", "black", "grey"),
    "lamp": ("yellow", "white", "red", "teal", "black", "green"),
    "mug": ("white", "red", "blue", "yellow", "green", "pink", "black"),
    "vase": ("blue", "teal", "purple", "orange", "white", "green", "pink"),
    "airplane": ("white", "silver", "grey", "blue", "red"),
    "shelf": ("brown", "beige", "white", "black", "grey"),
}
_Z_UP_TO_Y_UP = trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0])


@dataclass
class SyntheticConfig:
    """What to generate."""

    shapes_per_class: int = 20
    """Shapes of each class."""
    seed: int = 0
    """Seed of the whole set (each shape derives its own generator from it)."""
    classes: tuple[str, ...] = CLASSES
    """Classes to generate (any subset of :data:`CLASSES`)."""
    test_fraction: float = 0.2
    """Fraction of each class held out as the test split (at least one when a class has >= 3)."""


@dataclass
class Part:
    """One primitive of a shape, with its colour (and texture)."""

    name: str
    mesh: trimesh.Trimesh
    colour: str
    thin: bool = False
    texture: str | None = None  # "stripes" | "checker" | None


# --------------------------------------------------------------------------- primitives


def _box(extents, centre) -> trimesh.Trimesh:
    return trimesh.creation.box(extents=extents, transform=trimesh.transformations.translation_matrix(centre))


def _rod(p0, p1, radius: float, sections: int = 16) -> trimesh.Trimesh:
    return trimesh.creation.cylinder(radius=radius, segment=np.array([p0, p1], float), sections=sections)


def _revolve(profile: np.ndarray, sections: int = 40) -> trimesh.Trimesh:
    """Closed solid of revolution about Z from a (radius, z) profile (axis end points added)."""
    pts = np.asarray(profile, float)
    pts = np.vstack([[0.0, pts[0, 1]], pts, [0.0, pts[-1, 1]]])
    return trimesh.creation.revolve(pts, sections=sections)


def _torus_arc(
    centre, radius: float, tube: float, start: float, stop: float, plane: str = "xz", n: int = 10
) -> list[trimesh.Trimesh]:
    """A bent tube as a chain of short rods (mug handles): arc in the given plane."""
    t = np.linspace(start, stop, n + 1)
    c = np.asarray(centre, float)
    if plane == "xz":
        pts = np.stack([c[0] + radius * np.cos(t), np.full_like(t, c[1]), c[2] + radius * np.sin(t)], 1)
    else:
        pts = np.stack([np.full_like(t, c[0]), c[1] + radius * np.cos(t), c[2] + radius * np.sin(t)], 1)
    rods = [_rod(a, b, tube, 12) for a, b in zip(pts[:-1], pts[1:], strict=True)]
    rods += [trimesh.creation.icosphere(1, tube).apply_translation(p) for p in pts[1:-1]]
    return rods


def _pick(rng: np.random.Generator, class_name: str, k: int = 1) -> list[str]:
    names = CLASS_COLOURS[class_name]
    return [names[i] for i in rng.choice(len(names), size=k, replace=k > len(names))]


# --------------------------------------------------------------------------- classes


def _chair(rng):
    w, d = rng.uniform(0.8, 1.1), rng.uniform(0.75, 1.0)
    seat_h, seat_t = rng.uniform(0.8, 1.0), rng.uniform(0.06, 0.1)
    leg_r = rng.uniform(0.02, 0.035)
    back_h = rng.uniform(0.7, 1.1)
    seat_c, leg_c, back_c = _pick(rng, "chair", 1)[0], rng.choice(["black", "grey", "brown", "silver"]), None
    back_c = seat_c if rng.random() < 0.6 else _pick(rng, "chair", 1)[0]
    parts = [
        Part(
            "seat",
            _box([w, d, seat_t], [0, 0, seat_h - seat_t / 2]),
            seat_c,
            texture="checker" if rng.random() < 0.4 else None,
        )
    ]
    inset = leg_r * 2
    for i, (sx, sy) in enumerate([(-1, -1), (1, -1), (1, 1), (-1, 1)]):
        x, y = sx * (w / 2 - inset), sy * (d / 2 - inset)
        parts.append(Part(f"leg_{i}", _rod([x, y, 0], [x, y, seat_h - seat_t], leg_r), leg_c, thin=True))
    y_back = d / 2 - 0.04
    top = seat_h + back_h
    if rng.random() < 0.5:  # solid back
        parts.append(Part("back", _box([w, 0.06, back_h], [0, y_back, seat_h + back_h / 2]), back_c))
    else:  # slatted back: posts, top rail, thin slats
        slat_r = rng.uniform(0.012, 0.02)
        for i, sx in enumerate((-1, 1)):
            x = sx * (w / 2 - inset)
            parts.append(Part(f"post_{i}", _rod([x, y_back, seat_h], [x, y_back, top], leg_r), back_c, thin=True))
        parts.append(Part("rail", _box([w, 0.06, 0.12], [0, y_back, top - 0.06]), back_c))
        n = int(rng.integers(2, 5))
        for i, x in enumerate(np.linspace(-w / 2 + 0.2, w / 2 - 0.2, n)):
            slat = _rod([x, y_back, seat_h], [x, y_back, top - 0.1], slat_r)
            parts.append(Part(f"slat_{i}", slat, back_c, thin=True))
    if rng.random() < 0.4:  # arm rests on thin posts
        for i, sx in enumerate((-1, 1)):
            x = sx * (w / 2 - 0.03)
            post = _rod([x, -d / 2 + 0.08, seat_h], [x, -d / 2 + 0.08, seat_h + 0.3], leg_r * 0.8)
            parts.append(Part(f"armpost_{i}", post, leg_c, thin=True))
            parts.append(Part(f"arm_{i}", _box([0.07, d - 0.05, 0.04], [x, 0, seat_h + 0.3]), back_c))
    text = f"a {seat_c} chair with four thin {leg_c} legs"
    return parts, text


def _table(rng):
    w, d = rng.uniform(1.3, 1.9), rng.uniform(0.7, 1.0)
    h, t = rng.uniform(0.7, 0.95), rng.uniform(0.04, 0.08)
    top_c = _pick(rng, "table")[0]
    leg_c = rng.choice(["black", "grey", "brown", "silver"])
    parts = [Part("top", _box([w, d, t], [0, 0, h - t / 2]), top_c, texture="stripes" if rng.random() < 0.6 else None)]
    if rng.random() < 0.75:
        r = rng.uniform(0.02, 0.04)
        for i, (sx, sy) in enumerate([(-1, -1), (1, -1), (1, 1), (-1, 1)]):
            x, y = sx * (w / 2 - 0.08), sy * (d / 2 - 0.08)
            parts.append(Part(f"leg_{i}", _rod([x, y, 0], [x, y, h - t], r), leg_c, thin=True))
        desc = "four thin legs"
    else:
        parts.append(Part("pedestal", _rod([0, 0, 0.04], [0, 0, h - t], rng.uniform(0.05, 0.08), 24), leg_c))
        parts.append(Part("foot", _rod([0, 0, 0], [0, 0, 0.04], rng.uniform(0.3, 0.4), 32), leg_c))
        desc = "a central pedestal"
    return parts, f"a {top_c} table with {desc}"


def _lamp(rng):
    base_r = rng.uniform(0.18, 0.28)
    arm_r = rng.uniform(0.012, 0.02)
    c_base, c_shade = rng.choice(["black", "grey", "silver", "white"]), _pick(rng, "lamp")[0]
    h1 = rng.uniform(0.6, 1.0)
    lean = rng.uniform(0.2, 0.55)
    h2 = rng.uniform(0.3, 0.6)
    joint = np.array([0, 0, 0.05 + h1])
    head = joint + np.array([lean, 0, h2])
    parts = [
        Part("base", _rod([0, 0, 0], [0, 0, 0.05], base_r, 32), c_base),
        Part("arm_lower", _rod([0, 0, 0.05], joint, arm_r), c_base, thin=True),
        Part("arm_upper", _rod(joint, head, arm_r), c_base, thin=True),
        Part("joint", trimesh.creation.icosphere(2, arm_r * 2).apply_translation(joint), c_base),
    ]
    shade_h = rng.uniform(0.25, 0.4)
    r_top, r_bot = rng.uniform(0.08, 0.14), rng.uniform(0.18, 0.28)
    shade = _revolve(np.array([[r_bot, 0.0], [r_top, shade_h]]))
    shade.apply_translation(head + np.array([0, 0, -shade_h * 0.6]))
    parts.append(Part("shade", shade, c_shade, texture="stripes" if rng.random() < 0.3 else None))
    return parts, f"a desk lamp with a thin {c_base} arm and a {c_shade} shade"


def _mug(rng):
    r, h = rng.uniform(0.28, 0.4), rng.uniform(0.6, 0.95)
    c = _pick(rng, "mug")[0]
    taper = rng.uniform(0.85, 1.1)
    body = _revolve(np.array([[r * taper, 0.0], [r, h]]), 40)
    parts = [Part("body", body, c, texture="stripes" if rng.random() < 0.5 else None)]
    hr, tube = rng.uniform(0.16, 0.24), rng.uniform(0.015, 0.025)
    zc = h * rng.uniform(0.45, 0.55)
    for i, rod in enumerate(_torus_arc([r - tube, 0, zc], hr, tube, -np.pi / 2, np.pi / 2, "xz")):
        parts.append(Part(f"handle_{i}", rod, c, thin=True))
    return parts, f"a {c} mug with a handle"


def _vase(rng):
    h = rng.uniform(1.0, 1.6)
    r0 = rng.uniform(0.15, 0.3)
    bulge, neck = rng.uniform(0.1, 0.3), rng.uniform(0.05, 0.15)
    zs = np.linspace(0, h, 16)
    radius = r0 + bulge * np.sin(np.pi * zs / h * rng.uniform(0.8, 1.2)) - neck * (zs / h) ** 3
    radius = np.clip(radius, 0.06, None)
    c = _pick(rng, "vase")[0]
    body = _revolve(np.stack([radius, zs], 1), 48)
    texture = "checker" if rng.random() < 0.5 else "stripes"
    return [Part("body", body, c, texture=texture)], f"a {c} vase with a decorated body"


def _airplane(rng):
    length, fr = rng.uniform(1.6, 2.0), rng.uniform(0.08, 0.12)
    span, chord, thick = rng.uniform(1.4, 1.9), rng.uniform(0.25, 0.4), rng.uniform(0.02, 0.035)
    c, c2 = _pick(rng, "airplane")[0], rng.choice(["red", "blue", "grey", "white"])
    fuselage = trimesh.creation.capsule(height=length - 2 * fr, radius=fr, count=[16, 16])
    fuselage.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [0, 1, 0]))
    wing_x = rng.uniform(-0.1, 0.15)
    parts = [
        Part("fuselage", fuselage, c),
        Part("wing", _box([chord, span, thick], [wing_x, 0, -fr * 0.3]), c2, thin=True),
        Part("stabiliser", _box([chord * 0.5, span * 0.35, thick], [-length / 2 + 0.12, 0, 0]), c2, thin=True),
        Part("fin", _box([chord * 0.5, thick, rng.uniform(0.2, 0.35)], [-length / 2 + 0.12, 0, 0.15]), c2, thin=True),
    ]
    return parts, f"a {c} airplane with thin {c2} wings"


def _shelf(rng):
    w, d, h = rng.uniform(0.8, 1.3), rng.uniform(0.3, 0.45), rng.uniform(1.2, 1.9)
    board_t = rng.uniform(0.03, 0.05)
    n = int(rng.integers(3, 6))
    c = _pick(rng, "shelf")[0]
    parts = []
    for i, z in enumerate(np.linspace(0.05, h - board_t, n)):
        parts.append(
            Part(
                f"board_{i}",
                _box([w, d, board_t], [0, 0, z + board_t / 2]),
                c,
                texture="stripes" if i == 0 and rng.random() < 0.5 else None,
            )
        )
    rod_r = rng.uniform(0.015, 0.025)
    rod_c = rng.choice(["black", "silver", "grey"])
    for i, (sx, sy) in enumerate([(-1, -1), (1, -1), (1, 1), (-1, 1)]):
        x, y = sx * (w / 2 - rod_r), sy * (d / 2 - rod_r)
        parts.append(Part(f"rod_{i}", _rod([x, y, 0], [x, y, h], rod_r), rod_c, thin=True))
    return parts, f"a {c} shelf with {n} boards on thin {rod_c} rods"


BUILDERS: dict[str, Callable[[np.random.Generator], tuple[list[Part], str]]] = {
    "chair": _chair,
    "table": _table,
    "lamp": _lamp,
    "mug": _mug,
    "vase": _vase,
    "airplane": _airplane,
    "shelf": _shelf,
}


# --------------------------------------------------------------------------- colours and textures


def _texture_image(kind: str, colour: tuple[int, int, int], rng: np.random.Generator, size: int = 64) -> Image.Image:
    base = np.array(colour, np.float32)
    other = np.clip(base * 0.45 + rng.uniform(0, 120, 3), 0, 255)
    u = np.arange(size)[None, :]
    v = np.arange(size)[:, None]
    period = int(rng.integers(6, 14))
    if kind == "checker":
        mask = ((u // period) + (v // period)) % 2 == 0
    else:
        mask = np.broadcast_to((v // period) % 2 == 0, (size, size))
    img = np.where(mask[..., None], base, other).astype(np.uint8)
    return Image.fromarray(img, "RGB")


def _uv(mesh: trimesh.Trimesh) -> np.ndarray:
    """Cylindrical UVs about the part's own axis-aligned centre (fine for stripes and checkers)."""
    v = mesh.vertices - mesh.bounds.mean(axis=0)
    ext = np.maximum(mesh.extents, 1e-9)
    u = np.arctan2(v[:, 1], v[:, 0]) / (2 * np.pi) + 0.5
    w = (v[:, 2] / ext[2]) + 0.5 if ext[2] > 0.2 * ext.max() else (v[:, 0] / ext[0]) + 0.5
    return np.stack([u * 2.0, w], 1)


def _dressed(part: Part, rng: np.random.Generator) -> trimesh.Trimesh:
    mesh = part.mesh.copy()
    rgb = PALETTE[part.colour]
    if part.texture:
        material = trimesh.visual.material.PBRMaterial(
            name=part.name,
            baseColorTexture=_texture_image(part.texture, rgb, rng),
            baseColorFactor=[255, 255, 255, 255],
            metallicFactor=0.0,
            roughnessFactor=0.8,
        )
        mesh.visual = trimesh.visual.TextureVisuals(uv=_uv(mesh), material=material)
    else:
        material = trimesh.visual.material.PBRMaterial(
            name=part.name, baseColorFactor=[*rgb, 255], metallicFactor=0.0, roughnessFactor=0.8
        )
        mesh.visual = trimesh.visual.TextureVisuals(material=material)
    return mesh


# --------------------------------------------------------------------------- public API


def _shape_rng(class_name: str, index: int, seed: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), CLASSES.index(class_name), int(index)])


def build_shape(class_name: str, index: int, seed: int = 0) -> tuple[trimesh.Scene, dict]:
    """One shape as a Y-up trimesh Scene (one geometry per part) and its info.

    info: ``{"text", "parts": [names], "thin_parts": [names], "colours": {part: name}}``.
    """
    if class_name not in BUILDERS:
        raise ValueError(f"unknown synthetic class {class_name!r}; choose from {list(CLASSES)}")
    rng = _shape_rng(class_name, index, seed)
    parts, text = BUILDERS[class_name](rng)
    scene = trimesh.Scene()
    for part in parts:
        mesh = _dressed(part, rng)
        mesh.apply_transform(_Z_UP_TO_Y_UP)
        scene.add_geometry(mesh, geom_name=part.name, node_name=part.name)
    info = {
        "text": text,
        "parts": [p.name for p in parts],
        "thin_parts": [p.name for p in parts if p.thin],
        "colours": {p.name: p.colour for p in parts},
        "textured": [p.name for p in parts if p.texture],
    }
    return scene, info


def _split_of(config: SyntheticConfig, class_name: str) -> list[str]:
    n = config.shapes_per_class
    n_test = int(round(config.test_fraction * n))
    if n >= 3 and config.test_fraction > 0:
        n_test = max(1, n_test)
    order = np.random.default_rng([int(config.seed), CLASSES.index(class_name), 7919]).permutation(n)
    splits = ["train"] * n
    for i in order[:n_test]:
        splits[int(i)] = "test"
    return splits


GENERATOR = 1
"""Version of the shape builders: part of every shape's fingerprint (raise it when a builder changes)."""


def shape_fingerprint(class_name: str, index: int, seed: int) -> str:
    """What a shape's GLB is made from: the generator version, its class, number and seed."""
    return f"synthetic:{GENERATOR}:{class_name}:{int(index)}:{int(seed)}"


def _saved_index(index_path: Path) -> dict | None:
    """The index an earlier run wrote, or None when it is missing or unreadable."""
    if not index_path.exists():
        return None
    try:
        saved = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        saved = None
    if not isinstance(saved, dict) or not isinstance(saved.get("shapes"), list):
        log.warning("%s: unreadable, regenerating the index", index_path)
        return None
    return saved


def _saved_fingerprints(saved: dict | None) -> dict[str, str]:
    """GLB file → fingerprint of the shape it holds, as the earlier run's index says (files of an index
    without fingerprints were made with that index's seed)."""
    if saved is None:
        return {}
    seed = (saved.get("config") or {}).get("seed") if isinstance(saved.get("config"), dict) else None
    found = {}
    for entry in saved["shapes"]:
        if isinstance(entry, dict) and isinstance(entry.get("file"), str):
            made = entry.get("fingerprint")
            number = str(entry.get("id", "")).rsplit("_", 1)[-1]
            if made is None and isinstance(seed, int) and entry.get("class_name") in CLASSES and number.isdigit():
                made = shape_fingerprint(entry["class_name"], int(number), seed)
            if isinstance(made, str):
                found[entry["file"]] = made
    return found


def write_synthetic_set(config: SyntheticConfig, mesh_dir: Path, progress: bool = True) -> list[dict]:
    """Write ``mesh_dir/<class>/<id>.glb`` and ``mesh_dir/index.json``; return the index entries.

    Resumable: a GLB is kept only when the earlier index says it holds this shape (same class, number,
    seed and generator); any other is written again, so ``--seed 1`` after ``--seed 0`` never keeps a
    seed-0 mesh under a seed-1 description.
    """
    mesh_dir = Path(mesh_dir)
    unknown = [c for c in config.classes if c not in CLASSES]
    if unknown:
        raise ValueError(f"unknown synthetic class(es) {unknown}; choose from {list(CLASSES)}")
    config_dict = {**asdict(config), "classes": list(config.classes), "generator": GENERATOR}
    index_path = mesh_dir / "index.json"
    saved = _saved_index(index_path)
    if (
        saved is not None
        and saved.get("config") == config_dict
        and all(
            isinstance(e, dict) and "fingerprint" in e and (mesh_dir / str(e.get("file"))).is_file()
            for e in saved["shapes"]
        )
    ):
        return saved["shapes"]
    made = _saved_fingerprints(saved)
    jobs = [(c, i) for c in config.classes for i in range(config.shapes_per_class)]
    iterator = jobs
    if progress:
        from tqdm import tqdm

        iterator = tqdm(jobs, desc="synthetic shapes", unit="shape")
    entries = []
    splits = {c: _split_of(config, c) for c in config.classes}
    for class_name, i in iterator:
        shape_id = f"{class_name}_{i:03d}"
        rel = f"{class_name}/{shape_id}.glb"
        scene, info = build_shape(class_name, i, config.seed)
        path = mesh_dir / rel
        fingerprint = shape_fingerprint(class_name, i, config.seed)
        if not path.is_file() or made.get(rel) != fingerprint:
            atomic_write_bytes(path, scene.export(file_type="glb"))
        entries.append(
            {
                "id": shape_id,
                "class_name": class_name,
                "file": rel,
                "text": info["text"],
                "split": splits[class_name][i],
                "thin_parts": info["thin_parts"],
                "parts": info["parts"],
                "textured": info["textured"],
                "fingerprint": fingerprint,
            }
        )
    atomic_write_json(index_path, {"config": config_dict, "shapes": entries})
    return entries
