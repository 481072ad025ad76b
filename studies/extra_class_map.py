"""A class map for the "more shapes" study: the shipped map plus broad classes for every unmapped item.

The shipped map (resources/sweethome3d/class_map.toml) names 12 furniture classes and leaves about 420
unreserved Sweet Home 3D items unmapped (kitchenware, people and animals, doors and windows, garden
things, clothes, switches, ...). Issue 27's study asks whether a prior generalises better when it sees
more shapes; these are the only more shapes there are offline. This script writes the shipped map's
rules, then one rule per broad class whose keywords are the exact names of the unmapped items of its
catalogue categories (read from a preprocessing report), with no skipped categories:

* ``figure``: Characters (people, animals);
* ``door_window``: Doors and windows;
* ``kitchenware``: Kitchen;
* ``outdoor``: Exterior;
* ``household``: every other category (Miscellaneous, Bedroom, Office, Bathroom, Living room, Lights,
  Staircases).

    python -m studies.extra_class_map --report data/sweethome3d/sweethome3d_report.json \\
        --out runs/more_shapes/class_map.toml
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from core.data.sources.sweethome3d import DEFAULT_CLASS_MAP, ClassMap
from core.utils.io_utils import atomic_write_bytes

BROAD_CLASSES = {
    "Characters": "figure",
    "Doors and windows": "door_window",
    "Kitchen": "kitchenware",
    "Exterior": "outdoor",
}
OTHER = "household"


def keyword(name: str) -> str:
    """An item name as the class map matches names: lower case, dashes as spaces, single spaces."""
    return " ".join(name.lower().replace("-", " ").split())


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a TOML basic string


def extra_rules(unmapped: list[dict]) -> str:
    """The TOML of the broad classes' rules for a report's ``unmapped`` items."""
    by_class: dict[str, dict[str, set[str]]] = {}
    for item in unmapped:
        category, name = str(item.get("category", "")), keyword(str(item.get("name", "")))
        if not name:
            continue
        cls = BROAD_CLASSES.get(category, OTHER)
        entry = by_class.setdefault(cls, {"categories": set(), "keywords": set()})
        entry["categories"].add(category)
        entry["keywords"].add(name)
    blocks = []
    for cls in [*BROAD_CLASSES.values(), OTHER]:
        if cls not in by_class:
            continue
        entry = by_class[cls]
        keywords = ", ".join(_toml_string(k) for k in sorted(entry["keywords"]))
        categories = ", ".join(_toml_string(c) for c in sorted(entry["categories"]))
        blocks.append(f'[[class]]\nname = "{cls}"\nkeywords = [{keywords}]\ncategories = [{categories}]\n')
    return "\n".join(blocks)


def shipped_rules(path: Path) -> str:
    """The shipped map's text without its ``skip_categories`` line (every category is used here)."""
    text = path.read_text(encoding="utf-8")
    return re.sub(r"(?m)^skip_categories\s*=\s*\[[^\]]*\]", "", text)  # the list may span lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--report", type=Path, required=True, help="a Sweet Home 3D preprocessing report (its unmapped list)"
    )
    ap.add_argument("--out", type=Path, required=True, help="the class map to write (.toml)")
    args = ap.parse_args()
    try:
        report = json.loads(args.report.read_text(encoding="utf-8"))
        unmapped = report["unmapped"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        sys.exit(f"{args.report}: not a preprocessing report with an 'unmapped' list ({exc})")
    text = "# Written by studies/extra_class_map.py: the shipped map, then broad classes for its unmapped items.\n"
    text += shipped_rules(DEFAULT_CLASS_MAP) + "\n" + extra_rules(unmapped)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(args.out, text.encode("utf-8"))
    except OSError as exc:
        sys.exit(f"{args.out}: cannot write the class map ({exc}); give a writable file path to --out")
    classes = ClassMap.load(args.out).class_names  # checked as preprocessing checks it
    print(f"{args.out}: {len(classes)} classes ({', '.join(classes)})")


if __name__ == "__main__":
    main()
