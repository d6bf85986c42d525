"""Entry points for Python users: models by name with weights, and trained models ready to predict."""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from videovit.checkpoint.loading import load_checkpoint_contents
from videovit.checkpoint.reading import read_checkpoint
from videovit.checkpoint.trained import recorded_class_names
from videovit.checkpoint.transformers_format import CONFIG_KEY, is_transformers_contents, transformers_model
from videovit.errors import CheckpointError
from videovit.models import VideoBackbone, build_variant, family_of

DEFAULT_CLASSES = 400
DEFAULT_FRAMES = 8


def create_model(name: str, num_frames: int | None = None, num_classes: int | None = None,
                 pretrained: str | Path | None = None, *, checkpoint_type: str = "auto", trust: bool = False,
                 allow_partial: bool = False, allow_new_classifier: bool | None = None,
                 **overrides: Any) -> VideoBackbone:
    """Model ``name`` for ``num_frames``-frame clips, with the weights of ``pretrained`` if given.

    ``num_classes`` defaults to the class count a videovit checkpoint or a transformers folder records,
    else 400; a transformers folder also gives its frame count and architecture (config.json) where the
    arguments do not, else 8 frames. Image checkpoints are inflated into the video model; the load report
    is logged (printed when logging is not set up). A classifier left random by a trained checkpoint is an
    error unless ``allow_new_classifier``. ``overrides`` are the family's architecture fields.
    """
    contents: Any = read_checkpoint(pretrained, trust=trust) if pretrained else None
    if num_classes is None:
        names = recorded_class_names(contents, pretrained) if pretrained else None
        num_classes = len(names) if names else DEFAULT_CLASSES
    if is_transformers_contents(contents):
        folder_name, folder_frames, architecture = transformers_model(contents[CONFIG_KEY], str(pretrained))
        if family_of(folder_name) is not family_of(name):
            raise CheckpointError(f"{pretrained} holds a {family_of(folder_name).name} model ({folder_name}) but "
                                  f"{name} is a {family_of(name).name} model: ask for {folder_name}")
        num_frames = folder_frames if num_frames is None else num_frames
        overrides = {**architecture, **overrides}
    model = build_variant(name, num_frames=DEFAULT_FRAMES if num_frames is None else num_frames,
                          num_classes=num_classes, **overrides)
    if pretrained:
        load_checkpoint_contents(model, contents, pretrained, checkpoint_type, allow_partial=allow_partial,
                                 allow_new_classifier=allow_new_classifier, log=show)
    return model


def show(text: str) -> None:
    """Log ``text`` on the ``videovit`` logger, or print it to stderr where that would not show it."""
    log = logging.getLogger("videovit")
    if log.hasHandlers() and log.isEnabledFor(logging.INFO):
        log.info(text)
    else:
        print(text, file=sys.stderr)
