"""Export a trained checkpoint to a self-describing model folder, optionally with a checked ONNX file.

The folder format, its writer and its reader live in ``videovit.checkpoint.exported`` (every loading
path reads exported folders); this module is the export as a whole: load the weights the test scores,
find the run's test results for the model card, write the folder (and model.onnx, checked with
onnxruntime) into a hidden partial folder and move it into place only once everything is written and
checked. See docs/deployment.md.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yacs.config import CfgNode

from videovit.checkpoint import load_trained_model
from videovit.checkpoint.exported import EXPORT_FILES, ONNX_FILE, exporting_to, write_model_folder
from videovit.checkpoint.transformers_format import TRANSFORMERS_FILES, write_transformers_folder
from videovit.deploy.onnx import ONNX_OPSET, OnnxCheck, write_checked_onnx
from videovit.errors import CheckpointError, UsageError
from videovit.evaluation.views import METRICS_FILE

FOLDER_FORMATS = ("videovit", "transformers")


@dataclass(frozen=True)
class Export:
    """What an export wrote: the folder, which weights, how many classes, and the ONNX check (if any)."""

    folder: Path
    weights: str            # "model" or "model_ema"
    num_classes: int
    onnx: OnnxCheck | None


def run_metrics(checkpoint: str | Path, cfg: CfgNode) -> dict[str, Any] | None:
    """The run's metrics.json (multi-view test results): next to the checkpoints folder or in OUTPUT_DIR."""
    checkpoint = Path(checkpoint)
    for folder in (checkpoint.parent.parent, checkpoint.parent, Path(cfg.OUTPUT_DIR)):
        path = folder / METRICS_FILE
        if path.is_file():
            try:
                metrics = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                continue
            if isinstance(metrics, dict):
                return metrics
    return None


def export_model(checkpoint: str | Path, out_dir: str | Path, use_ema: bool = False, onnx: bool = False,
                 opset: int = ONNX_OPSET, log: Callable[[str], None] | None = None,
                 folder_format: str = "videovit") -> Export:
    """Write the weights, config.json and README.md of ``checkpoint`` (and model.onnx with ``onnx``) to
    ``out_dir``, which appears only once all of it is written and the ONNX file is checked.

    The weights are those the test scores (the EMA ones when the run kept an EMA); ``use_ema`` requires
    the EMA weights (CheckpointError when the checkpoint has none). ``folder_format`` "transformers"
    writes a transformers folder instead (config.json, model.safetensors, preprocessor_config.json;
    ``videovit.checkpoint.transformers_format``), for families with a transformers class.
    """
    if folder_format not in FOLDER_FORMATS:
        raise UsageError(f"unknown export format {folder_format!r}: use {' or '.join(FOLDER_FORMATS)}")
    overrides = ["MODEL_EMA.ENABLE", "True"] if use_ema else []
    files = EXPORT_FILES if folder_format == "videovit" else (*TRANSFORMERS_FILES, ONNX_FILE)
    with exporting_to(out_dir, files) as folder:  # refuses a folder holding other files before anything is loaded
        trained = load_trained_model(checkpoint, overrides=overrides, log=log or (lambda _: None))
        if use_ema and trained.weights != "model_ema":
            raise CheckpointError(f"{checkpoint} holds no EMA weights (trained with MODEL_EMA.ENABLE False); "
                                  "export without --ema")
        model = trained.model.float().eval()
        _, class_names, preprocessing = model.trained_parts()
        if folder_format == "transformers":
            write_transformers_folder(model, class_names, folder, preprocessing)
        else:
            write_model_folder(folder, model, trained.weights, run_metrics(checkpoint, trained.cfg),
                               Path(checkpoint).name)
        check = write_checked_onnx(model, folder / ONNX_FILE, opset) if onnx else None
    return Export(Path(out_dir), trained.weights, len(class_names), check)


__all__ = ["FOLDER_FORMATS", "Export", "export_model", "run_metrics"]
