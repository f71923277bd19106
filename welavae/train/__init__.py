"""Multi-seed training: the loop (trainer), checkpoints, speed settings, run directories."""
from .checkpoint import export_safetensors, load_checkpoint, save_checkpoint
from .platform import speed_settings
from .trainer import TERMS, TrainResult, encode_dataset, train

__all__ = ["train", "TrainResult", "encode_dataset", "load_checkpoint", "save_checkpoint", "export_safetensors",
           "speed_settings", "TERMS"]
