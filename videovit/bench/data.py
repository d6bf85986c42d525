"""Data-loading speed: bare decoders, this project's loader and pytorchvideo, on the same videos.

Every row reads a centred uniform clip (one frame in the middle of each of T segments) of every
listed video, in one process:

- ``torchcodec (bare)``: torchcodec's ``VideoDecoder`` in exact seek mode, one FFmpeg thread,
  ``get_frames_at`` on the indices computed from its own frame count (the reference the loader is
  measured against, docs/data.md);
- ``read_frames``: the bare decoding call with precomputed indices (the video probed beforehand);
- ``loader``: what a DataLoader worker does per clip before the transforms (``load_clip_frames``:
  probe, sample, decode);
- ``VideoDataset``: one validation sample (the loader plus resize to 256, crop 224, normalise);
- ``pytorchvideo``: ``pytorchvideo.data.LabeledVideoDataset`` with a whole-video clip sampler (it
  decodes every frame of the clip) and a plain function picking the same frame indices
  (``pytorchvideo.transforms`` does not import with torchvision >= 0.28, so none of its
  transforms). It needs the ``bench`` extra: ``pip install -e '.[bench]'``.

Times are wall-clock (ms/clip, its median, clips/s) and the CPU time this process used per clip
(decoder threads included; steadier than wall time on a shared machine), also as clips per second
per core. "identical" compares the frames with PyAV's ``read_frames`` on the same indices (the
same backend's for pytorchvideo). pytorchvideo's decord wrapper switches decord's global bridge to
torch on import, which breaks ``.asnumpy()`` users in the same process: it runs last and the
bridge is reset after.
"""
from __future__ import annotations

import importlib.util
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from videovit.bench import tables
from videovit.data.datasets import ClipSampling, VideoDataset, VideoList, load_clip_frames
from videovit.data.decoding import backend_unavailable, probe_video, read_frames
from videovit.data.lists import read_list
from videovit.data.sampling import uniform_indices
from videovit.data.transforms import IMAGENET_MEAN, IMAGENET_STD, ViewTransform
from videovit.errors import MissingDependencyError

BARE_TORCHCODEC = "torchcodec (bare)"


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

    @property
    def cpu_ms_per_clip(self) -> float:
        """Mean CPU milliseconds per clip."""
        return 1000 * sum(self.cpu_seconds) / self.clips

    def cells(self) -> list[str]:
        """Table cells: method, backend, clips, wall ms (mean, median), clips/s, CPU ms, clips/s/core, identical."""
        total = sum(self.seconds)
        return [self.method, self.backend, str(self.clips), f"{1000 * total / self.clips:.1f}",
                f"{1000 * statistics.median(self.seconds):.1f}", f"{self.clips / total:.2f}",
                f"{self.cpu_ms_per_clip:.1f}", f"{1000 / self.cpu_ms_per_clip:.2f}", self.identical]


def _timed(function: Callable[[], Any]) -> tuple[tuple[float, float], Any]:
    """((wall seconds, CPU seconds of this process), result) of ``function()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return (time.perf_counter() - wall, time.process_time() - cpu), result


def _identity(frames: list[np.ndarray], reference: list[np.ndarray]) -> str:
    """"yes", or how many clips differ and the largest pixel difference."""
    differing = [int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()) if a.shape == b.shape else -1
                 for a, b in zip(frames, reference, strict=True) if a.shape != b.shape or not np.array_equal(a, b)]
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


def _bare_torchcodec(path: str, num_frames: int) -> np.ndarray:
    """A centred uniform clip read with torchcodec alone (exact mode, one thread), (T, H, W, 3) uint8."""
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(path, seek_mode="exact", num_ffmpeg_threads=1, dimension_order="NHWC")
    indices = uniform_indices(decoder.metadata.num_frames or 0, num_frames, train=False)
    return decoder.get_frames_at(indices=indices).data.numpy()


def _bare_by_index(paths: list[str], num_frames: int, i: int) -> np.ndarray:
    return _bare_torchcodec(paths[i], num_frames)


def _time_each(name: str, backend: str, paths: list[str], read: Callable[[int], Any],
               repeats: int) -> tuple[BenchmarkRow, list[Any]]:
    """Row of ``read(i)`` timed on every video ``repeats`` times, and the results of the first pass."""
    row, results = BenchmarkRow(name, backend), []
    for repeat in range(repeats):
        for i in range(len(paths)):
            timing, result = _timed(partial(read, i))
            row.add(timing)
            if repeat == 0:
                results.append(result)
    return row, results


def check_pytorchvideo(decoders: tuple[str, ...]) -> None:
    """MissingDependencyError when pytorchvideo rows are asked for but it is not installed."""
    if decoders and importlib.util.find_spec("pytorchvideo") is None:
        raise MissingDependencyError("the pytorchvideo rows need pytorchvideo: pip install -e '.[bench]' "
                                         "(or pass --pytorchvideo with no decoder to skip them)")


def benchmark_list(list_file: str | Path, classes_file: str | Path, path_prefix: str | Path = "",
                   separator: str = " ", num_frames: int = 8, backends: tuple[str, ...] = ("pyav", "auto"),
                   pytorchvideo_decoders: tuple[str, ...] = (), max_videos: int | None = None,
                   repeats: int = 1) -> list[BenchmarkRow]:
    """Time every method on the (first ``max_videos``) videos of ``list_file``; see the module docstring.

    A bare torchcodec row comes first whenever torchcodec can run here.
    """
    check_pytorchvideo(pytorchvideo_decoders)
    entries = read_list(list_file, separator)[:max_videos]
    paths = [str(Path(path_prefix) / entry.path) for entry in entries]
    indices = [uniform_indices(probe_video(path, "pyav").num_frames, num_frames, train=False) for path in paths]
    reference = [read_frames(path, wanted, "pyav") for path, wanted in zip(paths, indices, strict=True)]
    rows = []
    if backend_unavailable("torchcodec") is None:
        row, frames = _time_each(BARE_TORCHCODEC, "-", paths, partial(_bare_by_index, paths, num_frames), repeats)
        row.identical = _identity(frames, reference)
        rows.append(row)
    sampling = ClipSampling("uniform", num_frames)
    for backend in backends:
        def bare(i: int, backend: str = backend) -> np.ndarray:
            return read_frames(paths[i], indices[i], backend)

        def loader(i: int, backend: str = backend) -> np.ndarray:
            return load_clip_frames(paths[i], sampling, False, backend=backend)

        for name, read in (("read_frames", bare), ("loader", loader)):
            row, frames = _time_each(name, backend, paths, read, repeats)
            row.identical = _identity(frames, reference)
            rows.append(row)
    view = ViewTransform(256, 224, 1, IMAGENET_MEAN, IMAGENET_STD)
    listed = VideoList.read(list_file, classes_file, separator)
    for backend in backends:
        dataset = VideoDataset(listed, "val", sampling, view, path_prefix, backend=backend)
        rows.append(_time_each("VideoDataset", backend, paths, dataset.__getitem__, repeats)[0])
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
    header = ["method", "backend", "clips", "ms/clip", "median ms", "clips/s", "CPU ms/clip", "clips/s/core",
              "identical frames"]
    return tables.format_table(header, [row.cells() for row in rows])


__all__ = ["BARE_TORCHCODEC", "BenchmarkRow", "benchmark_list", "check_pytorchvideo",
           "format_table"]
