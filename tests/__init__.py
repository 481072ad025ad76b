"""The test suite, a package so that its helper modules are imported by name (``from tests.conftest import ...``,
``from tests.viewer_window import ...``) with the repository root on the path (pytest's ``pythonpath``)."""
