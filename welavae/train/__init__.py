"""Multi-seed training: the gate (preflight), the loop (trainer), its schedules (init_from, tracking), speed
settings (platform), and a run directory trained end to end (rundir)."""
from .platform import speed_settings
from .rundir import train_run
from .trainer import TERMS, TrainResult, train

__all__ = ["train", "train_run", "TrainResult", "speed_settings", "TERMS"]
