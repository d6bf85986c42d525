"""Data-loading speed: the bare decoder, this project's dataset and pytorchvideo, on the same videos.

Every row reads a centred uniform 8-frame clip (one frame in the middle of each of 8 segments) of
every listed video, in one process:

- ``read_frames``: the bare decoding call with precomputed indices (the video probed beforehand);
- ``VideoDataset``: one validation sample (probe, sample, decode, resize to 256, crop 224, normalise);
- ``pytorchvideo``: ``pytorchvideo.data.LabeledVideoDataset`` with a whole-video clip sampler (it
  decodes every frame of the clip) and a plain function picking the same frame indices
  (``pytorchvideo.transforms`` does not import with torchvision >= 0.28, so none of its transforms).

Times are wall-clock (ms/clip, its median, clips/s) and the CPU time this process used per clip
(decoder threads included; steadier than wall time on a shared machine). "identical" compares the
frames with ``read_frames`` on the same indices (pyav's for our backends; the same backend's for
pytorchvideo). pytorchvideo's decord wrapper switches decord's global bridge to torch on import,
which breaks ``.asnumpy()`` users in the same process: it runs last and the bridge is reset after.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from videovit.data.datasets import ClipSampling, VideoDataset
from videovit.data.decoding import probe_video, read_frames
from videovit.data.lists import read_list
from videovit.data.sampling import uniform_indices
from videovit.data.transforms import IMAGENET_MEAN, IMAGENET_STD, ViewTransform
from videovit.utils import tables



@dataclass
class BenchmarkRow:
    """Timings of one method/backend over all videos, and whether its frames matched the reference."""

    method: str
    backend: str
    seconds: list[float] = field(default_factory=list)  # wall-clock time per clip
    cpu_seconds: list[float] = field(default_factory=list)  # CPU time of this process per clip
    identical: str = "-"

    def add(self, timing: tuple[float, float]) -> None:
        """Record one clip's (wall, CPU) seconds."""
        self.seconds.append(timing[0])
        self.cpu_seconds.append(timing[1])

    @property
    def clips(self) -> int:
        """Clips timed."""
        return len(self.seconds)

    def cells(self) -> list[str]:
        """Table cells: method, backend, clips, mean/median wall ms per clip, clips/s, CPU ms, identical."""
        total = sum(self.seconds)
        return [self.method, self.backend, str(self.clips), f"{1000 * total / self.clips:.1f}",
                f"{1000 * statistics.median(self.seconds):.1f}", f"{self.clips / total:.2f}",
                f"{1000 * sum(self.cpu_seconds) / self.clips:.1f}", self.identical]


def _timed(function: Callable[[], Any]) -> tuple[tuple[float, float], Any]:
    """((wall seconds, CPU seconds of this process), result) of ``function()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return (time.perf_counter() - wall, time.process_time() - cpu), result


def _identity(frames: list[np.ndarray], reference: list[np.ndarray]) -> str:
    """"yes", or how many clips differ and the largest pixel difference."""
    differing = [int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()) if a.shape == b.shape else -1
                 for a, b in zip(frames, reference) if a.shape != b.shape or not np.array_equal(a, b)]
    if not differing:
        return "yes"
    shapes = " (shape mismatch)" if -1 in differing else ""
    return f"no: {len(differing)}/{len(frames)} clips, max diff {max(differing)}{shapes}"


class _WholeVideoSampler:
    """pytorchvideo clip sampler returning one clip that spans the whole video."""

    def __call__(self, last_clip_time: float, video_duration: Fraction, annotation: dict) -> Any:
        from pytorchvideo.data.clip_sampling import ClipInfo

        return ClipInfo(Fraction(0), video_duration, 0, 0, True)

    def reset(self) -> None:
        """Nothing to reset between videos."""


class _PickFrames:
    """pytorchvideo transform: the uniform test indices of the decoded clip, as uint8 (T, H, W, 3)."""

    def __init__(self, num_frames: int) -> None:
        self.num_frames = num_frames

    def __call__(self, sample: dict) -> dict:
        video = sample["video"]  # float (C, N, H, W) holding 0..255
        indices = uniform_indices(video.shape[1], self.num_frames, train=False)
        frames = video[:, indices].permute(1, 2, 3, 0).round().to(torch.uint8).numpy()
        return {"frames": frames, "indices": indices, "video_index": sample["video_index"]}


def _pytorchvideo_row(paths: list[str], decoder: str, num_frames: int) -> tuple[BenchmarkRow, list[dict]]:
    from pytorchvideo.data import LabeledVideoDataset
    from torch.utils.data import SequentialSampler

    dataset = LabeledVideoDataset([(path, {}) for path in paths], _WholeVideoSampler(), SequentialSampler,
                                  _PickFrames(num_frames), decode_audio=False, decoder=decoder)
    row, samples = BenchmarkRow("pytorchvideo", decoder), []
    iterator = iter(dataset)
    for _ in paths:
        timing, sample = _timed(lambda: next(iterator))
        row.add(timing)
        samples.append(sample)
    return row, samples


def benchmark_list(list_file: str | Path, classes_file: str | Path, path_prefix: str | Path = "",
                   separator: str = " ", num_frames: int = 8, backends: tuple[str, ...] = ("pyav", "decord", "auto"),
                   pytorchvideo_decoders: tuple[str, ...] = ("pyav", "decord"),
                   max_videos: int | None = None) -> list[BenchmarkRow]:
    """Time every method on the (first ``max_videos``) videos of ``list_file``; see the module docstring."""
    entries = read_list(list_file, separator)[:max_videos]
    paths = [str(Path(path_prefix) / entry.path) for entry in entries]
    indices = [uniform_indices(probe_video(path, "pyav").num_frames, num_frames, train=False) for path in paths]
    rows, decoded = [], {}
    for backend in backends:
        row = BenchmarkRow("read_frames", backend)
        decoded[backend] = []
        for path, wanted in zip(paths, indices):
            timing, frames = _timed(lambda: read_frames(path, wanted, backend))
            row.add(timing)
            decoded[backend].append(frames)
        rows.append(row)
    reference = decoded.get("pyav") or [read_frames(p, i, "pyav") for p, i in zip(paths, indices)]
    for row in rows:
        row.identical = _identity(decoded[row.backend], reference)
    view = ViewTransform(256, 224, 1, IMAGENET_MEAN, IMAGENET_STD)
    for backend in backends:
        dataset = VideoDataset(list_file, classes_file, "val", ClipSampling("uniform", num_frames), view,
                               path_prefix, separator, backend=backend)
        row = BenchmarkRow("VideoDataset", backend)
        for index in range(len(paths)):
            row.add(_timed(lambda: dataset[index])[0])
        rows.append(row)
    pytorchvideo_results = []
    for decoder in sorted(pytorchvideo_decoders, key=lambda name: name == "decord"):  # decord last
        row, samples = _pytorchvideo_row(paths, decoder, num_frames)
        rows.append(row)
        pytorchvideo_results.append((row, samples))
    if "decord" in pytorchvideo_decoders:
        import decord

        decord.bridge.reset_bridge()
    for row, samples in pytorchvideo_results:
        ours = [read_frames(paths[s["video_index"]], s["indices"], row.backend) for s in samples]
        row.identical = _identity([s["frames"] for s in samples], ours)
    return rows


def format_table(rows: list[BenchmarkRow]) -> str:
    """A fixed-width text table of the rows."""
    header = ["method", "backend", "clips", "ms/clip", "median ms", "clips/s", "CPU ms/clip", "identical frames"]
    return tables.format_table(header, [row.cells() for row in rows])


__all__ = ["BenchmarkRow", "benchmark_list", "format_table"]
