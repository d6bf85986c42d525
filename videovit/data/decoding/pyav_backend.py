"""PyAV reader: sequential decoding (exact everywhere), seeking only to verified restart points.

Frame i is the i-th frame FFmpeg outputs in display order when decoding from the start, skipping
the packets the demuxer marks corrupt; that is the ground truth every backend is tested against.
Decoding stops after the last wanted frame and only the returned frames are converted to RGB
(conversion costs about as much as decoding). A wanted frame the decoder flags as corrupt (damaged
or cut-off data, concealed by the decoder) raises DecodeError instead of being returned.

Seeking is used only when it is both exact and worth it: the stream has reliable, unique timestamps,
no edit-list discards, and exact restart points (H.264 IDR or VP9 key frames, see ``bitstream``)
that let the reader skip at least ``SEEK_MIN_SKIPPED_FRAMES`` frames. After a seek the first packet
must be the expected restart point and every decoded frame is named by its timestamp; if any check
fails the whole read is redone sequentially from the start.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from videovit.data.decoding.index import LARGE_FRAME_PIXELS, StreamIndex, VideoInfo, index_video, open_video
from videovit.errors import DecodeError

# A seek (demuxer seek, decoder flush, keyframe decode) costs about as much as decoding a few
# frames; with 16, 8x8 dense clips read 1.5-2x faster on clips with keyframes every 60 frames.
SEEK_MIN_SKIPPED_FRAMES = 16


class _SeekNotExact(Exception):
    """A seek did not land where the index says, or a frame's timestamp is not in the index."""


@dataclass
class _Run:
    """Wanted frames decoded in one pass, starting at a restart frame (None: continue from before)."""

    seek_to: int | None
    frames: list[int] = field(default_factory=list)


def _plan_runs(wanted: list[int], index: StreamIndex) -> list[_Run]:
    """Group the sorted ``wanted`` frames into runs, seeking wherever it skips enough frames."""
    runs: list[_Run] = []
    next_frame = 0  # display index the decoder would output next without seeking
    for frame in wanted:
        restart = index.restart_frame_at_or_before(frame)
        if restart - next_frame >= SEEK_MIN_SKIPPED_FRAMES:
            runs.append(_Run(seek_to=restart))
        elif not runs:
            runs.append(_Run(seek_to=None))
        runs[-1].frames.append(frame)
        next_frame = frame + 1
    return runs


def _can_seek(index: StreamIndex) -> bool:
    """Seeking is exact only with reliable timestamps, whole packets and known restart points."""
    return (
        index.frame_pts is not None
        and index.discarded_packets == 0
        and index.corrupt_packets == 0
        and len(index.restart_frames) > 1
    )


def _configure_threads(stream: av.video.stream.VideoStream) -> None:
    """Frame/slice threads pay from 720p up and cost more than they give on small frames."""
    if stream.codec_context.width * stream.codec_context.height >= LARGE_FRAME_PIXELS:
        stream.thread_type = "AUTO"


def _frames_from(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, start_pts: int | None
) -> Iterator[av.VideoFrame]:
    """Decoded frames from the start, or from the restart point with timestamp ``start_pts``."""
    if start_pts is not None:
        container.seek(start_pts, stream=stream, backward=True, any_frame=False)
    for count, packet in enumerate(container.demux(stream)):
        if count == 0 and start_pts is not None and (packet.pts != start_pts or not packet.is_keyframe):
            raise _SeekNotExact
        if not packet.is_corrupt:
            yield from packet.decode()


def _to_rgb(path: Path, frame: av.VideoFrame, position: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB pixels of a wanted frame; DecodeError if the decoder flagged it corrupt."""
    if frame.is_corrupt:
        raise DecodeError(path, f"frame {position} is corrupt (damaged or truncated data)")
    return frame.to_ndarray(format="rgb24")


def _decode_sequentially(path: Path, wanted: list[int]) -> dict[int, np.ndarray]:
    """Decode from the first frame up to the last wanted one, keeping the wanted frames."""
    wanted_set, last = set(wanted), wanted[-1]
    frames: dict[int, np.ndarray] = {}
    position = -1
    with open_video(path) as (container, stream):
        _configure_threads(stream)
        try:
            for position, frame in enumerate(_frames_from(container, stream, None)):
                if position in wanted_set:
                    frames[position] = _to_rgb(path, frame, position)
                if position == last:
                    return frames
        except av.FFmpegError as error:
            raise DecodeError(path, f"decoding failed after {position + 1} frames ({error})") from error
    raise DecodeError(path, f"frame {last} was asked but the video has only {position + 1} decodable frames")


def _decode_with_seeks(path: Path, runs: list[_Run], index: StreamIndex) -> dict[int, np.ndarray]:
    """Decode the runs, seeking to their restart frames and naming frames by their timestamps."""
    assert index.frame_pts is not None
    display_index = {pts: i for i, pts in enumerate(index.frame_pts)}
    frames: dict[int, np.ndarray] = {}
    with open_video(path) as (container, stream):
        _configure_threads(stream)
        decoded = None
        for run in runs:
            if run.seek_to is not None or decoded is None:
                start_pts = None if run.seek_to is None else index.frame_pts[run.seek_to]
                decoded = _frames_from(container, stream, start_pts)
            wanted, last = set(run.frames), run.frames[-1]
            for frame in decoded:
                position = None if frame.pts is None else display_index.get(frame.pts)
                if position is None:
                    raise _SeekNotExact
                if position in wanted:
                    frames[position] = _to_rgb(path, frame, position)
                if position >= last:
                    break
            if not wanted.issubset(frames):
                raise _SeekNotExact
    return frames


def read_with_pyav(path: Path, indices: Sequence[int], index: StreamIndex | None = None) -> np.ndarray:
    """Frames at ``indices`` (any order, repeats allowed) as (N, H, W, 3) uint8 RGB."""
    wanted = sorted(set(indices))
    index = index_video(path) if index is None else index
    if wanted[-1] >= index.info.num_frames:
        reason = f"frame {wanted[-1]} was asked but the video has {index.info.num_frames} frames"
        raise DecodeError(path, reason)
    runs = _plan_runs(wanted, index) if _can_seek(index) else []
    frames = None
    if any(run.seek_to is not None for run in runs):
        try:
            frames = _decode_with_seeks(path, runs, index)
        except (_SeekNotExact, av.FFmpegError):
            frames = None  # the sequential pass below gives the definitive answer
    if frames is None:
        frames = _decode_sequentially(path, wanted)
    return np.stack([frames[i] for i in indices])


def probe_with_pyav(path: Path) -> VideoInfo:
    """``VideoInfo`` from one demux pass (see ``index``)."""
    return index_video(path).info
