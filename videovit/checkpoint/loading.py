"""Loading weights into a model: find them in the file, map, inflate, resize, report (docs/checkpoints.md).

Every way from a file to a model goes through ``load_checkpoint_contents``: finetuning from an image
or video checkpoint, ``create_model(pretrained=...)``, testing, inference and resuming (``exact``).
The model's family (``videovit.models``' contract) supplies the key names, geometry and inflation.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from videovit.checkpoint import transformers_format
from videovit.checkpoint.reading import (
    VIDEOVIT_LAYOUT,
    detect_layout,
    extract_state_dict,
    has_ema_weights,
    read_checkpoint,
)
from videovit.checkpoint.report import LoadReport
from videovit.errors import CheckpointError
from videovit.models.family import ModelFamily, VideoBackbone
from videovit.models.registry import families_that_can_load, get_family

logger = logging.getLogger(__name__)

TRAINED_LAYOUTS = (VIDEOVIT_LAYOUT.name, transformers_format.LAYOUT.name)  # files whose classifier is trained
PARTIAL_HINT = "set TRAIN.ALLOW_PARTIAL_LOAD True (Python: allow_partial=True) to load it anyway"


def load_pretrained(model: VideoBackbone, path: str | Path, checkpoint_type: str = "auto", allow_partial: bool = False,
                    trust: bool = False, log: Callable[[str], None] | None = None,
                    allow_new_classifier: bool | None = None) -> LoadReport:
    """Load ``path`` into ``model`` (inflating image weights into the video model) and report it.

    See ``load_checkpoint_contents`` for the rules.
    """
    return load_checkpoint_contents(model, read_checkpoint(path, trust=trust), path, checkpoint_type,
                                    allow_partial=allow_partial, log=log, allow_new_classifier=allow_new_classifier)


def load_checkpoint_contents(model: VideoBackbone, obj: Any, path: str | Path, checkpoint_type: str = "auto", *,
                             allow_partial: bool = False, allow_new_classifier: bool | None = None,
                             use_ema: bool = False, exact: bool = False, drop_classifier: bool = False,
                             log: Callable[[str], None] | None = None) -> LoadReport:
    """Load a file already read with ``read_checkpoint`` (``path`` names it in messages) into ``model``.

    Whether the weights fit is the model's own family's answer (``ModelFamily.can_load``). Raises
    ``CheckpointError`` for weights it cannot load, for missing or mismatched
    non-classifier weights unless ``allow_partial``, and for a classifier left random:
    ``allow_new_classifier`` None refuses that only for this project's trained checkpoints (an image
    checkpoint's classifier is replaced as a matter of course), False always, True never. ``use_ema``
    loads the file's EMA weights. ``exact`` (resuming) requires every weight as it is, nothing
    resized, inflated, new or unused. ``drop_classifier`` leaves the model's own classifier in place
    (finetuning from a checkpoint trained on other classes). The report is passed to ``log`` (default:
    this module's logger).
    """
    family = get_family(model.family)
    layout = detect_layout(obj, path, family) if checkpoint_type == "auto" else checkpoint_type
    state = extract_state_dict(obj, layout, path, ema=use_ema)
    if not family.can_load(state):
        others = families_that_can_load(state)
        found = f"{' or '.join(others)} weights" if others else "weights of no known family"
        raise CheckpointError(f"{path} holds {found} (layout {layout}) but the model is {family.name}: choose a "
                              f"{family.name} checkpoint or a {' or '.join(others) or 'matching'} model")
    report = LoadReport(source=str(path), layout=layout, family=family.name)
    if has_ema_weights(obj, layout):
        report.notes.append(f"the file also holds EMA weights; the {'EMA' if use_ema else 'plain'} weights were used")
    state = family.filter_state_dict(state, model)
    if drop_classifier:
        state = {key: value for key, value in state.items() if not family.is_classifier(key)}
        report.notes.append("the file's classifier was not used: it was trained on other classes")
    new_state = match_state_dict(model, family, state, report)
    if exact:
        _refuse_inexact(report, path)
    _refuse_partial(report, path, allow_partial)
    _refuse_random_classifier(report, family, path, layout, allow_new_classifier)
    model.load_state_dict(new_state, strict=False)
    if not exact:
        (log or logger.info)(report.format())
    return report


def match_state_dict(model: nn.Module, family: ModelFamily, state: dict[str, torch.Tensor],
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
            change = f"{key} {tuple(source.shape)}->{tuple(current.shape)}"
            inflated = _inflated(family, key, current, state)
            resized = family.resize_weight(key, source, current) if inflated is None else None
            if inflated is not None:
                out[key] = inflated
                report.inflated.append(change)
            elif resized is not None:
                out[key] = resized
                report.resized.append(change)
            elif family.is_classifier(key):
                report.new.append(key)
                report.notes.append(f"{key}: classifier re-initialised "
                                    f"({tuple(source.shape)} in file, {tuple(current.shape)} in model)")
            else:
                report.mismatched.append(f"{key} {tuple(source.shape)} vs {tuple(current.shape)}")
        elif family.video_only(key):
            inflated = _inflated(family, key, current, state)
            if inflated is None:
                report.new.append(key)
            else:
                out[key] = inflated
                report.inflated.append(key)
        elif family.is_classifier(key):
            report.new.append(key)
        else:
            report.missing.append(key)
    report.unused.extend(sorted(set(state) - set(target)))
    return out


def _inflated(family: ModelFamily, key: str, current: torch.Tensor,
              state: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """The family's inflation of ``key`` from image weights, when it has ``current``'s shape."""
    inflated = family.inflate_weight(key, current, state)
    return inflated if inflated is not None and inflated.shape == current.shape else None


def _refuse_inexact(report: LoadReport, path: str | Path) -> None:
    changed = report.inflated + report.resized + report.new + report.missing + report.mismatched + report.unused
    if changed:
        raise CheckpointError(f"{path} does not hold exactly this model's weights ({len(changed)} differ, e.g. "
                              f"{', '.join(changed[:6])})\n{report.format()}")


def _refuse_partial(report: LoadReport, path: str | Path, allow_partial: bool) -> None:
    if (report.missing or report.mismatched) and not allow_partial:
        problems = report.missing[:10] + report.mismatched[:10]
        raise CheckpointError(
            f"{path} does not cover the model: {len(report.missing)} missing and "
            f"{len(report.mismatched)} shape-mismatched non-classifier weights "
            f"(e.g. {', '.join(problems)}); check MODEL.NAME and the architecture keys match the "
            f"checkpoint, or {PARTIAL_HINT}\n{report.format()}")


def _refuse_random_classifier(report: LoadReport, family: ModelFamily, path: str | Path, layout: str,
                              allowed: bool | None) -> None:
    """A classifier left random where the caller expects a trained one (see ``load_checkpoint_contents``)."""
    fresh = [key for key in report.new if family.is_classifier(key)]
    if not fresh or allowed or (allowed is None and layout not in TRAINED_LAYOUTS):
        return
    reason = next((note for note in report.notes if note.startswith(fresh[0])), f"{fresh[0]}: not in the file")
    raise CheckpointError(
        f"{path}: the model's classifier would be random after loading ({reason}); build the model with the "
        "checkpoint's number of classes (MODEL.NUM_CLASSES; Python: num_classes), or ask for a new classifier "
        "(finetuning does; Python: allow_new_classifier=True)")
