"""Map-style video datasets on list files or video paths, with explicit handling of broken videos (docs/data.md).

A sample is a dict: ``clip`` (float ``(C, T, H, W)``, or None for a failed test view), ``label``,
``video_index`` (line of the list), ``view_index`` (``temporal_view * num_crops + crop``; 0 outside
testing), ``path`` and ``failures`` (``(path, reason)`` pairs of videos that failed while making
this sample). Workers cannot update the main process's counters, so failures travel with samples.

- train / val: a video that fails to decode (DecodeError, timeout, I/O error) is replaced by
  another video, chosen from (seed, epoch, index, attempt) so that reruns pick the same one, up to
  ``max_decode_retries`` times. Validation is one centred view per video (clip-level accuracy).
- test: every video expands into ``num_temporal_views x num_crops`` views and a failed view is never
  replaced: its ``clip`` is None. ``collate_views`` drops such views from the batch and reports
  them in ``failed_video_index`` so the engine can exclude those videos and say how many it scored.
"""
from __future__ import annotations

import hashlib
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from videovit.data.decoding import DEFAULT_BACKEND, check_backend, probe_video, read_frames
from videovit.data.lists import SPLITS, UNLABELLED, ListEntry, read_classes, read_list
from videovit.data.sampling import SAMPLING_METHODS, sample_indices
from videovit.data.transforms import TrainTransform, ViewTransform, build_train_transform, build_view_transform
from videovit.errors import DataSetupError, DecodeError

DATASETS = ("kinetics", "ssv2")
Failure = tuple[str, str]


class DecodeTimeout(Exception):
    """A video took longer than DATA.DECODE_TIMEOUT seconds to decode."""


# What counts as a broken video (replaced in training, reported in testing); anything else is a bug.
DECODE_FAILURES = (DecodeError, DecodeTimeout, OSError)


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise DecodeTimeout inside the block once ``seconds`` have passed (0 = no limit).

    Uses SIGALRM, so it works in the main thread of any process (DataLoader workers included) and
    is a no-op elsewhere. The alarm interrupts Python code; one long native call finishes first.
    """
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _expire(signum: int, frame: Any) -> None:
        raise DecodeTimeout(f"decoding took longer than {seconds:g} s (DATA.DECODE_TIMEOUT)")

    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class ClipSampling:
    """Temporal sampling settings: method ("uniform"/"dense"), frames, dense stride and its fps."""

    method: str = "uniform"
    num_frames: int = 8
    stride: int = 8
    target_fps: float = 30.0


def load_clip_frames(path: str | Path, sampling: ClipSampling, train: bool, view: int = 0, num_views: int = 1,
                     generator: torch.Generator | None = None, backend: str = DEFAULT_BACKEND,
                     timeout: float = 0.0) -> np.ndarray:
    """Probe ``path``, sample frame indices within its real frame count and decode them.

    Returns uint8 ``(T, H, W, 3)``. Raises DecodeError or DecodeTimeout for a broken or slow video.
    """
    with time_limit(timeout):
        info = probe_video(path, backend)
        if info.num_frames < 1:
            raise DecodeError(path, "no decodable frame")
        indices = sample_indices(sampling.method, info.num_frames, sampling.num_frames, train, view,
                                 num_views, generator, sampling.stride, info.fps, sampling.target_fps)
        return read_frames(path, indices, backend)


def failure_reason(error: BaseException) -> str:
    """A one-line reason for a failed video, for logs and reports."""
    if isinstance(error, DecodeError):
        return error.reason
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class VideoList:
    """The videos a dataset reads: their list entries (paths relative to the prefix; label
    ``UNLABELLED`` for videos given by path), the class names, where they come from (a list file, or
    "N video files"), and a sha256 that records which data a run used."""

    entries: list[ListEntry]
    class_names: list[str]
    source: str
    sha256: str

    @classmethod
    def read(cls, list_file: str | Path, classes_file: str | Path, separator: str = " ") -> VideoList:
        """A list file and its classes file, validated (labels within the classes)."""
        class_names = read_classes(classes_file)
        entries = read_list(list_file, separator, num_classes=len(class_names))
        return cls(entries, class_names, str(list_file), _files_sha256(Path(list_file), Path(classes_file)))

    @classmethod
    def of_paths(cls, paths: Sequence[str | Path], class_names: Sequence[str]) -> VideoList:
        """Unlabelled videos given by path (prediction): no list file is written or read."""
        entries = [ListEntry(str(path), UNLABELLED) for path in paths]
        digest = hashlib.sha256("\n".join(entry.path for entry in entries).encode()).hexdigest()
        return cls(entries, list(class_names), f"{len(entries)} video files", digest)


class VideoDataset(Dataset):
    """Clips of the videos of a ``VideoList``; see the module docstring for samples and failures."""

    def __init__(self, videos: VideoList, split: str, sampling: ClipSampling,
                 transform: TrainTransform | ViewTransform, path_prefix: str | Path = "",
                 num_temporal_views: int = 1, num_spatial_crops: int = 1,
                 max_decode_retries: int = 10, decode_timeout: float = 0.0, backend: str = "auto",
                 seed: int = 0) -> None:
        if split not in SPLITS:
            raise ValueError(f"split {split!r} must be one of {SPLITS}")
        if sampling.method not in SAMPLING_METHODS:
            raise ValueError(f"unknown sampling {sampling.method!r}; set DATA.SAMPLING to one of {SAMPLING_METHODS}")
        if (split == "train") != isinstance(transform, TrainTransform):
            raise ValueError(f"the {split} split needs a {'TrainTransform' if split == 'train' else 'ViewTransform'}")
        if split != "test" and num_temporal_views * num_spatial_crops != 1:
            raise ValueError("only the test split has several views per video")
        self.source, self.class_names, self.entries = videos.source, videos.class_names, videos.entries
        self.split, self.sampling, self.transform = split, sampling, transform
        self.path_prefix = Path(path_prefix)
        self.num_temporal_views, self.num_spatial_crops = num_temporal_views, num_spatial_crops
        self.max_decode_retries, self.decode_timeout = max_decode_retries, decode_timeout
        self.backend, self.seed, self.epoch = check_backend(backend), seed, 0
        self._list_hash = videos.sha256
        self._decoded: tuple[int, int, np.ndarray | Failure] | None = None  # test: last view's frames

    # ------------------------------------------------------------------ public helpers
    @property
    def num_videos(self) -> int:
        """Videos in the list (a test dataset has ``num_videos x views`` samples)."""
        return len(self.entries)

    @property
    def views_per_video(self) -> int:
        """Temporal views x spatial crops (1 outside testing)."""
        return self.num_temporal_views * self.num_spatial_crops

    def video_path(self, video_index: int) -> str:
        """Full path of a listed video (DATA.PATH_PREFIX joined to its list path)."""
        return str(self.path_prefix / self.entries[video_index].path)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's random draws; call before iterating (workers copy it at iterator start)."""
        self.epoch = epoch

    def list_hash(self) -> str:
        """sha256 of the videos' list (list and classes files as loaded, or the paths): which data a run used."""
        return self._list_hash

    def __len__(self) -> int:
        return self.num_videos * self.views_per_video

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range for {len(self)} samples")
        if self.split == "test":
            return self._test_view(index)
        return self._clip_with_replacement(index)

    # ------------------------------------------------------------------ train / val
    def _clip_with_replacement(self, index: int) -> dict[str, Any]:
        failures: list[Failure] = []
        video_index = index
        for attempt in range(self.max_decode_retries + 1):
            generator = torch.Generator().manual_seed(_sample_seed(self.seed, self.epoch, index, attempt))
            path = self.video_path(video_index)
            try:
                frames = load_clip_frames(path, self.sampling, self.split == "train", generator=generator,
                                          backend=self.backend, timeout=self.decode_timeout)
            except DECODE_FAILURES as error:
                failures.append((path, failure_reason(error)))
                video_index = self._replacement(video_index, generator)
                continue
            label = self.entries[video_index].label
            if isinstance(self.transform, TrainTransform):
                clip, label = self.transform(frames, label, generator)
            else:
                clip = self.transform(frames, 0)
            return make_sample(clip, label, video_index, 0, path, failures)
        raise RuntimeError(f"{len(failures)} videos in a row failed to decode, the last: {failures[-1]}; "
                           f"run tools/check_videos.py on {self.source} and drop the broken videos")

    def _replacement(self, video_index: int, generator: torch.Generator) -> int:
        """Another video than ``video_index``, drawn with ``generator``."""
        if self.num_videos < 2:
            raise RuntimeError(f"{self.video_path(video_index)} failed and {self.source} has no other video")
        draw = int(torch.randint(self.num_videos - 1, (1,), generator=generator))
        return draw + (draw >= video_index)

    # ------------------------------------------------------------------ test
    def _test_view(self, index: int) -> dict[str, Any]:
        video_index, view_index = divmod(index, self.views_per_video)
        temporal_view, crop = divmod(view_index, self.num_spatial_crops)
        path = self.video_path(video_index)
        frames = self._test_frames(video_index, temporal_view, path)
        label = self.entries[video_index].label
        if isinstance(frames, tuple):
            return make_sample(None, label, video_index, view_index, path, [frames])
        assert isinstance(self.transform, ViewTransform)  # checked in __init__: test splits take views
        return make_sample(self.transform(frames, crop), label, video_index, view_index, path, [])

    def _test_frames(self, video_index: int, temporal_view: int, path: str) -> np.ndarray | Failure:
        """Frames of one temporal view, or the video's failure; reused by the view's crops.

        A failed video stays failed for all its views without decoding it again (the engine drops
        the whole video anyway, and a hanging file would otherwise cost a timeout per view).
        """
        cached = self._decoded
        if cached is not None and cached[0] == video_index and (
                isinstance(cached[2], tuple) or cached[1] == temporal_view):
            return cached[2]
        try:
            result: np.ndarray | Failure = load_clip_frames(
                path, self.sampling, train=False, view=temporal_view, num_views=self.num_temporal_views,
                backend=self.backend, timeout=self.decode_timeout)
        except DECODE_FAILURES as error:
            result = (path, failure_reason(error))
        self._decoded = (video_index, temporal_view, result)
        return result


def make_sample(clip: torch.Tensor | None, label: int, video_index: int, view_index: int, path: str,
                failures: list[Failure]) -> dict[str, Any]:
    """One sample as the module docstring describes it (also for views made outside a dataset: windows)."""
    return {"clip": clip, "label": label, "video_index": video_index, "view_index": view_index,
            "path": path, "failures": failures}


def _files_sha256(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _sample_seed(*parts: int) -> int:
    """A 63-bit seed mixing ``parts`` (so neighbouring indices get unrelated random streams)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, np.uint64)[0]) & (2**63 - 1)


# ---------------------------------------------------------------------------- batching

def collate_clips(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch train/val samples: stacked ``clip`` (B, C, T, H, W), tensors of labels and indices,
    lists of paths, and ``failures`` (every replaced video of the batch, to log and count)."""
    return {
        "clip": torch.stack([sample["clip"] for sample in batch]),
        **_collate_fields(batch),
        "failures": [failure for sample in batch for failure in sample["failures"]],
    }


def collate_views(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch test views, dropping failed ones (``clip`` None).

    ``clip`` is None when every view of the batch failed. ``failed_video_index`` (tensor) lists the
    videos of the dropped views and ``failures`` their ``(path, reason)``, one entry per dropped view
    in the same order: the engine excludes those videos from the metrics and reports "scored N of M
    videos".
    """
    kept = [sample for sample in batch if sample["clip"] is not None]
    dropped = [sample for sample in batch if sample["clip"] is None]
    return {
        "clip": torch.stack([sample["clip"] for sample in kept]) if kept else None,
        **_collate_fields(kept),
        "failures": [failure for sample in dropped for failure in sample["failures"]],
        "failed_video_index": torch.tensor([sample["video_index"] for sample in dropped], dtype=torch.long),
    }


def _collate_fields(samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "label": torch.tensor([sample["label"] for sample in samples], dtype=torch.long),
        "video_index": torch.tensor([sample["video_index"] for sample in samples], dtype=torch.long),
        "view_index": torch.tensor([sample["view_index"] for sample in samples], dtype=torch.long),
        "path": [sample["path"] for sample in samples],
    }


# ---------------------------------------------------------------------------- from the config

def build_dataset(cfg, split: str) -> VideoDataset:
    """The dataset of ``split`` ("train", "val" or "test") described by ``cfg``.

    "test" reads the list named by TEST.SPLIT and expands every video into TEST.NUM_TEMPORAL_VIEWS x
    TEST.NUM_SPATIAL_CROPS views; "val" is one centred view per video.
    """
    data = cfg.DATA
    if split not in SPLITS:
        raise ValueError(f"split {split!r} must be one of {SPLITS}")
    if split == "test" and cfg.TEST.SPLIT not in ("test", "val"):
        raise ValueError(f"TEST.SPLIT {cfg.TEST.SPLIT!r} must be 'test' or 'val'")
    list_name = cfg.TEST.SPLIT if split == "test" else split
    data_dir = Path(data.PATH_TO_DATA_DIR)
    if not data_dir.is_dir():
        raise DataSetupError(f"DATA.PATH_TO_DATA_DIR {str(data_dir)!r} is not a folder; set it to the folder "
                                f"of the list files (build them with tools/build_data_lists.py)")
    videos = VideoList.read(data_dir / f"{list_name}.csv", data_dir / "classes.txt", data.PATH_LABEL_SEPARATOR)
    if len(videos.class_names) != cfg.MODEL.NUM_CLASSES:
        raise DataSetupError(f"{data_dir / 'classes.txt'} has {len(videos.class_names)} classes but "
                             f"MODEL.NUM_CLASSES is {cfg.MODEL.NUM_CLASSES}; set MODEL.NUM_CLASSES to match the list")
    dataset = dataset_of(cfg, videos, split, data.PATH_PREFIX)
    check_videos_reachable(dataset)
    return dataset


def dataset_of(cfg, videos: VideoList, split: str, path_prefix: str | Path = "") -> VideoDataset:
    """The dataset of ``videos`` read as ``split`` with ``cfg``'s sampling, transforms, views and decoding
    (the test split: TEST.NUM_TEMPORAL_VIEWS x TEST.NUM_SPATIAL_CROPS views per video, none replaced)."""
    data = cfg.DATA
    if data.DATASET not in DATASETS:
        raise ValueError(f"DATA.DATASET {data.DATASET!r} must be one of {DATASETS}")
    testing = split == "test"
    crops = cfg.TEST.NUM_SPATIAL_CROPS if testing else 1
    transform = build_train_transform(cfg, data.DATASET) if split == "train" else build_view_transform(cfg, crops)
    return VideoDataset(
        videos, split, ClipSampling(data.SAMPLING, data.NUM_FRAMES, data.SAMPLING_RATE, data.TARGET_FPS), transform,
        path_prefix=path_prefix, num_temporal_views=cfg.TEST.NUM_TEMPORAL_VIEWS if testing else 1,
        num_spatial_crops=crops, max_decode_retries=data.MAX_DECODE_RETRIES, decode_timeout=data.DECODE_TIMEOUT,
        backend=data.DECODING_BACKEND, seed=cfg.RNG_SEED)


def check_videos_reachable(dataset: VideoDataset, probe: int = 20) -> None:
    """DataSetupError when none of the first ``probe`` listed videos exists: DATA.PATH_PREFIX (or the
    list) is wrong, and every sample would fail. Some missing videos are handled per video instead."""
    paths = [dataset.video_path(i) for i in range(min(probe, dataset.num_videos))]
    if not any(Path(path).exists() for path in paths):
        raise DataSetupError(f"none of the first {len(paths)} videos of {dataset.source} exists (e.g. {paths[0]}); "
                         f"set DATA.PATH_PREFIX (now {str(dataset.path_prefix)!r}) to the folder the list's "
                         f"paths are relative to")


__all__ = [
    "ClipSampling", "DATASETS", "DecodeTimeout", "VideoDataset", "VideoList", "build_dataset", "check_videos_reachable",
    "collate_clips", "collate_views", "dataset_of", "failure_reason", "load_clip_frames", "make_sample", "time_limit",
]
