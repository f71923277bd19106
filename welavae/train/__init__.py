"""Multi-seed training."""
from .trainer import TERMS, TrainResult, encode_dataset, load_checkpoint, save_checkpoint, train

__all__ = ["train", "TrainResult", "encode_dataset", "load_checkpoint", "save_checkpoint", "TERMS"]
