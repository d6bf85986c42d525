"""Reading a model folder written by ``tools/export.py`` as a checkpoint (docs/deployment.md).

The folder holds ``model.safetensors`` (nothing pickled) and ``config.json`` (label map, protocol, the
full videovit config and the weights' SHA-256, checked on every read); ``read_exported_folder`` gives it
the layout of this project's training checkpoints, so every loading path (test, inference,
``create_model(pretrained=...)``) accepts it.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from videovit.checkpoint.formats import read_safetensors
from videovit.errors import CheckpointError
from videovit.files import sha256_of_file

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "videovit-export"
FORMAT_VERSION = 1
WEIGHTS_DIGEST_KEY = "weights_sha256"  # config.json's SHA-256 of model.safetensors


def is_exported_folder(path: str | Path) -> bool:
    """True when ``path`` is a folder holding an export's config.json and weights."""
    path = Path(path)
    return path.is_dir() and (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def read_exported_folder(folder: str | Path, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``{"model": weights, "config": videovit config (YAML), "class_names": [...]}`` of an exported folder;
    weights that cannot be verified are said to ``log`` (default: the module's logger)."""
    folder = Path(folder)
    if not is_exported_folder(folder):
        raise CheckpointError(f"{folder} is a folder but not an exported model folder (it needs {CONFIG_FILE} and "
                              f"{WEIGHTS_FILE}); give a checkpoint file, or a folder written by tools/export.py")
    config_path = folder / CONFIG_FILE
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{config_path} is not valid JSON text ({err}); export the model again") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT or "videovit_config" not in config:
        raise CheckpointError(f"{config_path} was not written by tools/export.py (no '{FORMAT}' format or no "
                                  "videovit_config); export the model again with tools/export.py")
    labels = config.get("id2label", {})
    class_names = [labels.get(str(i)) for i in range(len(labels))]
    if not class_names or any(name is None for name in class_names):
        raise CheckpointError(f"{config_path}: id2label must map 0..K-1 to class names; export the model again")
    verify_weights(folder / WEIGHTS_FILE, config.get(WEIGHTS_DIGEST_KEY), config_path, log)
    return {"model": read_safetensors(folder / WEIGHTS_FILE), "config": config["videovit_config"],
            "class_names": class_names}


def verify_weights(weights: Path, expected: str | None, config_path: Path,
                   log: Callable[[str], None] | None = None) -> None:
    """Check ``weights`` against the SHA-256 ``config_path`` records; a folder exported before exports
    carried one loads with a note to ``log`` that it could not be verified."""
    if expected is None:
        (log or logger.info)(f"{config_path} records no {WEIGHTS_DIGEST_KEY} (exported before videovit wrote "
                             f"checksums): {weights} could not be verified")
    elif sha256_of_file(weights) != expected:
        raise CheckpointError(f"{weights} is damaged: its SHA-256 differs from the one in {config_path}, so it "
                              "changed after the export (a faulty disk, an interrupted copy); export the model "
                              "again or use another copy of the folder")
