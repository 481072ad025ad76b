"""Fuzz the Sweet Home 3D source with damaged libraries and class maps (issue 28).

Each input is a tiny library (tests/sh3f_factory.py) damaged in one to three random ways: truncated,
bits flipped, deflate data overwritten, a CRC or a declared size that lies, an unsupported
compression method or the encryption flag, members and models with ``../`` or absolute paths,
catalogue fields with hostile values, library names that differ only in punctuation, a FIFO, a
folder or a link to a device named ``*.sh3f``; and a random class map (hostile class names,
strings for lists, unknown keys, binary data, invalid TOML). The archive and catalogue layer is
where the damage bites, so most inputs go through :func:`sweethome3d_jobs`; every twentieth goes
through ``main.main(["preprocess", ...])`` with 100 samples a shape. For every input:

- no exception other than :class:`SourceError`, whose message is one line naming a file;
- every item is a job, a failure with its reason, unmapped, or counted as reserved / other licence;
- nothing is written outside ``--out``, and nothing is deleted: the inputs, a canary folder beside
  ``--out`` and files a user keeps inside ``--out`` are unchanged.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import time
import zipfile
from pathlib import Path

import main
from core.data.sources.sweethome3d import SweetHome3DConfig, sweethome3d_jobs
from core.utils.errors import SourceError
from tests.sh3f_factory import Item, central_entry, chairs, member_offsets, set_declared_size, write_library

N_INPUTS = 240
SEED = 28
HOSTILE_NAMES = [
    "../../../victim",
    ".",
    "..",
    "",
    "a/b",
    "/tmp/abs",
    ".hidden",
    "x" * 300,
    "椅子",
    "chair\n",
    "-dash",
    "con",
    "chair",
]
HOSTILE_VALUES = ["", "abc", "nan", "inf", "-inf", "-1", "0", "1e309", "1e-320", "1e6", "5", " 7 ", "0x10"]
HOSTILE_ROTATIONS = [
    "",
    "1 0 0",
    "0 0 0 0 0 0 0 0 0",
    "nan 0 0 0 1 0 0 0 1",
    "1 0 0 0 0 1 0 -1 0",
    "1e308 0 0 0 1e308 0 0 0 1e308",
    "a b c d e f g h i",
]
HOSTILE_MODELS = [
    "/../../escape/x.obj",
    "lib/../../x.obj",
    "/abs/../../x.obj",
    "../x.obj",
    "/lib/missing/m.obj",
    "/x.OBJ",
    "/lib/dir/",
    "\\lib\\x.obj",
    "/" + "d/" * 60 + "m.obj",
]


def _items(rng: random.Random) -> list[Item]:
    items = chairs(3) + [Item("Desk lamp", category="Lights"), Item("Chair root", folder="/")]
    if rng.random() < 0.3:
        items.append(Item("Chair 9", model=rng.choice(HOSTILE_MODELS)))
    if rng.random() < 0.3:  # two entries of one model folder
        items.append(Item("Chair 1", width="120"))
    if rng.random() < 0.5:
        item = rng.choice(items)
        field = rng.choice(["width", "depth", "height", "rotation"])
        setattr(item, field, rng.choice(HOSTILE_ROTATIONS if field == "rotation" else HOSTILE_VALUES))
    return items


def _flip_bits(path: Path, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    for _ in range(rng.randint(1, 20)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))


def _truncate(path: Path, rng: random.Random) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: rng.randrange(len(data))])


def _bad_deflate(path: Path, rng: random.Random) -> None:
    offsets = member_offsets(path)
    start, size = offsets[rng.choice(sorted(offsets))]
    data = bytearray(path.read_bytes())
    data[start : start + size] = bytes(rng.randrange(256) for _ in range(size))
    path.write_bytes(bytes(data))


def _central_field(path: Path, rng: random.Random, offset: int, width: int, value: int) -> None:
    with zipfile.ZipFile(path) as archive:
        member = rng.choice(archive.namelist())
    data = bytearray(path.read_bytes())
    at = central_entry(bytes(data), member)
    data[at + offset : at + offset + width] = value.to_bytes(width, "little")
    path.write_bytes(bytes(data))


def _bad_crc(path: Path, rng: random.Random) -> None:
    _central_field(path, rng, 16, 4, rng.randrange(2**32))


def _huge_size(path: Path, rng: random.Random) -> None:
    with zipfile.ZipFile(path) as archive:
        member = rng.choice(archive.namelist())
    set_declared_size(path, member, rng.choice([2**31, 2**32 - 1, 70 * 2**20, rng.randrange(2**32)]))


def _odd_method(path: Path, rng: random.Random) -> None:
    _central_field(path, rng, 10, 2, rng.choice([1, 6, 9, 14, 99]))  # shrunk, imploded, deflate64, lzma, unknown


def _encrypted(path: Path, rng: random.Random) -> None:
    _central_field(path, rng, 8, 2, 1)  # general purpose flag bit 0: encrypted


def _escaping_members(path: Path, rng: random.Random) -> None:
    with zipfile.ZipFile(path, "a") as archive:
        for name in rng.sample(
            [
                "../../evil.obj",
                "/abs/evil.obj",
                "lib/Chair_1/../../../evil.txt",
                "lib/Chair_1/sub/../../../../evil.mtl",
                "lib/Chair_1/./x.mtl",
                "lib/Chair_1//y.mtl",
                "lib/Chair_1/Chair_1.obj/inner",
            ],
            3,
        ):
            archive.writestr(name, b"evil")


DAMAGES = [_flip_bits, _truncate, _bad_deflate, _bad_crc, _huge_size, _odd_method, _encrypted, _escaping_members]


def _odd_library_entry(libs: Path, rng: random.Random) -> None:
    """Something named like a library that is not one."""
    kind = rng.choice(["fifo", "folder", "device", "empty", "twin"])
    if kind == "fifo":
        os.mkfifo(libs / "Pipe.sh3f")
    elif kind == "folder":
        (libs / "Folder.sh3f").mkdir()
    elif kind == "device":
        (libs / "Zero.sh3f").symlink_to("/dev/zero")
    elif kind == "empty":
        (libs / "Empty.sh3f").write_bytes(b"")
    else:  # a name that differs only in punctuation
        write_library(libs / "Mini_lib.sh3f", chairs(2))


def _class_map(path: Path, rng: random.Random) -> Path | None:
    """None (the shipped map) or a random, often broken, class map."""
    roll = rng.random()
    if roll < 0.55:
        return None
    if roll < 0.6:
        path.write_bytes(bytes(rng.randrange(256) for _ in range(64)))
        return path
    if roll < 0.65:
        path.write_text("[[class]\nname = ", encoding="utf-8")
        return path
    hostile = rng.random() < 0.5  # else a valid map, so that the libraries' damage is reached
    name = rng.choice(HOSTILE_NAMES) if hostile else "chair"
    keywords = rng.choice(['"chair"', "[1, 2]", "[]", '[""]', "3"] if hostile else ['["chair"]', '["chair", "lamp"]'])
    extra = rng.choice(
        ['categories = "Living room"\n', 'exlcude = ["x"]\n', 'name2 = "y"\n', ""]
        if hostile
        else ["", 'categories = ["Living room"]\n', 'exclude = ["desk"]\n']
    )
    top = rng.choice(
        ['skip_categories = "Lights"\n', "other = 1\n", ""] if hostile else ["", 'skip_categories = ["Lights"]\n']
    )
    path.write_text(
        f"{top}[[class]]\nname = {name!r}\nkeywords = {keywords}\n{extra}"
        '[[class]]\nname = "lamp"\nkeywords = ["lamp"]\n',
        encoding="utf-8",
    )
    return path


def _build_case(case: Path, rng: random.Random) -> tuple[Path, Path | None]:
    libs = case / "libs"
    path = write_library(libs / "Mini lib.sh3f", _items(rng))
    if rng.random() < 0.85:
        for damage in rng.sample(DAMAGES, rng.randint(1, 3)):
            with contextlib.suppress(Exception):  # the file may be too damaged already to find a member in
                damage(path, rng)
    if rng.random() < 0.25:
        _odd_library_entry(libs, rng)
    return libs, _class_map(case / "map.toml", rng)


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path below ``root`` (links not followed) with a file's bytes (None for folders, links, FIFOs)."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            regular = path.is_file() and not path.is_symlink()
            found[str(path.relative_to(root))] = path.read_bytes() if regular else None
    return found


def _check_accounting(jobs, report, out: Path) -> None:
    item_failures = [f for f in report.failures if f["item"]]
    assert report.items_seen == (
        len(jobs) + len(item_failures) + len(report.unmapped) + report.reserved_skipped + report.licence_skipped
    ), report
    assert all(f["reason"] and "\n" not in f["reason"] for f in report.failures)
    assert len({(j.class_name, j.id) for j in jobs}) == len(jobs)
    for job in jobs:
        assert job.source.is_file() and out.resolve() in job.source.resolve().parents


def _run_source(libs: Path, class_map: Path | None, out: Path) -> None:
    config = SweetHome3DConfig(
        cache_dir=out / "meshes" / "sweethome3d",
        library_dir=libs,
        test_fraction=0.0,
        **({"class_map": class_map} if class_map else {}),
    )
    try:
        jobs, report = sweethome3d_jobs(config)
    except SourceError as exc:
        assert "\n" not in str(exc) and ("/" in str(exc)), str(exc)
        return
    _check_accounting(jobs, report, out)


def _run_command(libs: Path, class_map: Path | None, out: Path) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main.main(
            [
                "preprocess",
                "--source",
                "sweethome3d",
                "--library-dir",
                str(libs),
                "--out",
                str(out),
                "--samples",
                "100",
                "--surface-samples",
                "50",
                "--no-progress",
                "--test-fraction",
                "0",
                *(["--class-map", str(class_map)] if class_map else []),
            ]
        )
    text = err.getvalue()
    assert code in (0, 1, 2) and "Traceback" not in text, text
    assert len([line for line in text.splitlines() if line.startswith("error:")]) == (code == 2)


def test_damaged_libraries_and_class_maps(tmp_path):
    rng = random.Random(SEED)
    canary = tmp_path / "canary"
    (canary / "inner").mkdir(parents=True)
    (canary / "inner" / "keep.txt").write_text("precious")
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "keep.txt").write_text("precious")
    outside = _tree(tmp_path)
    start = time.perf_counter()
    for number in range(N_INPUTS):
        case = tmp_path / "cases" / f"{number:03d}"
        libs, class_map = _build_case(case, rng)
        out = case / "out"
        (out / "meshes" / "sweethome3d" / "chair" / "mine").mkdir(parents=True)  # what a user keeps in --out
        (out / "meshes" / "sweethome3d" / "chair" / "mine" / "keep.txt").write_text("mine")
        (out / "notes.txt").write_text("mine")
        before = _tree(case)
        (_run_command if number % 20 == 0 else _run_source)(libs, class_map, out)
        after = _tree(case)
        assert {k: v for k, v in after.items() if k in before} == before, f"input {number}: something changed"
        assert all(k.startswith("out/") or k == "out" for k in set(after) - set(before)), f"input {number}"
    seconds = time.perf_counter() - start
    assert {k: v for k, v in _tree(tmp_path).items() if not k.startswith("cases")} == outside
    assert seconds < 60, f"{N_INPUTS} damaged inputs took {seconds:.1f} s"
    print(f"{N_INPUTS} damaged inputs in {seconds:.1f} s")
