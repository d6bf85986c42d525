"""Model folders: the export format written by ``tools/export.py`` and read by every loading path.

One module holds the format, its writer and its reader (docs/deployment.md, "Exporting a model folder")::

    model.safetensors   the weights (plain or EMA), nothing pickled
    config.json         model name and architecture overrides, input protocol, label map, which weights,
                        and the full videovit config (YAML): what the reader rebuilds the model from
    README.md           model card: protocol, the run's test results when known, how to load
    model.onnx          optional: the same model for onnxruntime (``videovit.deploy.onnx``)

An export is written into a hidden ``.NAME.partial-*`` sibling folder and renamed into place only when
complete (``exporting_to``), so an interrupted export never leaves a folder that looks complete; its
files get the usual permissions (0644 under the common umask 022), not a temporary file's 0600.

Reading: ``read_model_folder`` gives a folder the layout of this project's training checkpoints, so the
test, ``from_pretrained`` and ``create_model(pretrained=...)`` accept it. The folder's config.json
decides how it is read (``folder_kind`` -> ``FOLDER_READERS``): another kind of folder plugs in there.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from videovit.errors import CheckpointError, UsageError
from videovit.models import VideoBackbone, architecture_overrides
from videovit.signals import signals_deferred

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
ONNX_FILE = "model.onnx"
EXPORT_FILES = (WEIGHTS_FILE, CONFIG_FILE, CARD_FILE, ONNX_FILE)
FORMAT = "videovit-export"
FORMAT_VERSION = 1
PARTIAL_MARK = ".partial-"


# ---------------------------------------------------------------------------- writing

def model_config(model: VideoBackbone, weights: str) -> dict[str, Any]:
    """The config.json of a trained ``model`` (from ``load_trained_model``; ``weights``: "model"/"model_ema")."""
    cfg, class_names, protocol = model.trained_parts()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library": {"name": "videovit", "version": version("videovit")},
        "model_name": cfg.MODEL.NAME,
        "architecture_overrides": architecture_overrides(cfg),
        "num_frames": protocol.num_frames,
        "image_size": protocol.crop_size,
        "num_classes": cfg.MODEL.NUM_CLASSES,
        "id2label": {str(i): name for i, name in enumerate(class_names)},
        "label2id": {name: i for i, name in enumerate(class_names)},
        "mean": list(protocol.mean),
        "std": list(protocol.std),
        "input": {"name": "video", "layout": "batch, channels (RGB), frames, height, width",
                  "shape": [None, 3, protocol.num_frames, protocol.crop_size, protocol.crop_size],
                  "dtype": "float32", "pixel_range": "[0, 1] before mean/std normalisation"},
        "sampling": {"method": protocol.sampling, "num_frames": protocol.num_frames,
                     "sampling_rate": protocol.sampling_rate, "target_fps": protocol.target_fps},
        "test_views": {"temporal_views": protocol.temporal_views, "spatial_crops": protocol.spatial_crops,
                       "crop_mode": protocol.crop_mode, "short_side": protocol.short_side,
                       "crop_size": protocol.crop_size, "averaging": "softmax probabilities averaged over the views"},
        "weights": weights,
        "videovit_config": cfg.dump(),
    }


def write_model_folder(folder: Path, model: VideoBackbone, weights: str, metrics: dict[str, Any] | None,
                       source: str) -> dict[str, Any]:
    """Write the weights, config.json and README.md of ``model`` into ``folder``; returns the config.

    ``metrics``: the run's test results for the card (None: unknown); ``source``: what was exported.
    """
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt", "source": FORMAT})
    config = model_config(model, weights)
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (folder / CARD_FILE).write_text(model_card(config, metrics, source), encoding="utf-8")
    return config


@contextmanager
def exporting_to(out_dir: str | Path, files: Sequence[str] = EXPORT_FILES) -> Iterator[Path]:
    """A fresh hidden sibling of ``out_dir`` to write an export into; when the block ends without an
    error (or a signal), its files get the default permissions and it replaces ``out_dir``; otherwise
    it is removed. ``out_dir`` may be absent, empty, or a previous export (replaced: it holds only
    ``files``); a folder with other files is refused (UsageError) before anything is written."""
    out_dir = Path(out_dir)
    _check_replaceable(out_dir, files)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}{PARTIAL_MARK}", dir=out_dir.parent))
    try:
        yield partial
        _default_permissions(partial)
        with signals_deferred():  # a signal between the two renames would leave no out_dir at all
            if out_dir.exists():
                previous = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.replaced-", dir=out_dir.parent))
                out_dir.rename(previous / out_dir.name)
                partial.rename(out_dir)
                shutil.rmtree(previous)
            else:
                partial.rename(out_dir)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _check_replaceable(out_dir: Path, files: Sequence[str]) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise UsageError(f"{out_dir} exists and is not a folder; choose a folder to export to")
    others = sorted(path.name for path in out_dir.iterdir() if path.name not in files)
    if others:
        raise UsageError(f"{out_dir} holds other files than an export ({', '.join(others[:5])}); export to a new "
                         "or empty folder (a previous export there is replaced)")


def _default_permissions(folder: Path) -> None:
    """Files 0666 and the folder 0777, less the umask: what a plain ``open`` and ``mkdir`` give, where
    ``mkdtemp`` and safetensors' temporary files give 0600/0700."""
    umask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)


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
        "model = videovit.from_pretrained(\"path/to/this/folder\")  # nn.Module in eval mode: .cfg, .class_names, "
        ".preprocessing",
        "print(videovit.VideoClassifier(model).classify(\"clip.mp4\"))  # top-5 (class, probability)", "```", "",
        "or from the command line: `python tools/demo.py --checkpoint path/to/this/folder --video clip.mp4`.",
        "`model.onnx`, when present, takes `video` (batch, 3, frames, height, width) and returns `logits`.", "",
        "## Files", "",
        f"`{WEIGHTS_FILE}` (weights), `{CONFIG_FILE}` (architecture, label map, protocol and the full videovit "
        f"config), this card, and `{ONNX_FILE}` when exported with `--onnx`. The folder is flat, so "
        "`huggingface_hub.upload_folder(folder_path=..., repo_id=...)` publishes it as it is.", "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- reading

def folder_kind(config: dict[str, Any]) -> str:
    """Which writer made a model folder, from its config.json: its ``format`` ("videovit-export"), or ""."""
    kind = config.get("format")
    return kind if isinstance(kind, str) else ""


def _read_videovit_export(folder: Path, config: dict[str, Any]) -> dict[str, Any]:
    config_path = folder / CONFIG_FILE
    if "videovit_config" not in config:
        raise CheckpointError(f"{config_path} has no videovit_config; export the model again with tools/export.py")
    labels = config.get("id2label", {})
    class_names = [labels.get(str(i)) for i in range(len(labels))]
    if not class_names or any(name is None for name in class_names):
        raise CheckpointError(f"{config_path}: id2label must map 0..K-1 to class names; export the model again")
    if not (folder / WEIGHTS_FILE).is_file():
        raise CheckpointError(f"{folder} has no {WEIGHTS_FILE}; export the model again with tools/export.py")
    return {"model": load_file(str(folder / WEIGHTS_FILE), device="cpu"), "config": config["videovit_config"],
            "class_names": class_names}


# folder_kind -> reader of (folder, its parsed config.json) -> contents in the videovit checkpoint layout.
FOLDER_READERS: dict[str, Callable[[Path, dict[str, Any]], dict[str, Any]]] = {FORMAT: _read_videovit_export}


def read_model_folder(folder: str | Path) -> dict[str, Any]:
    """``{"model": weights, "config": videovit config (YAML), "class_names": [...]}`` of a model folder,
    read by the reader of its kind."""
    folder = Path(folder)
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise CheckpointError(f"{folder} is not a model folder (it has no {CONFIG_FILE}); give a checkpoint file "
                              "or a folder written by tools/export.py")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{config_path} is not valid JSON ({err}); export the model again") from err
    reader = FOLDER_READERS.get(folder_kind(config)) if isinstance(config, dict) else None
    if reader is None:
        raise CheckpointError(f"{config_path} was not written by tools/export.py (no '{FORMAT}' format); export "
                              "the model again with tools/export.py")
    return reader(folder, config)


__all__ = ["CARD_FILE", "CONFIG_FILE", "EXPORT_FILES", "FOLDER_READERS", "FORMAT", "FORMAT_VERSION", "ONNX_FILE",
           "WEIGHTS_FILE", "exporting_to", "folder_kind", "model_card", "model_config", "read_model_folder",
           "write_model_folder"]
