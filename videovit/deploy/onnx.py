"""Export a model to ONNX (dynamic batch axis) and check the file against PyTorch with onnxruntime.

The graph takes ``video``: float32 ``(batch, 3, T, H, W)`` normalised clips, and returns ``logits``
``(batch, num_classes)``. It is traced with the torch.export-based exporter under the "math"
attention kernel: the fused CPU attention kernel's output strides break the exporter's reshape
decomposition (measured with torch 2.14). onnx, onnxscript and onnxruntime come with the
``export`` extra (``pip install -e '.[export]'``); see docs/deployment.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from videovit.errors import CheckFailedError, MissingDependencyError
from videovit.models import VideoBackbone

ONNX_OPSET = 18
INPUT_NAME = "video"
OUTPUT_NAME = "logits"
MAX_ABS_DIFF = 1e-4      # onnxruntime vs PyTorch logits, float32 on CPU
EXTRA_HINT = "install the export extra: pip install -e '.[export]'"


@dataclass(frozen=True)
class OnnxCheck:
    """onnxruntime vs PyTorch on the same clips: the largest |logit difference| over the batch sizes."""

    batch_sizes: tuple[int, ...]
    max_abs_diff: float

    @property
    def passed(self) -> bool:
        """True when the difference is within ``MAX_ABS_DIFF``."""
        return self.max_abs_diff <= MAX_ABS_DIFF


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError as err:
        raise MissingDependencyError(f"{module} is not installed: {EXTRA_HINT}") from err


def export_onnx(model: nn.Module, clip_shape: tuple[int, int, int, int], path: str | Path,
                opset: int = ONNX_OPSET) -> Path:
    """Write ``model`` (eval mode, CPU float32) as ONNX to ``path``; ``clip_shape`` is ``(3, T, H, W)``."""
    for module in ("onnx", "onnxscript"):
        _require(module)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    example = torch.randn(2, *clip_shape)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        torch.onnx.export(model, (example,), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          opset_version=opset, dynamo=True, external_data=False, verbose=False,
                          dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))
    return path


def check_onnx(path: str | Path, model: nn.Module, clip_shape: tuple[int, int, int, int],
               batch_sizes: tuple[int, ...] = (1, 3), seed: int = 0) -> OnnxCheck:
    """Run the ONNX file and ``model`` on the same random clips of each batch size (the batch axis is
    dynamic, so sizes other than the exported one must work) and compare the logits."""
    session = onnx_session(path)
    generator = torch.Generator().manual_seed(seed)
    model = model.eval()
    diff = 0.0
    for batch in batch_sizes:
        inputs = torch.randn(batch, *clip_shape, generator=generator)
        with torch.no_grad():
            expected = model(inputs).float().numpy()
        (logits,) = session.run([OUTPUT_NAME], {INPUT_NAME: inputs.numpy()})
        if logits.shape != expected.shape:
            raise RuntimeError(f"{path} returned logits of shape {logits.shape} for a batch of {batch}, "
                               f"PyTorch {expected.shape}")
        diff = max(diff, float(np.max(np.abs(logits - expected))))
    return OnnxCheck(tuple(batch_sizes), diff)


def write_checked_onnx(model: VideoBackbone, path: str | Path, opset: int = ONNX_OPSET) -> OnnxCheck:
    """Export a trained ``model`` (CPU float32) for its own clip size to ``path`` and check it against
    PyTorch (``check_onnx``); CheckFailedError when they differ by more than ``MAX_ABS_DIFF``."""
    protocol = model.trained_parts()[2]
    clip_shape = (3, protocol.num_frames, protocol.crop_size, protocol.crop_size)
    path = export_onnx(model, clip_shape, path, opset)
    check = check_onnx(path, model, clip_shape)
    if not check.passed:
        raise CheckFailedError(f"{path}: onnxruntime differs from PyTorch by {check.max_abs_diff:.3g} "
                               f"(> {MAX_ABS_DIFF:g}); the ONNX file is not trustworthy, so nothing was exported")
    return check


def onnx_session(path: str | Path):
    """An onnxruntime CPU session on the ONNX file at ``path``."""
    _require("onnxruntime")
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


__all__ = ["INPUT_NAME", "MAX_ABS_DIFF", "ONNX_OPSET", "OUTPUT_NAME", "OnnxCheck",
           "check_onnx", "export_onnx", "onnx_session", "write_checked_onnx"]
