"""The class-conditioned, coloured DeepSDF auto-decoder and its checkpoint format."""

from core.model.checkpoint import read_checkpoint, save_checkpoint
from core.model.config import CONDITIONING_MODES, PRESETS, ModelConfig, preset_config
from core.model.loading import load_trained_model
from core.model.trained_model import TrainedModel, default_device, untrained_model

__all__ = [
    "ModelConfig",
    "PRESETS",
    "CONDITIONING_MODES",
    "preset_config",
    "TrainedModel",
    "load_trained_model",
    "untrained_model",
    "default_device",
    "read_checkpoint",
    "save_checkpoint",
]
