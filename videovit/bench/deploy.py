"""Deployment paths on CPU: ONNX export accuracy and speed, and torch.compile speed (docs/deployment.md).

``onnx``: each model (random weights, full size) is exported with ``videovit.deploy.onnx``; the row
gives the largest |logit difference| onnxruntime vs PyTorch and the seconds per clip of each (batch 1,
median after a warm-up call). ``compile``: seconds per clip eager vs MODEL.COMPILE's torch.compile,
and the compile time. Figures depend on the machine and its load.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch

from videovit.deploy.onnx import INPUT_NAME, OUTPUT_NAME, check_onnx, export_onnx, onnx_session
from videovit.models import build_variant, family_of
from videovit.runtime.compile import compile_model, is_compiled

WHAT = ("onnx", "compile")
HEADERS = {
    "onnx": ("model", "clip", "max abs diff", "PyTorch s/clip", "onnxruntime s/clip", "ONNX MB", "export s"),
    "compile": ("model", "clip", "eager s/clip", "compiled s/clip", "speed-up", "compile s", "max abs diff",
                "compiled"),
}


def seconds_per_call(call: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls, after one warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def benchmark_onnx(name: str, frames: int, size: int, repeats: int) -> list[str]:
    """Export ``name``, check it, time onnxruntime and PyTorch on one clip: the row's cells."""
    model = build_variant(name, num_frames=frames, num_classes=400).eval()
    shape = (3, frames, size, size)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        path = export_onnx(model, shape, Path(folder) / f"{name}.onnx")
        export_s = time.perf_counter() - started
        check = check_onnx(path, model, shape, batch_sizes=(1, 2))
        session = onnx_session(path)
        clip = torch.randn(1, *shape)
        with torch.no_grad():
            eager = seconds_per_call(lambda: model(clip), repeats)
        runtime = seconds_per_call(lambda: session.run([OUTPUT_NAME], {INPUT_NAME: clip.numpy()}), repeats)
        size_mb = path.stat().st_size / 1e6
    return [name, f"{frames}x{size}", f"{check.max_abs_diff:.2e}", f"{eager:.3f}", f"{runtime:.3f}",
            f"{size_mb:.1f}", f"{export_s:.0f}"]


def benchmark_compile(name: str, frames: int, size: int, repeats: int) -> list[str]:
    """Eager vs compiled seconds per clip of ``name`` (batch 1, inference): the row's cells."""
    model = build_variant(name, num_frames=frames, num_classes=400).eval()
    clip = torch.randn(1, 3, frames, size, size)
    with torch.no_grad():
        eager_logits = model(clip)
        eager = seconds_per_call(lambda: model(clip), repeats)
        started = time.perf_counter()
        compile_model(model, clip)
        compile_s = time.perf_counter() - started
        compiled = seconds_per_call(lambda: model(clip), repeats)
        diff = float((model(clip) - eager_logits).abs().max())
    return [name, f"{frames}x{size}", f"{eager:.3f}", f"{compiled:.3f}", f"{eager / compiled:.2f}x",
            f"{compile_s:.0f}", f"{diff:.1e}", str(is_compiled(model))]


def markdown_row(cells: Sequence[str]) -> str:
    """``| a | b | ... |``."""
    return "| " + " | ".join(cells) + " |"


def benchmark_deployment(what: str, models: Sequence[str], frames: int, size: int, repeats: int,
                         threads: int) -> Iterator[str]:
    """The markdown table of ``what`` ("onnx" or "compile") line by line, each model's row as soon as it is
    measured; an unknown model name raises ModelOptionError before any work."""
    if what not in WHAT:
        raise ValueError(f"unknown deployment benchmark {what!r}; choose from {WHAT}")
    for name in models:
        family_of(name)
    torch.set_num_threads(threads)
    yield f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, batch 1, median of {repeats}"
    header = HEADERS[what]
    yield markdown_row(header)
    yield markdown_row(["---"] * len(header))
    measure = benchmark_onnx if what == "onnx" else benchmark_compile
    for name in models:
        yield markdown_row(measure(name, frames, size, repeats))


__all__ = ["HEADERS", "WHAT", "benchmark_compile", "benchmark_deployment", "benchmark_onnx", "markdown_row",
           "seconds_per_call"]
