"""Checkpoint files from elsewhere: safe reading, layout detection, inflation into video models."""
from videovit.checkpoint.loading import load_checkpoint_contents, load_pretrained
from videovit.checkpoint.reading import CheckpointError, read_checkpoint
from videovit.checkpoint.report import LoadReport

__all__ = ["CheckpointError", "LoadReport", "load_checkpoint_contents", "load_pretrained", "read_checkpoint"]
