"""Entry points for Python users: models by name with weights, and trained models ready to predict."""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from videovit.checkpoint.loading import load_checkpoint_contents
from videovit.checkpoint.reading import is_videovit_checkpoint, read_checkpoint
from videovit.models import VideoBackbone, build_variant

DEFAULT_CLASSES = 400


def create_model(name: str, num_frames: int = 8, num_classes: int | None = None, pretrained: str | Path | None = None,
                 *, checkpoint_type: str = "auto", trust: bool = False, allow_partial: bool = False,
                 allow_new_classifier: bool | None = None, **overrides: Any) -> VideoBackbone:
    """Model ``name`` for ``num_frames``-frame clips, with the weights of ``pretrained`` if given.

    ``num_classes`` defaults to the class count of a videovit checkpoint, else 400. Image checkpoints
    are inflated into the video model; the load report is logged (printed when logging is not set up).
    A classifier left random by a trained videovit checkpoint is an error unless
    ``allow_new_classifier``. ``overrides`` are the family's architecture fields.
    """
    contents: Any = read_checkpoint(pretrained, trust=trust, log=show) if pretrained else None
    if num_classes is None:
        names = contents.get("class_names") if is_videovit_checkpoint(contents) else None
        num_classes = len(names) if names else DEFAULT_CLASSES
    model = build_variant(name, num_frames=num_frames, num_classes=num_classes, **overrides)
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
