"""How long jobs (training, test-time optimisation, edits) are asked to stop.

A job takes ``cancel``: ``None`` (never), a ``threading.Event`` (the viewer's Stop button sets it)
or any callable returning True when the job should stop (a time budget, a test). Jobs check it
between steps and stop cleanly, keeping what they reached.
"""

from __future__ import annotations

import threading
from typing import Callable

__all__ = ["Cancel", "is_cancelled"]

Cancel = threading.Event | Callable[[], bool] | None


def is_cancelled(cancel: Cancel) -> bool:
    """True when ``cancel`` asks the job to stop now."""
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())
