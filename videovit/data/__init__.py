"""Video data: frame-exact decoding, list files, sampling, the spatial pipeline and datasets.

The names load their module on first use (``videovit.lazy``), so reading a list file does not import torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from videovit.lazy import lazy_attributes

if TYPE_CHECKING:
    from videovit.data.datasets import VideoDataset, build_dataset, collate_clips, collate_views
    from videovit.data.decoding import VideoInfo, probe_video, read_frames
    from videovit.data.lists import read_classes, read_list

__getattr__, __dir__ = lazy_attributes(globals(), {
    "VideoDataset": "videovit.data.datasets", "build_dataset": "videovit.data.datasets",
    "collate_clips": "videovit.data.datasets", "collate_views": "videovit.data.datasets",
    "VideoInfo": "videovit.data.decoding", "probe_video": "videovit.data.decoding",
    "read_frames": "videovit.data.decoding", "read_classes": "videovit.data.lists", "read_list": "videovit.data.lists",
})

__all__ = ["VideoDataset", "VideoInfo", "build_dataset", "collate_clips", "collate_views", "probe_video",
           "read_classes", "read_frames", "read_list"]
