"""Exception types of DeepSDF Explorer: one type per kind of user mistake.

Every message names the file (or object), the problem and what to do about it, so the
command line and the viewer can show it to the user unchanged.
"""

from __future__ import annotations


class ExplorerError(Exception):
    """Base of every error the user can cause and fix."""


class MeshLoadError(ExplorerError):
    """A mesh file is missing, unreadable, empty or degenerate."""


class DataSetError(ExplorerError):
    """A data set folder is missing, empty or inconsistent with its manifest."""


class ConfigError(ExplorerError):
    """A configuration has unknown keys or impossible values."""


class CheckpointError(ExplorerError):
    """A checkpoint file is damaged, of another format version, or does not fit the model."""


class ObservationError(ExplorerError):
    """An observation for test-time optimisation cannot be used (no points, NaNs, ...)."""


class SourceError(ExplorerError):
    """A data source (Objaverse layout, folder of meshes) is missing or malformed."""
