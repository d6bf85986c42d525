"""Checkpoint files: safe reading, layout detection, loading and inflation through the family contract."""
from videovit.checkpoint.loading import load_checkpoint_contents, load_pretrained
from videovit.checkpoint.reading import read_checkpoint
from videovit.checkpoint.report import LoadReport
from videovit.checkpoint.trained import TrainedModel, check_class_names, config_for_checkpoint, load_trained_model

__all__ = ["LoadReport", "TrainedModel", "check_class_names", "config_for_checkpoint",
           "load_checkpoint_contents", "load_pretrained", "load_trained_model", "read_checkpoint"]
