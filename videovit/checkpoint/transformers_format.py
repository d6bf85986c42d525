"""transformers-format model folders, read and written in one place (docs/checkpoints.md, "transformers").

A folder written by ``save_pretrained`` holds ``config.json`` (``model_type``, the architecture, ``num_frames``,
``image_size``, ``id2label``) and ``model.safetensors`` (or the older ``pytorch_model.bin``), often with a
``preprocessor_config.json`` (short side, crop, mean and std). The family whose
``ModelFamily.transformers.model_type`` matches reads the config and maps the weights (its checkpoint hooks);
this module finds the files, builds the videovit config the folder describes, and writes such folders.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from yacs.config import CfgNode

from videovit.config import load_config
from videovit.errors import CheckpointError
from videovit.models import ModelFamily, VideoBackbone, families, family_of, get_family
from videovit.models.build import config_keys_of
from videovit.models.family import CheckpointLayout, TransformersFormat
from videovit.models.preprocessing import Preprocessing

CONFIG_FILE = "config.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TRANSFORMERS_FILES = (CONFIG_FILE, WEIGHT_FILES[0], PREPROCESSOR_FILE)  # what write_transformers_folder writes
WEIGHTS_KEY = "transformers_weights"
CONFIG_KEY = "transformers_config"
PREPROCESSOR_KEY = "transformers_preprocessor"
LAYOUT = CheckpointLayout("transformers", weights_key=WEIGHTS_KEY)


def is_transformers_folder(path: str | Path) -> bool:
    """True when ``path`` is a folder with a transformers config.json (a ``model_type``) and weights."""
    path = Path(path)
    if not path.is_dir() or not (path / CONFIG_FILE).is_file():
        return False
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        return False
    return "model_type" in _read_json(path / CONFIG_FILE)


def read_transformers_folder(folder: str | Path) -> dict[str, Any]:
    """``{WEIGHTS_KEY: state dict, CONFIG_KEY: config.json, PREPROCESSOR_KEY: preprocessor_config.json or
    {}}`` of a transformers folder (weights read without running pickled code)."""
    folder = Path(folder)
    weights = next(folder / name for name in WEIGHT_FILES if (folder / name).is_file())
    try:
        state = (load_file(str(weights), device="cpu") if weights.suffix == ".safetensors"
                 else torch.load(weights, map_location="cpu", weights_only=True))
    except (RuntimeError, OSError, EOFError) as err:
        raise CheckpointError(f"{weights} is not a readable weights file ({err}); download or save it again") from err
    preprocessor = folder / PREPROCESSOR_FILE
    return {WEIGHTS_KEY: state, CONFIG_KEY: _read_json(folder / CONFIG_FILE),
            PREPROCESSOR_KEY: _read_json(preprocessor) if preprocessor.is_file() else {}}


def is_transformers_contents(contents: Any) -> bool:
    """Whether ``contents`` (from ``read_checkpoint``) is a transformers folder's."""
    return isinstance(contents, dict) and isinstance(contents.get(CONFIG_KEY), dict) and WEIGHTS_KEY in contents


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}); download or save the model again") from err
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object; download or save the model again")
    return data


def transformers_family(config: Mapping[str, Any], source: str | Path) -> tuple[ModelFamily, TransformersFormat]:
    """The family (and its format) of a transformers ``config`` whose ``model_type`` it reads."""
    model_type = config.get("model_type")
    for family in families():
        if family.transformers is not None and family.transformers.model_type == model_type:
            return family, family.transformers
    known = sorted(family.transformers.model_type for family in families() if family.transformers is not None)
    raise CheckpointError(f"{source}: model_type {model_type!r} has no videovit family; supported: {', '.join(known)}")


def transformers_class_names(config: Mapping[str, Any], source: str | Path) -> list[str]:
    """The class names of ``config``'s ``id2label`` (0..K-1), or ``num_labels`` placeholders without one."""
    labels = config.get("id2label") or {}
    names = [labels.get(str(index)) for index in range(len(labels))]
    if any(name is None for name in names):
        raise CheckpointError(f"{source}: id2label must map 0..K-1 to class names; save the model again")
    if not names:
        names = [f"LABEL_{index}" for index in range(int(config.get("num_labels", 0)))]
    return [str(name) for name in names]


def transformers_model(config: Mapping[str, Any], source: str | Path) -> tuple[str, int, dict[str, Any]]:
    """The registered model name, frame count and architecture overrides a transformers ``config`` describes."""
    _, format_ = transformers_family(config, source)
    try:
        return format_.read_config(config)
    except ValueError as err:
        raise CheckpointError(f"{source}: {err}") from err


def transformers_cfg(contents: Mapping[str, Any], source: str | Path, overrides: Sequence[str] = ()) -> CfgNode:
    """The videovit config of the model a transformers folder describes: its model, architecture, frames,
    classes and frame size, and its preprocessor's mean and std when the folder has them; ``overrides``
    (``KEY VALUE`` pairs) applied last."""
    config = contents[CONFIG_KEY]
    name, frames, architecture = transformers_model(config, source)
    keys, variant = config_keys_of(name), family_of(name).variants[name]
    settings: list[Any] = ["MODEL.NAME", name, "MODEL.NUM_CLASSES", len(transformers_class_names(config, source)),
                           "DATA.NUM_FRAMES", frames]
    for field, value in architecture.items():
        own = getattr(variant, field)
        if field in keys:
            settings += [keys[field], value]
        elif (list(own) if isinstance(own, tuple) else own) != value:
            raise CheckpointError(f"{source}: {field} {value!r} (config.json) differs from {name}'s {own!r} and no "
                                  "config key sets it; load it in Python with videovit.create_model instead")
    side = int(config.get("image_size", 224))
    scale = side * 8 // 7   # 256 for 224 crops, as the shipped configs
    settings += ["DATA.TRAIN_CROP_SIZE", side, "DATA.TEST_CROP_SIZE", side, "DATA.TEST_SCALE", scale,
                 "DATA.TRAIN_JITTER_SCALES", [scale, scale * 5 // 4]]
    preprocessor = contents.get(PREPROCESSOR_KEY) or {}
    for key, field in (("DATA.MEAN", "image_mean"), ("DATA.STD", "image_std")):
        if isinstance(preprocessor.get(field), list) and len(preprocessor[field]) == 3:
            settings += [key, [float(value) for value in preprocessor[field]]]
    short_side = (preprocessor.get("size") or {}).get("shortest_edge")
    if isinstance(short_side, int) and short_side >= side:
        settings += ["DATA.TEST_SCALE", short_side]
    return load_config([], [str(item) for item in settings] + list(overrides))


def write_transformers_folder(model: VideoBackbone, class_names: Sequence[str], out_dir: str | Path,
                              preprocessing: Preprocessing | None = None) -> Path:
    """Write ``model`` as a transformers folder (config.json with ``class_names`` as id2label, and
    model.safetensors) that ``AutoModelForVideoClassification.from_pretrained(out_dir)`` loads; with
    ``preprocessing`` also a preprocessor_config.json (short side, crop, mean and std). A family without a
    transformers class is a ``CheckpointError``."""
    family = get_family(model.family)
    if family.transformers is None:
        supported = sorted(f.name for f in families() if f.transformers is not None)
        raise CheckpointError(f"{family.name} models have no transformers class; --format transformers takes "
                              f"{' or '.join(supported)} models (export {family.name} in the videovit format)")
    if len(class_names) != model.num_classes:
        raise CheckpointError(f"{len(class_names)} class names for a model of {model.num_classes} classes")
    try:
        fields = family.transformers.write_config(model)
    except ValueError as err:
        raise CheckpointError(f"cannot write this {family.name} model in the transformers format: {err}") from err
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = {"model_type": family.transformers.model_type, "architectures": [family.transformers.architecture],
              **fields, "id2label": {str(i): name for i, name in enumerate(class_names)},
              "label2id": {name: i for i, name in enumerate(class_names)}}
    state = family.transformers.export_state_dict(model.state_dict())
    save_file({key: value.detach().contiguous().cpu() for key, value in state.items()}, str(out / WEIGHT_FILES[0]),
              metadata={"format": "pt"})
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if preprocessing is not None:
        processor = {"image_processor_type": "VideoMAEImageProcessor", "do_resize": True, "do_center_crop": True,
                     "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
                     "size": {"shortest_edge": preprocessing.short_side},
                     "crop_size": {"height": preprocessing.crop_size, "width": preprocessing.crop_size},
                     "image_mean": list(preprocessing.mean), "image_std": list(preprocessing.std)}
        (out / PREPROCESSOR_FILE).write_text(json.dumps(processor, indent=2) + "\n", encoding="utf-8")
    return out
