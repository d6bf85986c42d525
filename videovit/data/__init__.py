"""Video data: frame-exact decoding, the synthetic default dataset, lists, sampling and datasets."""
from __future__ import annotations

from videovit.data.datasets import VideoDataset, build_dataset, collate_clips, collate_views, worker_init_fn
from videovit.data.decoding import DecodeError, VideoInfo, probe_video, read_frames, set_default_backend
from videovit.data.lists import read_classes, read_list

__all__ = ["DecodeError", "VideoInfo", "probe_video", "read_frames", "set_default_backend",
           "VideoDataset", "build_dataset", "collate_clips", "collate_views", "worker_init_fn",
           "read_classes", "read_list"]
