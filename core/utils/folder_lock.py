"""One writer per output folder: a lock file that says who holds it and goes away with them.

Two ``preprocess`` runs writing the same data set folder would each redo every shape and race on
the manifest. The lock is a file created with ``O_EXCL`` (atomic on local and NFSv3+ file
systems) holding the owner's host, process id, start time and a random token. A lock left by a
killed run is taken over when its process is gone on this host: the stale file is first renamed
away atomically and checked to be the one judged stale, so two runs taking over at once cannot
both win, and neither can remove a fresh lock. A lock from another host is only reported, since
its process cannot be checked from here. Release removes the file only while it still holds this
run's token.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from pathlib import Path

from core.utils.errors import DataSetError

__all__ = ["FolderLock"]

log = logging.getLogger(__name__)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


class FolderLock:
    """Context manager holding ``path`` (a lock file) for this process.

    Parameters
    ----------
    path
        The lock file, e.g. ``<out>/.preprocess.lock``.
    what
        The job, for messages (``"preprocess"``).
    fix
        What the user can do when the folder is busy.
    """

    def __init__(self, path: Path, what: str, fix: str) -> None:
        self.path = Path(path)
        self.what = what
        self.fix = fix
        self.held = False

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock or raise :class:`DataSetError` naming the run that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        owner = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "token": uuid.uuid4().hex,
        }
        for _ in range(3):  # further tries after taking a dead owner's lock away
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and self._is_stale(holder) and self._take_over(holder):
                    continue
                holder = self._holder() or holder
                who = (
                    f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"
                    if holder
                    else "an unknown process"
                )
                raise DataSetError(
                    f"{self.path.parent}: another {self.what} run ({who}) is writing this folder. "
                    f"{self.fix} If no such run is active, delete {self.path}."
                ) from None
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(owner, handle)
            self.held = True
            self._token = owner["token"]
            return
        raise DataSetError(f"{self.path}: could not take the lock. Delete it if no {self.what} run is active.")

    def _take_over(self, stale: dict) -> bool:
        """Remove the lock file judged ``stale``; False when it turned out to be another run's fresh lock."""
        aside = self.path.with_name(f"{self.path.name}.stale-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(self.path, aside)  # atomic: of two runs taking over, one gets the file
        except FileNotFoundError:
            return True  # someone else took it away: try to create ours again
        try:
            taken = json.loads(aside.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            taken = None
        if taken == stale:
            log.warning(
                "%s: removing the lock of an earlier %s run that is gone (pid %s)",
                self.path,
                self.what,
                stale.get("pid"),
            )
            aside.unlink(missing_ok=True)
            return True
        try:  # a run took the lock between our look and the rename: give it back
            os.link(aside, self.path)
        except FileExistsError:
            pass
        aside.unlink(missing_ok=True)
        return False

    def other_holder(self, path: Path) -> dict | None:
        """Who holds another lock file ``path`` of the same kind (None: free, or its owner is gone)."""
        other = FolderLock(path, self.what, self.fix)
        if not other.path.exists():
            return None
        holder = other._holder()
        if holder is not None and self._is_stale(holder):
            return None
        return holder or {"pid": "?", "host": "?", "started": "?"}

    def release(self) -> None:
        """Remove the lock file, but only while it is still ours (same token)."""
        if self.held:
            holder = self._holder()
            if holder is not None and holder.get("token") == getattr(self, "_token", None):
                self.path.unlink(missing_ok=True)
            self.held = False

    def _holder(self) -> dict | None:
        try:
            holder = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # being written right now, or not ours: treat as held
        return holder if isinstance(holder, dict) else None

    @staticmethod
    def _is_stale(holder: dict) -> bool:
        if holder.get("host") != socket.gethostname():
            return False
        try:
            pid = int(holder.get("pid", ""))  # missing: ValueError; null: TypeError
        except (TypeError, ValueError):
            return False
        return pid != os.getpid() and not _process_alive(pid)
