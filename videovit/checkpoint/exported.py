"""Reading a model folder written by ``tools/export.py`` as a checkpoint (docs/deployment.md).

The folder holds ``model.safetensors`` (nothing pickled) and ``config.json`` (label map, protocol and the
full videovit config); ``read_exported_folder`` gives it the layout of this project's training
checkpoints, so every loading path (test, inference, ``create_model(pretrained=...)``) accepts it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file

from videovit.errors import CheckpointError

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "videovit-export"
FORMAT_VERSION = 1


def is_exported_folder(path: str | Path) -> bool:
    """True when ``path`` is a folder holding an export's config.json and weights."""
    path = Path(path)
    return path.is_dir() and (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def read_exported_folder(folder: str | Path) -> dict[str, Any]:
    """``{"model": weights, "config": videovit config (YAML), "class_names": [...]}`` of an exported folder."""
    folder = Path(folder)
    if not is_exported_folder(folder):
        raise CheckpointError(f"{folder} is not an exported model folder (it needs {CONFIG_FILE} and "
                                  f"{WEIGHTS_FILE}); write one with tools/export.py")
    config_path = folder / CONFIG_FILE
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{config_path} is not valid JSON ({err}); export the model again") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT or "videovit_config" not in config:
        raise CheckpointError(f"{config_path} was not written by tools/export.py (no '{FORMAT}' format or no "
                                  "videovit_config); export the model again with tools/export.py")
    labels = config.get("id2label", {})
    class_names = [labels.get(str(i)) for i in range(len(labels))]
    if not class_names or any(name is None for name in class_names):
        raise CheckpointError(f"{config_path}: id2label must map 0..K-1 to class names; export the model again")
    return {"model": load_file(str(folder / WEIGHTS_FILE), device="cpu"), "config": config["videovit_config"],
            "class_names": class_names}
