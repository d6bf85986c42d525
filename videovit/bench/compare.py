"""Side by side with the libraries a user would pick instead: same weights, one process (docs/performance.md).

Each pair is this project's model and another implementation of the same network, holding the same
weights: the other side is built with its own random init and its state dict is loaded into ours
through this project's checkpoint loader in exact mode (every weight as it is, nothing resized,
inflated, new or unused), so a pair that does not load exactly is refused. Pairs:

- ``timesformer_b`` vs transformers' ``TimesformerForVideoClassification`` (8x224 clips);
- ``videomae_b`` vs transformers' ``VideoMAEForVideoClassification`` with ``attn_implementation="sdpa"``
  (16x224 clips), listed once a ``videomae_b`` model is registered;
- ``volo_d1`` as a frame model (one frame) vs timm's ``volo_d1_224``;
- ``regionvit_ti``/``_s``/``_m`` (one frame) vs the official IBM/RegionViT code, imported from a local
  checkout whose path is given (this repository does not carry that code). It imports as it is
  under today's timm; the only shim is loading its ``regionvit`` package under another name
  (``ibm_regionvit``), so that it cannot shadow or be shadowed by another module of that name.

Every row runs one mode (``forward``: eval mode without autograd; ``forward+backward``: train mode,
cross-entropy on fixed labels, gradients freed after each step) at one batch size and precision
(fp32, or bf16 autocast). The two sides alternate iteration by iteration after a warm-up, each going
first every other time, so that load on a shared machine and warm caches favour neither. The time
per iteration is the median of the timed ones: CPU seconds of this process on a CPU (steadier than
wall time on a shared machine; with one thread it counts the work, not OpenMP's spin-waits) and wall
seconds after a device sync on a GPU. ``ratio`` = ours / theirs (below 1: ours is faster). Peak
memory is measured for forward+backward on one more iteration of each side (``PeakMemory``: RSS
above the resident set before it on a CPU, ``torch.cuda.max_memory_allocated`` on a GPU). ``max
|diff|`` is the largest logit difference of the two sides in fp32 on the same clip: the proof that
both run the same network.
"""
from __future__ import annotations

import importlib
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from videovit.bench.models import PeakMemory, release_free_memory, synchronise
from videovit.bench.tables import format_table
from videovit.checkpoint.loading import load_checkpoint_contents
from videovit.errors import MissingDependencyError, UsageError
from videovit.models import build_variant, list_models

MODES = ("forward", "forward+backward")
PRECISIONS = ("fp32", "bf16")
OFFICIAL_REGIONVIT = {"regionvit_ti": "regionvit_tiny_224", "regionvit_s": "regionvit_small_224",
                      "regionvit_m": "regionvit_medium_224"}
OFFICIAL_PACKAGE = "ibm_regionvit"
PAIRS = ("timesformer_b", "videomae_b", "volo_d1", *OFFICIAL_REGIONVIT)


@dataclass
class Pair:
    """Our model and theirs with the same weights, each with its own input layout."""

    name: str
    library: str
    ours: nn.Module
    theirs: nn.Module
    clip: tuple[int, int, int, int]                      # (3, T, H, W) of one clip
    ours_input: Callable[[torch.Tensor], torch.Tensor]   # (B, 3, T, H, W) -> what ours takes
    theirs_input: Callable[[torch.Tensor], torch.Tensor]
    theirs_logits: Callable[[Any], torch.Tensor] = lambda output: output

    def sides(self) -> list[tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor], Callable[[Any], torch.Tensor]]]:
        """(model, input layout, logits of its output) of ours, then theirs."""
        return [(self.ours, self.ours_input, lambda output: output),
                (self.theirs, self.theirs_input, self.theirs_logits)]


@dataclass
class ComparisonRow:
    """One model, mode, batch and precision: both sides' time per iteration and peak memory."""

    name: str
    library: str
    mode: str
    batch: int
    precision: str
    seconds: tuple[float, float]          # median per iteration: ours, theirs
    peak_bytes: tuple[int | None, int | None]
    max_diff: float

    @property
    def ratio(self) -> float:
        """Our time / theirs."""
        return self.seconds[0] / self.seconds[1]

    def cells(self) -> list[str]:
        """Table cells (see ``comparison_table``)."""
        mib = ["-" if value is None else f"{value / 2**20:.0f}" for value in self.peak_bytes]
        return [self.name, self.library, self.mode, str(self.batch), self.precision,
                f"{1000 * self.seconds[0]:.0f}", f"{1000 * self.seconds[1]:.0f}", f"{self.ratio:.2f}", *mib,
                f"{self.max_diff:.1e}"]


def _load_exactly(ours: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``state`` into ``ours`` through the checkpoint loader, refusing anything but a 1:1 load."""
    load_checkpoint_contents(ours, state, source, exact=True, allow_new_classifier=True, log=lambda _: None)  # type: ignore[arg-type]


def _require(module: str, extra: str) -> Any:
    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(f"the {module} rows need {module}: pip install -e '.[{extra}]'")
    return importlib.import_module(module)


def _frames_first(clip: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) -> transformers' (B, T, 3, H, W), contiguous."""
    return clip.transpose(1, 2).contiguous()


def _one_frame(clip: torch.Tensor) -> torch.Tensor:
    """(B, 3, 1, H, W) -> an image batch (B, 3, H, W)."""
    return clip[:, :, 0].contiguous()


def timesformer_pair(width: int = 768, depth: int = 12, heads: int = 12, frames: int = 8, size: int = 224,
                     classes: int = 400) -> Pair:
    """timesformer_b (by default: 8x224, 400 classes) vs transformers' TimesformerForVideoClassification."""
    transformers = _require("transformers", "bench")
    config = transformers.TimesformerConfig(image_size=size, patch_size=16, num_frames=frames, num_labels=classes,
                                            hidden_size=width, num_hidden_layers=depth, num_attention_heads=heads,
                                            intermediate_size=4 * width, attention_type="divided_space_time")
    theirs = transformers.TimesformerForVideoClassification(config)
    ours = build_variant("timesformer_b", num_frames=frames, num_classes=classes, embed_dims=(width,),
                         depths=(depth,), num_heads=(heads,), img_size=size)
    _load_exactly(ours, theirs.state_dict(), "transformers TimesformerForVideoClassification")
    return Pair("timesformer_b", f"transformers {transformers.__version__}", ours, theirs, (3, frames, size, size),
                lambda clip: clip, _frames_first, lambda output: output.logits)


def videomae_pair() -> Pair:
    """videomae_b (16x224, 400 classes) vs transformers' VideoMAEForVideoClassification (SDPA attention)."""
    transformers = _require("transformers", "bench")
    config = transformers.VideoMAEConfig(image_size=224, patch_size=16, num_frames=16, tubelet_size=2,
                                         num_labels=400, use_mean_pooling=True, attn_implementation="sdpa")
    theirs = transformers.VideoMAEForVideoClassification(config)
    ours = build_variant("videomae_b", num_frames=16, num_classes=400)
    _load_exactly(ours, theirs.state_dict(), "transformers VideoMAEForVideoClassification")
    return Pair("videomae_b", f"transformers {transformers.__version__} (sdpa)", ours, theirs, (3, 16, 224, 224),
                lambda clip: clip, _frames_first, lambda output: output.logits)


def volo_pair(depths: tuple[int, ...] = (4, 4, 8, 2), dims: tuple[int, ...] = (192, 384, 384, 384),
              heads: tuple[int, ...] = (6, 12, 12, 12), classes: int = 1000) -> Pair:
    """volo_d1 (by default) as a frame model (one 224 frame) vs timm's VOLO (``volo_d1_224``)."""
    import timm
    from timm.models.volo import VOLO

    theirs = VOLO(list(depths), embed_dims=list(dims), num_heads=list(heads), num_classes=classes)
    ours = build_variant("volo_d1", num_frames=1, num_classes=classes, depths=depths, embed_dims=dims, num_heads=heads)
    _load_exactly(ours, theirs.state_dict(), "timm volo_d1_224")
    return Pair("volo_d1 (frame)", f"timm {timm.__version__}", ours, theirs, (3, 1, 224, 224),
                lambda clip: clip, _one_frame)


def import_official_regionvit(checkout: str | Path) -> Any:
    """The official code's ``regionvit`` package from a checkout of IBM/RegionViT, as ``ibm_regionvit``."""
    package = Path(checkout) / "regionvit" / "__init__.py"
    if not package.is_file():
        raise UsageError(f"{checkout} is not a checkout of IBM/RegionViT (no regionvit/__init__.py); "
                         "clone it and pass its folder with --regionvit-repo")
    if OFFICIAL_PACKAGE in sys.modules:
        return sys.modules[OFFICIAL_PACKAGE]
    spec = importlib.util.spec_from_file_location(OFFICIAL_PACKAGE, package,
                                                  submodule_search_locations=[str(package.parent)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[OFFICIAL_PACKAGE] = module
    spec.loader.exec_module(module)
    return module


def regionvit_pair(name: str, checkout: str | Path) -> Pair:
    """``name`` (regionvit_ti, _s or _m; one 224 frame, 1000 classes) vs the official model."""
    official = import_official_regionvit(checkout)
    theirs = getattr(official, OFFICIAL_REGIONVIT[name])()
    ours = build_variant(name, num_frames=1, num_classes=1000)
    _load_exactly(ours, theirs.state_dict(), f"official {OFFICIAL_REGIONVIT[name]}")
    return Pair(name, "official IBM/RegionViT", ours, theirs, (3, 1, 224, 224), lambda clip: clip, _one_frame)


def available_pairs(regionvit_repo: str | Path | None) -> list[str]:
    """The pairs that can run here: videomae_b once registered, RegionViT with a checkout."""
    names = [name for name in PAIRS if name != "videomae_b" or name in list_models()]
    return [name for name in names if name not in OFFICIAL_REGIONVIT or regionvit_repo]


def build_pair(name: str, regionvit_repo: str | Path | None) -> Pair:
    """The pair ``name`` (one of ``PAIRS``)."""
    if name == "timesformer_b":
        return timesformer_pair()
    if name == "videomae_b":
        if name not in list_models():
            raise UsageError("videomae_b is not a registered model in this version; leave it out of --models")
        return videomae_pair()
    if name == "volo_d1":
        return volo_pair()
    if name in OFFICIAL_REGIONVIT:
        if not regionvit_repo:
            raise UsageError(f"the {name} row needs a checkout of IBM/RegionViT: pass --regionvit-repo DIR")
        return regionvit_pair(name, regionvit_repo)
    raise UsageError(f"unknown comparison {name!r}; choose from {', '.join(PAIRS)}")


# ---------------------------------------------------------------------------- measuring

def _clock(device: torch.device) -> Callable[[], float]:
    """CPU seconds of this process on a CPU; wall seconds on a GPU (the caller syncs)."""
    return time.perf_counter if device.type == "cuda" else time.process_time


def _autocast(precision: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    if precision == "fp32":
        return nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _step(model: nn.Module, inputs: torch.Tensor, logits_of: Callable[[Any], torch.Tensor], mode: str,
          labels: torch.Tensor, autocast: Callable[[], AbstractContextManager]) -> Callable[[], None]:
    """One iteration of ``mode`` on ``model`` as a call."""
    if mode == "forward":
        def forward() -> None:
            with torch.inference_mode(), autocast():
                model(inputs)
        return forward

    def forward_backward() -> None:
        with autocast():
            logits = logits_of(model(inputs))
        F.cross_entropy(logits.float(), labels).backward()
        model.zero_grad(set_to_none=True)
    return forward_backward


def max_logit_difference(pair: Pair, clip: torch.Tensor) -> float:
    """Largest |ours - theirs| of the fp32 eval-mode logits on ``clip``."""
    logits = []
    for model, layout, logits_of in pair.sides():
        model.eval()
        with torch.inference_mode():
            logits.append(logits_of(model(layout(clip))).float())
    return float((logits[0] - logits[1]).abs().max())


def measure_row(pair: Pair, mode: str, batch: int, precision: str, device: torch.device, warmup: int,
                iters: int) -> ComparisonRow:
    """Both sides of ``pair`` alternating, iteration by iteration; see the module docstring."""
    generator = torch.Generator().manual_seed(0)
    clip = torch.randn((batch, *pair.clip), generator=generator).to(device)
    num_classes: Any = pair.ours.num_classes
    labels = torch.randint(int(num_classes), (batch,), generator=generator).to(device)
    autocast = _autocast(precision, device)
    steps = []
    for model, layout, logits_of in pair.sides():
        model.train(mode == "forward+backward")
        steps.append(_step(model, layout(clip), logits_of, mode, labels, autocast))
    clock = _clock(device)
    seconds: list[list[float]] = [[], []]
    for iteration in range(warmup + iters):
        for side in (0, 1) if iteration % 2 else (1, 0):  # neither side always runs on a warm cache
            step = steps[side]
            started = clock()
            step()
            synchronise(device)
            if iteration >= warmup:
                seconds[side].append(clock() - started)
    peaks: list[int | None] = [None, None]
    if mode == "forward+backward":
        for side, step in enumerate(steps):
            release_free_memory()
            peak = PeakMemory(device)
            peak.start()
            step()
            synchronise(device)
            peaks[side] = peak.stop()
    diff = max_logit_difference(pair, clip[:1])
    return ComparisonRow(pair.name, pair.library, mode, batch, precision,
                         (statistics.median(seconds[0]), statistics.median(seconds[1])), (peaks[0], peaks[1]), diff)


def compare(names: Sequence[str], regionvit_repo: str | Path | None, batches: Sequence[int],
            modes: Sequence[str], precisions: Sequence[str], device: torch.device, warmup: int,
            iters: int) -> Iterator[ComparisonRow]:
    """Every row of every pair, each as soon as it is measured (one pair in memory at a time)."""
    for mode in modes:
        if mode not in MODES:
            raise UsageError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    for precision in precisions:
        if precision not in PRECISIONS:
            raise UsageError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if warmup < 0 or iters < 1 or min(batches, default=0) < 1:
        raise UsageError("need --warmup >= 0, --iters >= 1 and batch sizes >= 1")
    for name in names:
        pair = build_pair(name, regionvit_repo)
        pair.ours.to(device)
        pair.theirs.to(device)
        for precision in precisions:
            for batch in batches:
                for mode in modes:
                    yield measure_row(pair, mode, batch, precision, device, warmup, iters)
        del pair
        release_free_memory()


def comparison_table(rows: Sequence[ComparisonRow], device: torch.device) -> str:
    """The rows as a text table; times in ms per iteration (CPU ms on a CPU)."""
    unit = "ms" if device.type == "cuda" else "CPU ms"
    header = ["model", "theirs", "mode", "batch", "precision", f"ours {unit}", f"theirs {unit}", "ratio",
              "ours peak MiB", "theirs peak MiB", "max |diff|"]
    return format_table(header, [row.cells() for row in rows])


def markdown_table(rows: Sequence[ComparisonRow], device: torch.device) -> str:
    """The rows as a markdown table (docs/performance.md)."""
    unit = "ms" if device.type == "cuda" else "CPU ms"
    header = ["model", "theirs", "mode", "batch", "precision", f"ours {unit}", f"theirs {unit}", "ratio",
              "ours peak MiB", "theirs peak MiB", "max abs diff"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


__all__ = ["MODES", "OFFICIAL_REGIONVIT", "PAIRS", "PRECISIONS", "ComparisonRow", "Pair", "available_pairs",
           "build_pair", "compare", "comparison_table", "import_official_regionvit", "markdown_table",
           "max_logit_difference", "measure_row"]
