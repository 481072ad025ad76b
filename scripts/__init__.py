"""Product tools: building the bundled models, scans, icon and result pictures, and GPU-machine helpers.

Run each from the repository root, as a file (``python scripts/make_scans.py``) or a module
(``python -m scripts.make_scans``); the shell scripts beside them drive the longer jobs. A helper two
tools share lives in ``core`` (e.g. :mod:`core.evaluation.figures`), never in one of them.
"""
