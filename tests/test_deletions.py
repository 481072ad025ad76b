"""Every place the project deletes a file or a folder is reviewed: a new one fails here until it is.

Issue 28: a class name ``../../victim`` made the Sweet Home 3D source ``rmtree`` a folder outside
``--out``. The rule since: no code path deletes anything it did not create, except where the
reason below says why that path can only be the project's own (a temporary of its own naming
under its own lock, a lock file whose owner is proven dead, a file of a run the user asked to
overwrite). The test parses ``core/``, ``viewer/``, ``main.py`` and ``scripts/`` (``ast`` for Python,
the ``rm`` lines of the shell scripts) and compares every call site with this list, both ways:
a new site must be added with its reason, a removed one must leave the list.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DELETERS = {"rmtree", "unlink", "rmdir", "removedirs"}
"""Attribute calls that delete (``shutil.rmtree``, ``Path.unlink``, ``os.unlink``, ``Path.rmdir`` ...);
``os.remove`` is matched as such (``list.remove`` is not a deletion)."""

REVIEWED: dict[tuple[str, str, str], str] = {
    (
        "core/utils/io_utils.py",
        "atomic_write",
        "os.unlink",
    ): "the temporary file mkstemp made in this call, when the write fails",
    (
        "core/data/sources/sh3f.py",
        "extract_item",
        "shutil.rmtree",
    ): "the .partial folder this call created (created is True only then), when the item fails",
    (
        "core/commands/cli_types.py",
        "remove_if_empty",
        "out.rmdir",
    ): "the --out folder check_out_dir created in this run, only while empty (rmdir cannot remove content)",
    (
        "core/data/preprocess.py",
        "_remove_stale_temporaries",
        "tmp.unlink",
    ): "a killed run's .NAME.XXXXXXXX.tmp (atomic_write's naming) of a file this run owns, under the folder lock",
    (
        "core/utils/folder_lock.py",
        "FolderLock._take_over",
        "aside.unlink",
    ): "the lock file of a run proven dead, renamed aside atomically and checked to be the one judged stale",
    (
        "core/utils/folder_lock.py",
        "FolderLock.release",
        "self.path.unlink",
    ): "this run's own lock file, only while it still holds this run's token",
    (
        "core/training/run_folder.py",
        "clear_run",
        "path.unlink",
    ): "--overwrite: only the files a run writes (RUN_FILES: latest.pt, epoch_*.pt, event files, logs), no folder",
    (
        "core/commands/reconstruct_command.py",
        "run",
        "(out / 'mesh.ply').unlink",
    ): "the command's own output name in --out (every fit rewrites it) when this fit has no surface, so an "
    "earlier fit's mesh does not pass for it; check_out_dir refused a folder there before the fit",
}

REVIEWED_SHELL: dict[tuple[str, str], str] = {
    ("scripts/gpu_check.sh", 'rm -f "/tmp/$name"'): "the wheel this script joined from its parts a moment before",
    ("scripts/gpu_check.sh", 'rm -rf "$WORK/run"'): "the script's own work folder (GPU_CHECK_WORK, default /tmp)",
    ("scripts/gpu_check.sh", 'rm -f "$LOG.prep" "$LOG.train"'): "its own logs, once joined into $LOG",
    ("scripts/gpu_check.sh", 'rm -f "$OUT/cpu_$bench.tmp"'): "its own temporary report, once appended",
    ("scripts/gpu_wheels.sh", "rm -rf .whl/warp"): "the script's own wheel cache, rebuilt next",
    ("scripts/gpu_wheels.sh", 'rm -rf "$tmp"'): "its own download folder (.whl/warp-download), once split",
}


def _python_files() -> list[Path]:
    files = [ROOT / "main.py"]
    for folder in ("core", "viewer", "scripts"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return files


class _Sites(ast.NodeVisitor):
    """(enclosing function's qualified name, the callee as written) of every deleting call."""

    def __init__(self) -> None:
        self.scope: list[str] = []
        self.found: list[tuple[str, str]] = []

    def _enter(self, node: ast.AST, name: str) -> None:
        self.scope.append(name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._enter(node, node.name)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._enter(node, node.name)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._enter(node, node.name)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        is_os_remove = name == "remove" and isinstance(func, ast.Attribute) and ast.unparse(func.value) == "os"
        if name in DELETERS or is_os_remove:
            self.found.append((".".join(self.scope) or "<module>", ast.unparse(func)))
        self.generic_visit(node)


def _python_sites() -> set[tuple[str, str, str]]:
    sites = set()
    for path in _python_files():
        visitor = _Sites()
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        sites |= {(path.relative_to(ROOT).as_posix(), scope, callee) for scope, callee in visitor.found}
    return sites


def _shell_sites() -> set[tuple[str, str]]:
    sites = set()
    for path in sorted((ROOT / "scripts").glob("*.sh")):
        for line in path.read_text(encoding="utf-8").splitlines():
            code = line.split("#", 1)[0].strip()
            if re.search(r"(^|[;&|(]\s*)(rm|rmdir|shred)\s", code):
                sites.add((path.relative_to(ROOT).as_posix(), code))
    return sites


def test_every_python_deletion_is_reviewed():
    found = _python_sites()
    new = sorted(found - set(REVIEWED))
    gone = sorted(set(REVIEWED) - found)
    assert not new, f"deleting call sites not reviewed (add each to REVIEWED with why its path is the run's own): {new}"
    assert not gone, f"reviewed sites that no longer exist (remove them from REVIEWED): {gone}"


def test_every_shell_deletion_is_reviewed():
    found = _shell_sites()
    assert found == set(REVIEWED_SHELL), (sorted(found - set(REVIEWED_SHELL)), sorted(set(REVIEWED_SHELL) - found))


def test_the_scanner_sees_every_kind_of_deletion():
    source = (
        "import os, shutil\nfrom pathlib import Path\n"
        "def f(p):\n    shutil.rmtree(p)\n    Path(p).unlink()\n    os.remove(p)\n    os.rmdir(p)\n"
        "    [1].remove(1)\n"
    )
    visitor = _Sites()
    visitor.visit(ast.parse(source))
    assert [callee for _, callee in visitor.found] == ["shutil.rmtree", "Path(p).unlink", "os.remove", "os.rmdir"]
