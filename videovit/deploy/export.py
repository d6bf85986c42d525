"""A trained model as a self-describing folder: weights, config and model card (see docs/deployment.md).

``export_model`` turns a videovit training checkpoint into::

    OUT_DIR/model.safetensors   the weights (plain or EMA), nothing pickled
    OUT_DIR/config.json         model name + architecture overrides, input size, label map, mean/std,
                                sampling and test-view protocol, the full videovit config (YAML) and
                                the weights' SHA-256 (checked whenever the folder is read)
    OUT_DIR/README.md           model card: protocol, metrics of the run when known, how to load
    OUT_DIR/model.onnx          with --onnx: the same model for onnxruntime (dynamic batch axis)

The folder is flat and holds only these files, so ``huggingface_hub.upload_folder`` publishes it as
it is. Every loading path reads it back (``videovit.checkpoint.read_checkpoint``).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from safetensors.torch import save_file
from yacs.config import CfgNode

from videovit.checkpoint.exported import CONFIG_FILE, FORMAT, FORMAT_VERSION, WEIGHTS_DIGEST_KEY, WEIGHTS_FILE
from videovit.deploy.inference import InferenceModel, from_pretrained
from videovit.errors import CheckpointError
from videovit.files import sha256_of_file
from videovit.models.build import architecture_overrides

CARD_FILE = "README.md"
ONNX_FILE = "model.onnx"
METRICS_FILE = "metrics.json"


# ---------------------------------------------------------------------------- config.json

def model_config(cfg: CfgNode, class_names: Sequence[str], weights: str) -> dict[str, Any]:
    """The config.json of a model trained with ``cfg`` on ``class_names`` (``weights``: "model"/"model_ema")."""
    data, test = cfg.DATA, cfg.TEST
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library": {"name": "videovit", "version": version("videovit")},
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

    The weights are those the test scores (the EMA ones when the run kept an EMA); ``use_ema`` requires
    the EMA weights (CheckpointError when the checkpoint has none).
    """
    overrides = ["MODEL_EMA.ENABLE", "True"] if use_ema else []
    loaded = from_pretrained(checkpoint, overrides=overrides, log=log or (lambda _: None))
    if use_ema and loaded.weights != "model_ema":
        raise CheckpointError(f"{checkpoint} holds no EMA weights (trained with MODEL_EMA.ENABLE False); "
                              "export without --ema")
    weights = loaded.weights
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().cpu().contiguous() for key, value in loaded.model.state_dict().items()}
    save_file(state, str(out_dir / WEIGHTS_FILE), metadata={"format": "pt", "source": FORMAT})
    config = {**model_config(loaded.cfg, loaded.class_names, weights),
              WEIGHTS_DIGEST_KEY: sha256_of_file(out_dir / WEIGHTS_FILE)}  # checked on every read
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
        "from videovit.deploy.inference import predict_video",
        "print(predict_video(loaded.model, loaded.cfg, \"clip.mp4\", loaded.class_names))", "```", "",
        "or from the command line: `python tools/demo.py --checkpoint path/to/this/folder --video clip.mp4`.",
        "`model.onnx`, when present, takes `video` (batch, 3, frames, height, width) and returns `logits`.", "",
        "## Files", "",
        f"`{WEIGHTS_FILE}` (weights), `{CONFIG_FILE}` (architecture, label map, protocol and the full videovit "
        f"config), this card, and `{ONNX_FILE}` when exported with `--onnx`. The folder is flat, so "
        "`huggingface_hub.upload_folder(folder_path=..., repo_id=...)` publishes it as it is.", "",
    ]
    return "\n".join(lines)


__all__ = ["CARD_FILE", "CONFIG_FILE", "ONNX_FILE", "WEIGHTS_FILE", "export_model", "model_card", "model_config",
           "run_metrics"]
