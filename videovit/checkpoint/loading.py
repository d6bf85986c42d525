"""Loading image or video checkpoints into a video model: map, inflate, resize, report.

The one entry point, ``load_pretrained``, serves ``TRAIN.CHECKPOINT_FILE_PATH`` and
``create_model(..., pretrained=path)`` alike.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from videovit.checkpoint.reading import (CheckpointError, detect_family, detect_layout,
                                         extract_state_dict, read_checkpoint)
from videovit.checkpoint.report import LoadReport
from videovit.checkpoint.resize import resize_for_key

logger = logging.getLogger(__name__)

CLASSIFIER_PREFIXES = ("head.", "aux_head.")
TEMPORAL_MARK = ".temporal."
PARTIAL_HINT = "set TRAIN.ALLOW_PARTIAL_LOAD True (Python: allow_partial=True) to load it anyway"


def load_pretrained(model: nn.Module, path: str | Path, checkpoint_type: str = "auto",
                    allow_partial: bool = False, trust: bool = False,
                    log: Callable[[str], None] | None = None) -> LoadReport:
    """Load ``path`` into ``model`` (inflating image weights into the video model) and report it.

    Raises ``CheckpointError`` for a wrong-family file, or for missing or mismatched non-classifier
    weights unless ``allow_partial``.
    """
    return load_checkpoint_contents(model, read_checkpoint(path, trust=trust), path, checkpoint_type,
                                    allow_partial, log)


def load_checkpoint_contents(model: nn.Module, obj: Any, path: str | Path, checkpoint_type: str = "auto",
                             allow_partial: bool = False,
                             log: Callable[[str], None] | None = None) -> LoadReport:
    """``load_pretrained`` for a file already read with ``read_checkpoint`` (``path`` names it in
    messages), so callers that inspect the file first do not read it twice."""
    layout = detect_layout(obj, path) if checkpoint_type == "auto" else checkpoint_type
    state = extract_state_dict(obj, layout, path)
    family = detect_family(state)
    if family != model.family:
        found = f"{family} weights" if family else "weights of no known family"
        raise CheckpointError(
            f"{path} holds {found} (layout {layout}) but the model is {model.family}: "
            f"choose a {model.family} checkpoint or a {family or 'matching'} model")
    state = family_filter(model)(state, model)
    report = LoadReport(source=str(path), layout=layout, family=family)
    if layout == "volo_train" and isinstance(obj.get("state_dict_ema"), dict):
        report.notes.append("the file also holds 'state_dict_ema'; the plain 'state_dict' was used")
    new_state = match_state_dict(model, state, report)
    _refuse_partial(report, path, allow_partial)
    model.load_state_dict(new_state, strict=False)
    (log or logger.info)(report.format())
    return report


def family_filter(model: nn.Module) -> Callable[[dict, nn.Module], dict]:
    """The family's ``checkpoint_filter_fn`` mapping foreign key layouts onto the model's keys."""
    import importlib

    module = importlib.import_module(type(model).__module__)
    return getattr(module, "checkpoint_filter_fn")


def match_state_dict(model: nn.Module, state: dict[str, torch.Tensor],
                     report: LoadReport) -> dict[str, torch.Tensor]:
    """Tensors to load for each model key, filling ``report`` with what happened to every key."""
    target = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, current in target.items():
        source = state.get(key)
        if source is not None and source.shape == current.shape:
            out[key] = source
            report.loaded.append(key)
        elif source is not None:
            resized = resize_for_key(key, source, current)
            if resized is not None:
                out[key] = resized
                report.resized.append(f"{key} {tuple(source.shape)}->{tuple(current.shape)}")
            elif key.startswith(CLASSIFIER_PREFIXES):
                report.new.append(key)
                report.notes.append(f"{key}: classifier re-initialised "
                                    f"({tuple(source.shape)} in file, {tuple(current.shape)} in model)")
            else:
                report.mismatched.append(f"{key} {tuple(source.shape)} vs {tuple(current.shape)}")
        elif TEMPORAL_MARK in key or key.startswith("time_embed"):
            inflated = inflate_temporal(key, current, state)
            if inflated is None:
                report.new.append(key)
            else:
                out[key] = inflated
                report.inflated.append(key)
        elif key.startswith(CLASSIFIER_PREFIXES):
            report.new.append(key)
        else:
            report.missing.append(key)
    report.unused.extend(sorted(set(state) - set(target)))
    return out


def inflate_temporal(key: str, current: torch.Tensor,
                     state: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """Initial value of a temporal weight from its host block (TimeSformer convention), or None.

    ``P.temporal.norm`` <- ``P.norm1``; ``P.temporal.attn.{qkv,proj}`` <- ``P.attn.{qkv,proj}``;
    a host without q/k (VOLO's outlook attention) gives its ``v`` to the v slice, q/k trunc_normal.
    ``temporal.fc`` and time embeddings stay at their zero init (None): the function is unchanged.
    """
    if TEMPORAL_MARK not in key:
        return None
    host, local = key.split(TEMPORAL_MARK, 1)
    part, _, param = local.rpartition(".")
    if part == "norm":
        return state.get(f"{host}.norm1.{param}")
    if part == "attn.proj":
        return state.get(f"{host}.attn.proj.{param}")
    if part == "attn.qkv":
        qkv = state.get(f"{host}.attn.qkv.{param}")
        value = state.get(f"{host}.attn.v.{param}")
        if qkv is None and value is not None and param == "weight":
            qk = torch.empty(2 * value.shape[0], value.shape[1], dtype=value.dtype)
            nn.init.trunc_normal_(qk, std=0.02)
            return torch.cat([qk, value], dim=0)
        return qkv
    return None


def _refuse_partial(report: LoadReport, path: str | Path, allow_partial: bool) -> None:
    if (report.missing or report.mismatched) and not allow_partial:
        problems = report.missing[:10] + report.mismatched[:10]
        raise CheckpointError(
            f"{path} does not cover the model: {len(report.missing)} missing and "
            f"{len(report.mismatched)} shape-mismatched non-classifier weights "
            f"(e.g. {', '.join(problems)}); check MODEL.NAME and the architecture keys match the "
            f"checkpoint, or {PARTIAL_HINT}\n{report.format()}")
