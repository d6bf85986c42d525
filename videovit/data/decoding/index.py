"""One demux pass (no decoding) over a video stream: a trustworthy frame count and a seek map.

Header frame counts can be wrong or missing (docs/data.md, "Decoding"), so frames are counted from the
demuxed packets, one frame per packet, skipping empty packets, packets the container marks for
discarding (frames an MP4 edit list cuts off) and packets it marks corrupt (the cut-off last packet
of a truncated MP4 or AVI). Where the header declares a count too, the smaller
of the two is trusted: a truncated file keeps its header but loses packets, a header may promise a
frame that is not there. Demuxing only reads packet headers and copies compressed bytes, a few
milliseconds for a 10 s clip. The last file's index is kept (keyed by its path, size, modification
time and inode), so probing a video and then reading it demuxes it once.

The index is the proof that lets a seeking backend read a file exactly, so it may be stored, never
skipped: ``tools/prepare_videos.py`` writes each output's index beside it (``<video>.index.json``,
see ``save_index``), bound to the file's bytes by their size and BLAKE2b digest. ``index_video`` uses
a stored index only when the file still has exactly those bytes, and demuxes otherwise. Reading and
checking it costs a tenth of the demux pass on a prepared clip (docs/performance.md).
"""
from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from videovit.data.decoding.bitstream import h264_nal_length_size, is_h264_idr, is_vp9_key_frame
from videovit.data.decoding.errors import check_video_file
from videovit.errors import DecodeError

LARGE_FRAME_PIXELS = 1280 * 720  # from 720p up, multi-threaded decoding pays (docs/data.md, "Decoding")
INDEX_SUFFIX = ".index.json"  # a stored index sits beside its video: clip.mp4 -> clip.mp4.index.json
INDEX_FORMAT = "videovit-stream-index/1"


@dataclass(frozen=True)
class VideoInfo:
    """What a caller needs to sample frames: a trustworthy count, the rate and the format."""

    num_frames: int
    fps: float
    width: int
    height: int
    codec: str  # FFmpeg decoder name, e.g. "h264", "vp9"
    container: str  # FFmpeg demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"


@dataclass(frozen=True)
class StreamIndex:
    """A video's ``VideoInfo`` plus the facts backends need to decide how to read it exactly."""

    info: VideoInfo
    header_frames: int  # count declared by the container (0 = none declared)
    packet_frames: int  # frames counted from the demuxed packets
    frame_pts: tuple[int, ...] | None  # pts of frame i in display order; None if pts are missing or repeat
    restart_frames: tuple[int, ...]  # ascending display indices of the exact restart points (keyframes)
    all_keyframes_restart: bool  # every keyframe the container flags is an exact restart point
    discarded_packets: int  # packets dropped by an edit list
    corrupt_packets: int  # packets the demuxer could not read whole (truncated file)

    def seek_refusal(self, backend: str, exact_formats: Collection[tuple[str, str]]) -> str | None:
        """Why a seeking ``backend`` exact only on ``exact_formats`` (container, codec) and on whole
        packets with true restart points cannot be trusted on this video, or None when it can."""
        if (self.info.container, self.info.codec) not in exact_formats:
            return f"{backend} is not frame-exact for {self.info.codec} in {self.info.container!r}"
        if not self.all_keyframes_restart:
            return "some keyframes are not exact restart points (open GOP or recovery points)"
        if self.corrupt_packets:
            return f"{self.corrupt_packets} packets are damaged (truncated file?)"
        return None

    def restart_frame_at_or_before(self, frame: int) -> int:
        """Display index of the last exact restart point at or before ``frame`` (0 when none)."""
        position = bisect.bisect_right(self.restart_frames, frame)
        return self.restart_frames[position - 1] if position else 0


@contextmanager
def open_video(path: str | Path) -> Iterator[tuple[av.container.InputContainer, av.video.stream.VideoStream]]:
    """Open ``path`` with PyAV and yield (container, first video stream); errors become DecodeError."""
    path = check_video_file(path)
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, UnicodeDecodeError) as error:
        raise DecodeError(path, f"FFmpeg cannot open it ({error})") from error
    try:
        if not container.streams.video:
            raise DecodeError(path, "the file has no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None or stream.codec_context.name is None:
            raise DecodeError(path, "unsupported video codec (no FFmpeg decoder)")
        yield container, stream
    finally:
        container.close()


def _restart_check(stream: av.video.stream.VideoStream) -> Callable[[bytes], bool] | None:
    """Function telling whether a keyframe packet is an exact restart point (None: unknown codec)."""
    codec = stream.codec_context.name
    if codec == "h264":
        length_size = h264_nal_length_size(stream.codec_context.extradata)
        return lambda data: is_h264_idr(data, length_size)
    if codec == "vp9":
        return is_vp9_key_frame
    return None


def _frames_per_second(stream: av.video.stream.VideoStream, pts: list[int]) -> float:
    """Declared average rate, else FFmpeg's guess, else the rate implied by the frame timestamps."""
    rate = stream.average_rate or stream.guessed_rate
    if rate:
        return float(rate)
    if len(pts) > 1 and stream.time_base and pts[-1] > pts[0]:
        return float((len(pts) - 1) / ((pts[-1] - pts[0]) * Fraction(stream.time_base)))
    return 0.0


def _display_indices(pts: list[int], frame_pts: tuple[int, ...] | None) -> tuple[int, ...]:
    """Display indices of the frames with timestamps ``pts`` (none when timestamps are unreliable)."""
    if frame_pts is None:
        return ()
    position = {value: i for i, value in enumerate(frame_pts)}
    return tuple(sorted(position[value] for value in pts))


_last_index: tuple[tuple[str, int, int, int], StreamIndex] | None = None


def index_video(path: str | Path) -> StreamIndex:
    """The ``StreamIndex`` of the first video stream of ``path``: the last file's again, the one stored
    beside the file when it was made for these very bytes, or one demux pass."""
    global _last_index
    status = check_video_file(path).stat()
    key = (str(path), status.st_size, status.st_mtime_ns, status.st_ino)
    if _last_index is not None and _last_index[0] == key:
        return _last_index[1]
    index = stored_index(path)
    if index is None:
        index = _demux_index(path)
    _last_index = (key, index)
    return index


def index_file(path: str | Path) -> Path:
    """Where the stored index of the video ``path`` lives."""
    path = Path(path)
    return path.with_name(path.name + INDEX_SUFFIX)


def _content_digest(path: str | Path) -> tuple[int, str]:
    """(size, BLAKE2b-128 hex digest) of the file's bytes."""
    digest, size = hashlib.blake2b(digest_size=16), 0
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def save_index(path: str | Path, index: StreamIndex) -> Path:
    """Store ``index`` (the video ``path``'s, from ``index_video``) beside it, bound to the file's bytes.

    Written under a temporary name and renamed, so a reader never sees half a file."""
    size, digest = _content_digest(path)
    record = {"format": INDEX_FORMAT, "size": size, "blake2b": digest, "index": dataclasses.asdict(index)}
    target = index_file(path)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(record, separators=(",", ":")))
    os.replace(partial, target)
    return target


def stored_index(path: str | Path) -> StreamIndex | None:
    """The index stored beside ``path`` when it was made for the bytes the file holds now, else None
    (no stored index, another format, a damaged record or a file that changed since)."""
    try:
        record = json.loads(index_file(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != INDEX_FORMAT:
        return None
    if (record.get("size"), record.get("blake2b")) != _content_digest(path):
        return None
    try:
        return _index_from_record(record["index"])
    except (KeyError, TypeError, ValueError):
        return None


def _index_from_record(fields: dict[str, Any]) -> StreamIndex:
    """The ``StreamIndex`` that ``dataclasses.asdict`` turned into ``fields`` (JSON lists back to tuples)."""
    frame_pts = fields["frame_pts"]
    return StreamIndex(
        info=VideoInfo(**fields["info"]),
        header_frames=int(fields["header_frames"]),
        packet_frames=int(fields["packet_frames"]),
        frame_pts=None if frame_pts is None else tuple(int(value) for value in frame_pts),
        restart_frames=tuple(int(value) for value in fields["restart_frames"]),
        all_keyframes_restart=bool(fields["all_keyframes_restart"]),
        discarded_packets=int(fields["discarded_packets"]),
        corrupt_packets=int(fields["corrupt_packets"]),
    )


def _demux_index(path: str | Path) -> StreamIndex:
    """Demux the first video stream of ``path`` once and build its ``StreamIndex``."""
    with open_video(path) as (container, stream):
        is_restart = _restart_check(stream)
        pts: list[int | None] = []
        restart_pts: list[int] = []
        keyframes = discarded = corrupt = 0
        try:
            for packet in container.demux(stream):
                if not packet.size:
                    continue
                if packet.is_discard:
                    discarded += 1
                    continue
                if packet.is_corrupt:
                    corrupt += 1
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keyframes += 1
                    if is_restart is not None and packet.pts is not None and is_restart(bytes(packet)):
                        restart_pts.append(packet.pts)
        except av.FFmpegError as error:
            if not pts:
                raise DecodeError(path, f"no readable video packet ({error})") from error
        if not pts:
            raise DecodeError(path, "the video stream holds no frames")
        header_frames = max(int(stream.frames or 0), 0)
        num_frames = min(header_frames, len(pts)) if header_frames else len(pts)
        known_pts = sorted(p for p in pts if p is not None)
        frame_pts = tuple(known_pts) if len(set(known_pts)) == len(pts) else None
        restart_frames = _display_indices(restart_pts, frame_pts)
        info = VideoInfo(
            num_frames=num_frames,
            fps=_frames_per_second(stream, known_pts),
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            codec=stream.codec_context.name,
            container=container.format.name,
        )
    return StreamIndex(
        info=info,
        header_frames=header_frames,
        packet_frames=len(pts),
        frame_pts=frame_pts,
        restart_frames=restart_frames,
        all_keyframes_restart=is_restart is not None and len(restart_pts) == keyframes,
        discarded_packets=discarded,
        corrupt_packets=corrupt,
    )
