"""Auto-decoder training: run config, the loop, checkpoints and resume."""
from core.training.config import RunConfig, TrainConfig, build_run_config
from core.training.trainer import TrainResult, train

__all__ = ["RunConfig", "TrainConfig", "build_run_config", "TrainResult", "train"]
