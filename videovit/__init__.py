"""videovit: video transformers for action recognition (RegionViT, VOLO, TimeSformer, VideoMAE).

Importing the package is instant: the names below load their layer on first use (PEP 562), so a tool
answers ``--help`` or a config mistake without importing torch. The layers are mapped in
docs/architecture.md.
"""
from __future__ import annotations

from importlib.metadata import version
from typing import TYPE_CHECKING

from videovit.lazy import lazy_attributes

__version__ = version("videovit")  # pyproject.toml's

if TYPE_CHECKING:
    from videovit.checkpoint.pretrained import create_model
    from videovit.deploy.classifier import VideoClassifier, from_pretrained
    from videovit.models import build_model, list_models

__getattr__, __dir__ = lazy_attributes(globals(), {
    "build_model": "videovit.models",
    "list_models": "videovit.models",
    "create_model": "videovit.checkpoint.pretrained",
    "from_pretrained": "videovit.deploy.classifier",
    "VideoClassifier": "videovit.deploy.classifier",
})

__all__ = ["VideoClassifier", "__version__", "build_model", "create_model", "from_pretrained", "list_models"]
