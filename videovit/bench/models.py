"""Model speed and memory, and the RegionViT paper's memory argument for R2L attention, measured.

**Model benchmark.** Forward (eval mode, no autograd) and forward+backward (train mode, cross-entropy
on random labels, gradients freed after each iteration, no optimiser step) of the configured model
on random clips: mean and median time per iteration, clips/s, and peak memory. Every measurement
runs in a fresh ``spawn`` process, so that one measurement's allocations and caches cannot hide or
inflate another's peak. Peak memory is taken on one extra iteration after the timed ones:

- on CUDA: ``torch.cuda.max_memory_allocated`` during that iteration minus the memory allocated
  before it (weights and input excluded);
- on Linux CPUs: the peak resident set size during that iteration (``VmHWM`` of /proc/self/status,
  after resetting it through ``/proc/self/clear_refs``) minus the resident set
  before it, with the C allocator's free pages released first (glibc ``malloc_trim``) so that
  buffers the iteration reuses count too. It is every page the iteration touches beyond the live
  weights and input: activations, gradients, workspaces, allocator overhead (page-granular);
- elsewhere: not measured.

**Attention memory.** RegionViT replaces global self-attention over N local tokens by R2L
attention: regional self-attention over the R = ceil(h/M) * ceil(w/M) regional tokens, then
local self-attention in each of the R windows of one regional and M*M local tokens. Attention
matrix elements per head and image: global N^2, R2L R^2 + R (M^2 + 1)^2 (e.g. N = 196, M = 7:
38416 vs 10016, a 73.9% saving: the paper's "73%"). The measured side runs the two forms with
this project's attention modules on one image (forward only, through the math SDPA kernel, which
materialises the attention matrices as the paper's analysis assumes; fused kernels avoid them for
both forms), each in a fresh process like the model benchmark.
"""
from __future__ import annotations

import ctypes
import gc
import math
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from yacs.config import CfgNode

from videovit.bench.flops import count_parameters
from videovit.bench.tables import format_table
from videovit.errors import UsageError
from videovit.models import build_model
from videovit.models.layers import Attention
from videovit.models.r2l import RelPosAttention, WindowGrid, additive_padding_mask
from videovit.runtime.distributed import resolve_device
from videovit.runtime.precision import amp_active, autocast_factory, build_grad_scaler
from videovit.workers import WorkerPool

MODES = ("forward", "forward+backward")
ATTENTION_FORMS = ("global", "r2l")
MIB = 2**20
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATM = Path("/proc/self/statm")
_STATUS = Path("/proc/self/status")


@dataclass(frozen=True)
class BenchmarkSettings:
    """How to run the measured iterations (the tool's command-line options)."""

    batch_size: int = 1
    iters: int = 10
    warmup: int = 3
    channels_last: bool = False
    compile: bool = False
    threads: int = 0            # torch CPU threads in each measuring process (0: torch's default)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.iters < 1 or self.warmup < 0 or self.threads < 0:
            raise UsageError(f"need batch_size >= 1, iters >= 1, warmup >= 0 and threads >= 0; got {self}")


@dataclass
class Timing:
    """Seconds per timed iteration, and the peak memory (bytes) of one more iteration above the
    memory in use before it."""

    seconds: list[float]
    peak_bytes: int | None

    @property
    def mean_ms(self) -> float:
        """Mean milliseconds per iteration."""
        return 1000 * statistics.fmean(self.seconds)

    @property
    def median_ms(self) -> float:
        """Median milliseconds per iteration (robust to a shared machine's hiccups)."""
        return 1000 * statistics.median(self.seconds)

    @property
    def peak_mib(self) -> float | None:
        """Peak memory in MiB (None: not measurable here)."""
        return None if self.peak_bytes is None else self.peak_bytes / MIB


@dataclass
class ModelMeasurement:
    """One row of the model table."""

    mode: str
    input_shape: tuple[int, ...]
    timing: Timing

    @property
    def clips_per_s(self) -> float:
        """Clips processed per second (batch size / mean iteration time)."""
        return self.input_shape[0] / statistics.fmean(self.timing.seconds)


# ---------------------------------------------------------------------------- measuring

def memory_measure(device: torch.device) -> str:
    """What the peak-memory numbers mean on ``device`` (one line for the table's header)."""
    if device.type == "cuda":
        return "peak CUDA memory allocated during one iteration, above weights and input"
    if reset_peak_rss():
        return ("peak RSS increase during one extra iteration, allocator's free pages released first "
                "(fresh process per row; weights and input excluded)")
    return "not measured (needs CUDA or Linux's /proc/self/clear_refs)"


def reset_peak_rss() -> bool:
    """Reset the kernel's resident-set high-water mark of this process; False where impossible
    (it needs Linux >= 4.0)."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def _resident_bytes() -> int:
    """Current resident set size of this process."""
    return int(_STATM.read_text().split()[1]) * resource.getpagesize()


def _peak_resident_bytes() -> int:
    """The kernel's resident-set high-water mark of this process (``VmHWM``).

    Not ``getrusage``'s maxrss: that also keeps the parent's resident set at the time this process
    was forked, which ``clear_refs`` cannot reset.
    """
    for line in _STATUS.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"{_STATUS} has no VmHWM line")


class PeakMemory:
    """Peak memory above the starting point, between ``start()`` and ``stop()`` (see module docstring)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.base: int | None = None

    def start(self) -> None:
        """Forget earlier peaks and record the current usage."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        elif reset_peak_rss():
            self.base = _resident_bytes()

    def stop(self) -> int | None:
        """Peak bytes above the starting usage, or None where it cannot be measured."""
        if self.base is None:
            return None
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) - self.base
        return _peak_resident_bytes() - self.base


def synchronise(device: torch.device) -> None:
    """Wait for ``device``'s queued work (a GPU's kernels run asynchronously; a CPU has nothing to wait for)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def release_free_memory() -> None:
    """Give the C allocator's free pages back to the OS (glibc ``malloc_trim``; a no-op elsewhere), so
    that memory the next step reuses is counted again in the resident set."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):
        pass


def time_iterations(step: Callable[[], Any], warmup: int, iters: int, device: torch.device) -> Timing:
    """Run ``step`` ``warmup`` times untimed and ``iters`` times timed, then once more for peak memory.

    The memory step runs after the allocator's free pages were released, so it counts all memory
    the step needs beyond what is live before it, including buffers it would otherwise reuse.
    """
    for _ in range(warmup):
        step()
    synchronise(device)
    seconds = []
    for _ in range(iters):
        start = time.perf_counter()
        step()
        synchronise(device)
        seconds.append(time.perf_counter() - start)
    release_free_memory()
    peak = PeakMemory(device)
    peak.start()
    step()
    synchronise(device)
    return Timing(seconds, peak.stop())


def _apply(call: tuple[Callable[..., Any], tuple[Any, ...]]) -> Any:
    function, args = call
    return function(*args)


def run_in_fresh_process(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a newly spawned Python process (its result and exceptions come back); the
    process leaves signals to this one and dies with it (``videovit.workers``).

    The spawned process imports the caller's main module again: scripts need the usual
    ``if __name__ == "__main__":`` guard.
    """
    with WorkerPool(_apply, 1, start_method="spawn") as pool:
        return next(result for _, result in pool.run([(function, args)]))


def _set_threads(threads: int) -> None:
    if threads:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------- model benchmark

def input_shape(cfg: CfgNode, mode: str, batch_size: int) -> tuple[int, int, int, int, int]:
    """Clip shape of a mode: training crops for forward+backward, test crops for forward."""
    side = cfg.DATA.TRAIN_CROP_SIZE if mode == "forward+backward" else cfg.DATA.TEST_CROP_SIZE
    return (batch_size, 3, cfg.DATA.NUM_FRAMES, side, side)


def measure_model(cfg_text: str, settings: BenchmarkSettings, mode: str) -> ModelMeasurement:
    """Time ``mode`` of the model of ``cfg_text`` (a dumped config) in this process."""
    if mode not in MODES:
        raise ValueError(f"unknown benchmark mode {mode!r}; choose from {MODES}")
    _set_threads(settings.threads)
    torch.manual_seed(0)
    cfg = CfgNode.load_cfg(cfg_text)
    device = resolve_device(cfg.DEVICE)
    model = build_model(cfg).to(device)
    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    runner = torch.compile(model) if settings.compile else model
    autocast = autocast_factory(cfg, device)
    shape = input_shape(cfg, mode, settings.batch_size)
    clip = torch.randn(shape, device=device)

    if mode == "forward":
        model.eval()

        def step() -> None:
            with torch.inference_mode(), autocast():
                runner(clip)
    else:
        model.train()
        labels = torch.randint(cfg.MODEL.NUM_CLASSES, (settings.batch_size,), device=device)
        scaler = build_grad_scaler(cfg, device)

        def step() -> None:
            with autocast():
                logits = runner(clip)
            scaler.scale(F.cross_entropy(logits.float(), labels)).backward()
            model.zero_grad(set_to_none=True)

    return ModelMeasurement(mode, shape, time_iterations(step, settings.warmup, settings.iters, device))


def benchmark_model(cfg: CfgNode, settings: BenchmarkSettings,
                    modes: Sequence[str] = MODES) -> list[ModelMeasurement]:
    """One measurement per mode, each in a fresh process."""
    autocast_factory(cfg, resolve_device(cfg.DEVICE))  # refuse an impossible AMP setting before spawning
    return [run_in_fresh_process(measure_model, cfg.dump(), settings, mode) for mode in modes]


# ---------------------------------------------------------------------------- attention memory

@dataclass(frozen=True)
class AttentionCost:
    """Attention-matrix elements per head and image of global vs R2L attention over an h x w map."""

    height: int
    width: int
    window: int

    @property
    def tokens(self) -> int:
        """N: local tokens."""
        return self.height * self.width

    @property
    def regions(self) -> int:
        """R: regional tokens = windows (the local map is padded to whole windows)."""
        return math.ceil(self.height / self.window) * math.ceil(self.width / self.window)

    @property
    def global_elements(self) -> int:
        """N^2: every local token attends to every local token."""
        return self.tokens ** 2

    @property
    def r2l_elements(self) -> int:
        """R^2 (regional self-attention) + R (M^2 + 1)^2 (local self-attention with the regional token)."""
        return self.regions ** 2 + self.regions * (self.window ** 2 + 1) ** 2

    @property
    def ratio(self) -> float:
        """R2L elements / global elements."""
        return self.r2l_elements / self.global_elements

    @property
    def saving(self) -> float:
        """Fraction of the global attention-matrix memory R2L saves (negative: it costs more)."""
        return 1.0 - self.ratio


@dataclass(frozen=True)
class AttentionShape:
    """Width, heads and window of the attention compared (default: RegionViT-Ti's first stage)."""

    dim: int = 64
    heads: int = 2
    window: int = 7


@dataclass
class AttentionMeasurement:
    """Theoretical cost and the measured timing of both forms at one input resolution."""

    resolution: int
    cost: AttentionCost
    timings: dict[str, Timing] = field(default_factory=dict)


def r2l_attention(attention: RelPosAttention, windows: torch.Tensor, num_windows: int,
                  mask: torch.Tensor | None) -> torch.Tensor:
    """The attention half of an R2L block (its norms and MLP left out): RSA over the regional tokens
    with a residual, then LSA within each ``[regional, locals]`` window with the relative position
    bias and a residual. ``windows``: ``(images*num_windows, 1 + M*M, C)``."""
    count, _, channels = windows.shape
    regional = windows[:, 0].reshape(-1, num_windows, channels)
    regional = regional + attention(regional)
    windows = torch.cat([regional.reshape(count, 1, channels), windows[:, 1:]], dim=1)
    bias = attention.rel_pos_bias()[None]
    return windows + attention(windows, bias if mask is None else bias + mask)


def global_attention(attention: Attention, tokens: torch.Tensor) -> torch.Tensor:
    """Plain self-attention over all tokens with a residual (the baseline R2L replaces)."""
    return tokens + attention(tokens)


def measure_attention(form: str, resolution: int, shape: AttentionShape, settings: BenchmarkSettings,
                      materialise: bool = True) -> Timing:
    """Time one attention form over the stride-4 local map of a ``resolution``-pixel image, in this process."""
    if form not in ATTENTION_FORMS:
        raise ValueError(f"unknown attention form {form!r}; choose from {ATTENTION_FORMS}")
    _set_threads(settings.threads)
    torch.manual_seed(0)
    side = resolution // 4
    local = torch.randn(1, shape.dim, side, side)
    if form == "global":
        attention = Attention(shape.dim, shape.heads).eval()
        tokens = local.flatten(2).transpose(1, 2)

        def forward() -> torch.Tensor:
            return global_attention(attention, tokens)
    else:
        regions = math.ceil(side / shape.window)
        regional = torch.randn(1, shape.dim, regions, regions)
        attention = RelPosAttention(shape.dim, shape.heads, shape.window).eval()
        grid = WindowGrid.of(regional, local, shape.window)
        windows = grid.to_windows(regional, local)
        allowed = grid.attention_allowed(exact=True)
        mask = None if allowed is None else additive_padding_mask(allowed, 1, windows.dtype)

        def forward() -> torch.Tensor:
            return r2l_attention(attention, windows, grid.num_windows, mask)

    def step() -> None:
        with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH) if materialise else nullcontext():
            forward()

    return time_iterations(step, settings.warmup, settings.iters, torch.device("cpu"))


def compare_attention(resolutions: Sequence[int], shape: AttentionShape, settings: BenchmarkSettings,
                      materialise: bool = True, measure: bool = True) -> list[AttentionMeasurement]:
    """Theoretical and (with ``measure``) measured cost of global vs R2L attention per resolution."""
    rows = []
    for resolution in resolutions:
        if resolution < 4 * shape.window:
            raise UsageError(f"resolution {resolution} gives fewer local tokens than one {shape.window}x"
                             f"{shape.window} window; use at least {4 * shape.window}")
        row = AttentionMeasurement(resolution, AttentionCost(resolution // 4, resolution // 4, shape.window))
        if measure:
            row.timings = {form: run_in_fresh_process(measure_attention, form, resolution, shape, settings,
                                                      materialise) for form in ATTENTION_FORMS}
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------- tables

def _mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def model_table(rows: Sequence[ModelMeasurement]) -> str:
    """The model benchmark as a text table."""
    header = ["mode", "input (B,C,T,H,W)", "iters", "mean ms", "median ms", "clips/s", "peak MiB"]
    return format_table(header, [
        [row.mode, "x".join(map(str, row.input_shape)), str(len(row.timing.seconds)), f"{row.timing.mean_ms:.1f}",
         f"{row.timing.median_ms:.1f}", f"{row.clips_per_s:.2f}", _mib(row.timing.peak_mib)] for row in rows])


def attention_table(rows: Sequence[AttentionMeasurement]) -> str:
    """Theoretical attention-matrix elements and measured peak memory / time of both forms."""
    header = ["input", "local grid", "N", "windows", "global elems", "R2L elems", "R2L/global", "saving",
              "global MiB", "R2L MiB", "measured saving", "global ms", "R2L ms"]
    lines = []
    for row in rows:
        cost, timings = row.cost, row.timings
        measured = [_mib(timings[f].peak_mib) for f in ATTENTION_FORMS] if timings else ["-", "-"]
        saving = "-"
        if timings and timings["global"].peak_bytes and timings["r2l"].peak_bytes is not None:
            saving = f"{100 * (1 - timings['r2l'].peak_bytes / timings['global'].peak_bytes):.1f}%"
        times = [f"{timings[f].median_ms:.2f}" for f in ATTENTION_FORMS] if timings else ["-", "-"]
        lines.append([str(row.resolution), f"{cost.height}x{cost.width}", str(cost.tokens), str(cost.regions),
                      f"{cost.global_elements:,}", f"{cost.r2l_elements:,}", f"{cost.ratio:.4f}",
                      f"{100 * cost.saving:.1f}%", *measured, saving, *times])
    return format_table(header, lines)


def describe_settings(cfg: CfgNode, settings: BenchmarkSettings, num_parameters: int) -> str:
    """Header lines: model, device, threads, precision and what the memory column means."""
    device = resolve_device(cfg.DEVICE)
    threads = settings.threads or torch.get_num_threads()
    amp = cfg.AMP.DTYPE if amp_active(cfg, device) else "off (fp32)"
    return "\n".join([
        f"model {cfg.MODEL.NAME}: {num_parameters / 1e6:.2f}M parameters, {cfg.DATA.NUM_FRAMES} frames, "
        f"{cfg.MODEL.NUM_CLASSES} classes",
        f"device {device}, {threads} CPU threads, AMP {amp}, channels_last {settings.channels_last}, "
        f"torch.compile {settings.compile}, {settings.warmup} warm-up + {settings.iters} timed iterations, "
        f"torch {torch.__version__}, python {sys.version.split()[0]}",
        f"peak MiB: {memory_measure(device)}",
    ])


def attention_shape(model: torch.nn.Module) -> AttentionShape:
    """First-stage width, heads and window of a model made of R2L layers (its architecture has a
    ``window_size``); the default shape (RegionViT-Ti's first stage) for any other model."""
    arch: Any = getattr(model, "config", None)
    if not hasattr(arch, "window_size"):
        return AttentionShape()
    return AttentionShape(arch.embed_dims[0], arch.num_heads[0], arch.window_size)


def benchmark_report(cfg: CfgNode, settings: BenchmarkSettings, amp: str | None = None,
                     attention_sizes: Sequence[int] = ()) -> Iterator[str]:
    """What tools/benchmark.py prints, block by block: the settings, the model table and (with
    ``attention_sizes``) the R2L vs global attention table at those input sizes."""
    cfg = with_amp(cfg, amp)
    model = build_model(cfg)
    rows = benchmark_model(cfg, settings)
    yield describe_settings(cfg, settings, count_parameters(model))
    yield model_table(rows)
    if attention_sizes:
        shape = attention_shape(model)
        yield (f"\nattention over the stride-4 local tokens of one image: dim {shape.dim}, {shape.heads} heads, "
               f"window {shape.window}; elements per head; math SDPA kernel (attention matrices materialised)")
        yield attention_table(compare_attention(attention_sizes, shape, settings))


def with_amp(cfg: CfgNode, amp: str | None) -> CfgNode:
    """``cfg`` with AMP.ENABLE/AMP.DTYPE set from a ``--amp`` choice, on whatever device (None: unchanged)."""
    if amp is None:
        return cfg
    cfg = cfg.clone()
    cfg.defrost()
    cfg.AMP.ENABLE, cfg.AMP.DTYPE, cfg.AMP.CPU = True, amp, True
    cfg.freeze()
    return cfg


__all__ = ["ATTENTION_FORMS", "AttentionCost", "AttentionMeasurement", "AttentionShape", "BenchmarkSettings", "MODES",
           "ModelMeasurement", "PeakMemory", "Timing", "attention_shape", "attention_table", "benchmark_model",
           "benchmark_report", "compare_attention",
           "describe_settings", "format_table", "global_attention", "input_shape", "measure_attention", "measure_model",
           "memory_measure", "model_table", "r2l_attention", "release_free_memory", "reset_peak_rss",
           "run_in_fresh_process", "synchronise", "time_iterations", "with_amp"]
