"""Reading models made by other programs (the original DeepSDF code) as this project's models."""
from core.interop.deepsdf import (
    DeepSDFExperimentError,
    is_deepsdf_experiment,
    list_checkpoints,
    load_deepsdf_experiment,
    save_imported_checkpoint,
)

__all__ = ["DeepSDFExperimentError", "is_deepsdf_experiment", "list_checkpoints", "load_deepsdf_experiment",
           "save_imported_checkpoint"]
