"""Measure deployment paths on CPU: ONNX export accuracy and speed, and torch.compile speed.

    python tools/benchmark_deploy.py onnx --models regionvit_s volo_d1 [--frames 8 --size 224]
    python tools/benchmark_deploy.py compile --models regionvit_ti [--frames 8 --size 224]

``onnx``: exports each model (random weights, full size) with videovit.deploy.onnx, prints the
largest |logit difference| onnxruntime vs PyTorch and the seconds per clip of each (batch 1, after a
warm-up run). ``compile``: seconds per clip eager vs MODEL.COMPILE's torch.compile, and the compile
time. Figures depend on the machine and its load; see docs/deployment.md.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from videovit.cli import run_tool
from videovit.deploy.onnx import INPUT_NAME, OUTPUT_NAME, check_onnx, export_onnx, onnx_session
from videovit.models import build_variant, family_of
from videovit.runtime.compile import compile_model, is_compiled


def seconds_per_call(call: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls, after one warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def benchmark_onnx(name: str, frames: int, size: int, repeats: int) -> None:
    """Export ``name``, check it, time onnxruntime and PyTorch on one clip."""
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
    print(f"| {name} | {frames}x{size} | {check.max_abs_diff:.2e} | {eager:.3f} | {runtime:.3f} | "
          f"{size_mb:.1f} | {export_s:.0f} |", flush=True)


def benchmark_compile(name: str, frames: int, size: int, repeats: int) -> None:
    """Eager vs compiled seconds per clip of ``name`` (batch 1, inference)."""
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
    print(f"| {name} | {frames}x{size} | {eager:.3f} | {compiled:.3f} | {eager / compiled:.2f}x | {compile_s:.0f} | "
          f"{diff:.1e} | {is_compiled(model)} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and print a markdown table; 2 for an unknown model name."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("onnx", "compile"))
    parser.add_argument("--models", nargs="+", default=["regionvit_s", "volo_d1"])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args(argv)
    return run_tool(lambda: run(args))


def run(args: argparse.Namespace) -> None:
    """Measure every model of ``args.models``; an unknown name raises ValueError before any work."""
    for name in args.models:
        family_of(name)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, batch 1, median of {args.repeats}")
    if args.what == "onnx":
        print("| model | clip | max abs diff | PyTorch s/clip | onnxruntime s/clip | ONNX MB | export s |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for name in args.models:
            benchmark_onnx(name, args.frames, args.size, args.repeats)
    else:
        print("| model | clip | eager s/clip | compiled s/clip | speed-up | compile s | max abs diff | compiled |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for name in args.models:
            benchmark_compile(name, args.frames, args.size, args.repeats)


if __name__ == "__main__":
    sys.exit(main())
