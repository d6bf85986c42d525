"""Training and inference throughput per device, peak memory and model FLOPs utilisation (docs/performance.md).

The measured step is the training step's compute as a run configures it, on random clips already on
the device (no data loading): ``build_model``, ``torch.compile`` behind MODEL.COMPILE, the optimiser of
``build_optimizer`` (fused AdamW on CUDA), autocast and loss scaling from AMP.*, and under torchrun
DistributedDataParallel with gradient bucket views. One training step: forward under autocast,
cross-entropy, backward, optimiser step, gradients freed. One inference step: eval mode, no autograd,
autocast. Each is timed over ``iters`` steps after ``warmup`` (wall clock, the device synchronised at
both ends), per process; every process prints its own row.

MFU (model FLOPs utilisation) = 3 x forward FLOPs per clip x training clips/s / the device's dense
bf16 peak. Forward FLOPs are 2 x fvcore's multiply-adds of one test-sized clip (the papers' "FLOPs"
count one multiply-add as one); 3x covers the forward and the backward's two matrix products per
forward one. The peak is looked up from the GPU's name (``GPU_PEAK_BF16_TFLOPS``, NVIDIA's data
sheets, dense, no sparsity) or given; a CPU has none unless given. Peak memory: the most the process
held during training (``torch.cuda.max_memory_allocated`` on a GPU, the resident set's high-water
mark on a CPU), weights, gradients and optimiser state included.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from yacs.config import CfgNode

from videovit.bench.flops import count_flops
from videovit.bench.models import reset_peak_rss, synchronise
from videovit.bench.tables import format_table
from videovit.engine.optim import build_optimizer
from videovit.errors import UsageError
from videovit.models import build_model
from videovit.runtime.compile import compile_if_configured
from videovit.runtime.distributed import DistContext, all_gather_objects, wrap_distributed
from videovit.runtime.precision import amp_active, autocast_factory, build_grad_scaler

# Dense bf16 tensor-core peaks in TFLOPS by a part of the device name, most specific first (NVIDIA data sheets).
GPU_PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("B200", 2250.0), ("B100", 1750.0),
    ("H200", 989.0), ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H800", 989.0),
    ("A100", 312.0), ("A800", 312.0),
    ("L40S", 362.0), ("L40", 181.0), ("L4", 121.0), ("A10", 125.0),
)
_STATUS = Path("/proc/self/status")


def peak_tflops(device_name: str) -> float | None:
    """Dense bf16 peak of a GPU named ``device_name`` (``torch.cuda.get_device_name``), None if unknown."""
    for part, tflops in GPU_PEAK_BF16_TFLOPS:
        if part in device_name:
            return tflops
    return None


@dataclass(frozen=True)
class ThroughputRow:
    """One process's figures."""

    rank: int
    device: str
    batch: int
    train_clips_per_s: float
    infer_clips_per_s: float
    peak_bytes: int | None
    forward_flops: float          # per clip: 2 x multiply-adds
    peak_flops: float | None      # the device's dense bf16 peak in FLOP/s, when known

    @property
    def mfu(self) -> float | None:
        """Training model FLOPs utilisation (0..1), None without a peak."""
        if self.peak_flops is None:
            return None
        return 3 * self.forward_flops * self.train_clips_per_s / self.peak_flops

    def cells(self) -> list[str]:
        """Table cells, see ``throughput_table``."""
        peak = "n/a" if self.peak_bytes is None else f"{self.peak_bytes / 2**30:.2f}"
        mfu = "n/a" if self.mfu is None else f"{100 * self.mfu:.1f}%"
        return [str(self.rank), self.device, str(self.batch), f"{self.train_clips_per_s:.2f}",
                f"{self.infer_clips_per_s:.2f}", f"{self.infer_clips_per_s / self.train_clips_per_s:.1f}x", peak,
                f"{self.forward_flops / 1e9:.1f}", mfu]


def _clips_per_s(step: Callable[[], None], batch: int, warmup: int, iters: int, device: torch.device) -> float:
    for _ in range(warmup):
        step()
    synchronise(device)
    started = time.perf_counter()
    for _ in range(iters):
        step()
    synchronise(device)
    return batch * iters / (time.perf_counter() - started)


def _peak_memory(device: torch.device) -> int | None:
    """The most this process held since the last reset (see the module docstring)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    for line in _STATUS.read_text().splitlines() if _STATUS.exists() else []:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def _reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        reset_peak_rss()


def measure_throughput(cfg: CfgNode, ctx: DistContext, batch: int, warmup: int, iters: int,
                       tflops: float | None = None) -> ThroughputRow:
    """This process's training and inference throughput of ``cfg``'s model (see the module docstring).

    ``tflops``: the device's dense bf16 peak (None: looked up for a GPU, none on a CPU)."""
    if batch < 1 or iters < 1 or warmup < 0:
        raise UsageError("need --batch-size >= 1, --iters >= 1 and --warmup >= 0")
    device = ctx.device
    torch.manual_seed(ctx.rank)
    module = build_model(cfg).to(device)
    shape = (batch, 3, cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TRAIN_CROP_SIZE)
    one_clip = torch.randn(1, *shape[1:], device=device)
    forward_flops = 2.0 * count_flops(module, one_clip)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    if tflops is None and device.type == "cuda":
        tflops = peak_tflops(name)
    optimizer = build_optimizer(cfg, module, ctx.world_size)
    compile_if_configured(module, cfg)
    model = wrap_distributed(module, ctx)
    autocast = autocast_factory(cfg, device)
    scaler = build_grad_scaler(cfg, device)
    clips = torch.randn(shape, device=device)
    labels = torch.randint(cfg.MODEL.NUM_CLASSES, (batch,), device=device)

    def train_step() -> None:
        with autocast():
            loss = F.cross_entropy(model(clips).float(), labels)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    def inference_step() -> None:
        with torch.inference_mode(), autocast():
            module(clips)

    model.train()
    _reset_peak_memory(device)
    train = _clips_per_s(train_step, batch, warmup, iters, device)
    peak = _peak_memory(device)
    module.eval()
    infer = _clips_per_s(inference_step, batch, warmup, iters, device)
    return ThroughputRow(ctx.rank, name, batch, train, infer, peak, forward_flops,
                         None if tflops is None else tflops * 1e12)


def gather_rows(row: ThroughputRow) -> list[ThroughputRow]:
    """Every process's row, in rank order (the one row without a process group)."""
    return list(all_gather_objects(row))


def describe(cfg: CfgNode, ctx: DistContext, iters: int, warmup: int) -> str:
    """The header line: model, clip, precision, optimiser, compile, processes."""
    amp = cfg.AMP.DTYPE + " autocast" if amp_active(cfg, ctx.device) else "fp32"
    return (f"{cfg.MODEL.NAME} {cfg.DATA.NUM_FRAMES}x{cfg.DATA.TRAIN_CROP_SIZE}, {amp}, {cfg.SOLVER.OPTIMIZER}, "
            f"torch.compile {bool(cfg.MODEL.COMPILE)}, {ctx.world_size} process(es) on {ctx.device.type}, "
            f"{warmup} warm-up + {iters} timed steps each, torch {torch.__version__}")


def throughput_table(rows: Sequence[ThroughputRow]) -> str:
    """The rows as a text table (per process)."""
    header = ["rank", "device", "batch", "train clips/s", "infer clips/s", "infer/train", "peak GiB",
              "fwd GFLOPs/clip", "train MFU"]
    return format_table(header, [row.cells() for row in rows])


def torchrun_command(script: str | Path, argv: Sequence[str], nproc: int) -> list[str]:
    """The command that runs ``script argv`` as ``nproc`` processes on this machine under torchrun.

    ``--nproc N`` is left out of the processes' arguments: torchrun would take it for its own option."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            kept.append(arg)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            str(script), *kept]


def under_torchrun() -> bool:
    """True inside a process torchrun started."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def run_under_torchrun(script: str | Path, argv: Sequence[str], nproc: int) -> int:
    """Run ``script argv`` as ``nproc`` processes under torchrun; its exit status."""
    if nproc < 2:
        raise UsageError(f"--nproc {nproc}: give 2 or more processes (1 runs without torchrun)")
    return subprocess.run(torchrun_command(script, argv, nproc), check=False).returncode


__all__ = ["GPU_PEAK_BF16_TFLOPS", "ThroughputRow", "describe", "gather_rows", "measure_throughput", "peak_tflops",
           "run_under_torchrun", "throughput_table", "torchrun_command", "under_torchrun"]
