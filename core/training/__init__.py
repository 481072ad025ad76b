"""Auto-decoder training: run config, one step's loss (``step``), the loop, checkpoints and resume."""

from core.training.config import RunConfig, TrainConfig, build_run_config
from core.training.trainer import Trainer, TrainResult, train

__all__ = ["RunConfig", "TrainConfig", "build_run_config", "Trainer", "TrainResult", "train"]
