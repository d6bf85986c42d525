"""A trained model as a self-describing folder: weights, config and model card (see docs/deployment.md).

``export_model`` turns a videovit training checkpoint into::

    OUT_DIR/model.safetensors   the weights (plain or EMA), nothing pickled
    OUT_DIR/config.json         model name + architecture overrides, input size, label map, mean/std,
                                sampling and test-view protocol, and the full videovit config (YAML)
    OUT_DIR/README.md           model card: protocol, metrics of the run when known, how to load
    OUT_DIR/model.onnx          with --onnx: the same model for onnxruntime (dynamic batch axis)

The folder is flat and holds only these files, so ``huggingface_hub.upload_folder`` publishes it as
it is. ``read_exported`` reads it back into ``(config, state_dict, class_names)``.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from yacs.config import CfgNode

import videovit
from videovit.checkpoint import CheckpointError, read_checkpoint
from videovit.inference import InferenceModel, config_from_checkpoint, load_for_inference
from videovit.models.build import architecture_overrides

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
ONNX_FILE = "model.onnx"
METRICS_FILE = "metrics.json"
FORMAT = "videovit-export"
FORMAT_VERSION = 1


@dataclass
class ExportedModel:
    """What an exported folder holds: the frozen config, the weights and the class names."""

    cfg: CfgNode
    state_dict: dict[str, torch.Tensor]
    class_names: list[str]


# ---------------------------------------------------------------------------- config.json

def model_config(cfg: CfgNode, class_names: Sequence[str], weights: str) -> dict[str, Any]:
    """The config.json of a model trained with ``cfg`` on ``class_names`` (``weights``: "model"/"model_ema")."""
    data, test = cfg.DATA, cfg.TEST
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library": {"name": "videovit", "version": videovit.__version__},
        "model_name": cfg.MODEL.NAME,
        "architecture_overrides": architecture_overrides(cfg),
        "num_frames": data.NUM_FRAMES,
        "image_size": data.TEST_CROP_SIZE,
        "num_classes": cfg.MODEL.NUM_CLASSES,
        "id2label": {str(i): name for i, name in enumerate(class_names)},
        "label2id": {name: i for i, name in enumerate(class_names)},
        "mean": list(data.MEAN),
        "std": list(data.STD),
        "input": {"name": "video", "layout": "batch, channels (RGB), frames, height, width",
                  "shape": [None, 3, data.NUM_FRAMES, data.TEST_CROP_SIZE, data.TEST_CROP_SIZE],
                  "dtype": "float32", "pixel_range": "[0, 1] before mean/std normalisation"},
        "sampling": {"method": data.SAMPLING, "num_frames": data.NUM_FRAMES, "sampling_rate": data.SAMPLING_RATE,
                     "target_fps": data.TARGET_FPS},
        "test_views": {"temporal_views": test.NUM_TEMPORAL_VIEWS, "spatial_crops": test.NUM_SPATIAL_CROPS,
                       "crop_mode": data.TEST_CROP_MODE, "short_side": data.TEST_SCALE,
                       "crop_size": data.TEST_CROP_SIZE,
                       "averaging": "softmax probabilities averaged over the views"},
        "weights": weights,
        "videovit_config": cfg.dump(),
    }


def is_exported_folder(path: str | Path) -> bool:
    """True when ``path`` is a folder written by ``export_model`` (it holds config.json and the weights)."""
    path = Path(path)
    return path.is_dir() and (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def read_exported(folder: str | Path, overrides: Sequence[str] = ()) -> ExportedModel:
    """Config (validated, frozen, ``KEY VALUE`` overrides applied), weights and class names of ``folder``."""
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
    cfg = config_from_checkpoint({"config": config["videovit_config"]}, config_path, overrides)
    labels = config.get("id2label", {})
    class_names = [labels.get(str(i)) for i in range(len(labels))]
    if not class_names or any(name is None for name in class_names):
        raise CheckpointError(f"{config_path}: id2label must map 0..K-1 to class names; export the model again")
    return ExportedModel(cfg, load_file(str(folder / WEIGHTS_FILE), device="cpu"), list(class_names))


# ---------------------------------------------------------------------------- writing

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


def export_model(checkpoint: str | Path, out_dir: str | Path, use_ema: bool = False,
                 log: Callable[[str], None] | None = None) -> InferenceModel:
    """Write the weights, config.json and README.md of ``checkpoint`` to ``out_dir``; the loaded model.

    ``use_ema``: export the EMA weights the checkpoint carries (CheckpointError when it has none).
    """
    loaded = load_for_inference(checkpoint, log=log or (lambda _: None))
    weights = "model"
    if use_ema:
        ema = read_checkpoint(checkpoint).get("model_ema")
        if ema is None:
            raise CheckpointError(f"{checkpoint} holds no EMA weights (trained with MODEL_EMA.ENABLE False); "
                                  "export without --ema")
        loaded.model.load_state_dict(ema)
        weights = "model_ema"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().cpu().contiguous() for key, value in loaded.model.state_dict().items()}
    save_file(state, str(out_dir / WEIGHTS_FILE), metadata={"format": "pt", "source": FORMAT})
    config = model_config(loaded.cfg, loaded.class_names, weights)
    (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    card = model_card(config, run_metrics(checkpoint, loaded.cfg), Path(checkpoint).name)
    (out_dir / CARD_FILE).write_text(card, encoding="utf-8")
    return loaded


def model_card(config: dict[str, Any], metrics: dict[str, Any] | None, source: str) -> str:
    """README.md of an exported folder: what the model is, its input protocol, its test results, usage."""
    views = config["test_views"]
    sampling = config["sampling"]
    names = list(config["id2label"].values())
    shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
    lines = [
        "---", "library_name: videovit", "pipeline_tag: video-classification",
        "tags:", "- video-classification", "- action-recognition", f"- {config['model_name']}", "---", "",
        f"# {config['model_name']} video classifier ({config['num_classes']} classes)", "",
        f"Exported from `{source}` by videovit {config['library']['version']} "
        f"({'EMA' if config['weights'] == 'model_ema' else 'plain'} weights).", "",
        "## Input protocol", "",
        f"- clip: {config['num_frames']} RGB frames of {config['image_size']}x{config['image_size']} pixels, "
        f"layout (batch, 3, frames, height, width), float32 in [0, 1] then normalised with "
        f"mean {config['mean']} and std {config['std']}",
        f"- frame sampling: `{sampling['method']}`"
        + (f" (stride {sampling['sampling_rate']} at {sampling['target_fps']} fps)"
           if sampling["method"] == "dense" else " (one frame per equal segment of the video)"),
        f"- test views: {views['temporal_views']} temporal x {views['spatial_crops']} spatial crops "
        f"({views['crop_mode']}: short side {views['short_side']}, crops of {views['crop_size']}); "
        f"{views['averaging']}",
        f"- classes: {shown}", "",
        "## Results", "",
    ]
    if metrics and "top1" in metrics:
        nan = float("nan")
        lines += ["| split | videos scored | top-1 (%) | top-5 (%) | mean class acc. (%) |",
                  "| --- | --- | --- | --- | --- |",
                  f"| {metrics.get('split', '?')} | {metrics.get('videos_scored', '?')} of "
                  f"{metrics.get('videos_total', '?')} | {metrics['top1']:.2f} | {metrics.get('top5', nan):.2f} "
                  f"| {metrics.get('mean_class_acc', nan):.2f} |", "",
                  f"Multi-view test of the training run ({metrics.get('averaging', 'views averaged')}).", ""]
    else:
        lines += ["No test results were found next to the checkpoint (the run's metrics.json).", ""]
    lines += [
        "## How to load", "",
        "```python", "import videovit", "",
        "loaded = videovit.from_pretrained(\"path/to/this/folder\")  # model in eval mode, cfg, class_names",
        "from videovit.inference import predict_video",
        "print(predict_video(loaded.model, loaded.cfg, \"clip.mp4\", loaded.class_names))", "```", "",
        "or from the command line: `python tools/demo.py --checkpoint path/to/this/folder --video clip.mp4`.",
        "`model.onnx`, when present, takes `video` (batch, 3, frames, height, width) and returns `logits`.", "",
        "## Files", "",
        f"`{WEIGHTS_FILE}` (weights), `{CONFIG_FILE}` (architecture, label map, protocol and the full videovit "
        f"config), this card, and `{ONNX_FILE}` when exported with `--onnx`. The folder is flat, so "
        "`huggingface_hub.upload_folder(folder_path=..., repo_id=...)` publishes it as it is.", "",
    ]
    return "\n".join(lines)


__all__ = ["CARD_FILE", "CONFIG_FILE", "ExportedModel", "ONNX_FILE", "WEIGHTS_FILE", "export_model",
           "is_exported_folder", "model_card", "model_config", "read_exported", "run_metrics"]
