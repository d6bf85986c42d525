"""Write a copy of a video with a caption (e.g. the top-1 class and its probability) on every frame.

Frames are decoded once, front to back (``videovit.data.decoding.stream``), so long videos are never
held in memory whole, and the copy keeps the source's timing: every MP4 frame keeps its source
timestamp (variable frame rates included) and the copy plays as long as the source. Outputs:
``.mp4`` (H.264 yuv420p through PyAV; yuv420p needs even sides, so an odd last row or column is
dropped) or ``.gif`` (Pillow), scaled down to ``GIF_WIDTH`` pixels and ``GIF_FPS`` frames per
second by default: GIF is for sharing short clips, see docs/deployment.md.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from videovit.data.decoding import DEFAULT_BACKEND, probe_video
from videovit.data.decoding.stream import frame_times, stream_frames
from videovit.errors import DecodeError, UsageError
from videovit.prep.partial_files import written_whole

OUTPUT_SUFFIXES = (".mp4", ".gif")
MIN_FONT_SIZE = 6
GIF_WIDTH = 480          # pixels; a 720p GIF of a few seconds is tens of MB
GIF_FPS = 10.0           # GIF delays are whole centiseconds: 10 fps is exactly 10 cs per frame
MP4_TIME_BASE = Fraction(1, 90000)
_TEXT_COLOUR = (255, 255, 255)
_BOX_COLOUR = (0, 0, 0)

Caption = str | Callable[[float], str]


def caption_frame(frame: np.ndarray, text: str) -> np.ndarray:
    """``frame`` (H, W, 3) uint8 with ``text`` in white on a black band at the top-left corner.

    The font is 1/14 of the frame height, smaller when needed to fit the text in the width.
    """
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    height, width = frame.shape[:2]
    margin = max(2, height // 60)
    size = max(MIN_FONT_SIZE, height // 14)
    natural_width = draw.textlength(text, font=ImageFont.load_default(size=size))
    if natural_width > width - 2 * margin:
        size = max(MIN_FONT_SIZE, int(size * (width - 2 * margin) / natural_width))
    font = ImageFont.load_default(size=size)
    _, _, right, bottom = draw.textbbox((margin, margin), text, font=font)
    draw.rectangle((0, 0, right + margin, bottom + margin), fill=_BOX_COLOUR)
    draw.text((margin, margin), text, fill=_TEXT_COLOUR, font=font)
    return np.asarray(image)


def write_annotated_video(source: str | Path, output: str | Path, text: Caption,
                          backend: str = DEFAULT_BACKEND, gif_width: int = GIF_WIDTH,
                          gif_fps: float = GIF_FPS) -> int:
    """Copy ``source`` to ``output`` (.mp4 or .gif) with a caption on every frame; frames written.

    ``text`` is one caption, or a function of the frame's time in seconds (labels that change with
    sliding windows). ``backend`` only selects the probe that checks the file (frames are streamed
    with PyAV). GIFs are scaled to at most ``gif_width`` pixels wide and ``gif_fps`` frames per second.
    """
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise UsageError(f"cannot write {output}: the annotated video must end in {' or '.join(OUTPUT_SUFFIXES)}")
    if probe_video(source, backend).num_frames < 1:
        raise DecodeError(source, "no decodable frame to annotate")
    caption = text if callable(text) else (lambda _: text)
    times = frame_times(source)
    output.parent.mkdir(parents=True, exist_ok=True)
    frames = ((seconds, caption_frame(frame, caption(seconds))) for _, seconds, frame in stream_frames(source))
    with written_whole(output) as partial:  # an interrupted copy leaves no file that looks whole
        if suffix == ".mp4":
            return _write_mp4(frames, partial, times.fps, times.duration)
        return _write_gif(frames, partial, times.duration, gif_width, gif_fps)


def _write_mp4(frames: Iterator[tuple[float, np.ndarray]], path: Path, fps: float, duration: float) -> int:
    """H.264 yuv420p MP4, each frame at its source time and lasting until the next one (the last until
    ``duration``). No B-frames: decode order is display order, so the MP4's sample durations add up to
    the source's duration."""
    written = 0
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.pix_fmt = "yuv420p"
        stream.time_base = MP4_TIME_BASE
        stream.codec_context.time_base = MP4_TIME_BASE
        stream.codec_context.max_b_frames = 0
        pending: tuple[av.VideoFrame, int] | None = None      # a frame waits for the next one's time
        for seconds, frame in frames:
            frame = frame[:frame.shape[0] // 2 * 2, :frame.shape[1] // 2 * 2]
            if written == 0:
                stream.height, stream.width = frame.shape[:2]
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            pts = max(round(seconds / MP4_TIME_BASE), pending[1] + 1 if pending is not None else 0)
            if pending is not None:
                _encode(container, stream, *pending, pts)
            pending = (picture, pts)
            written += 1
        if pending is not None:
            _encode(container, stream, *pending, max(round(duration / MP4_TIME_BASE), pending[1] + 1))
        container.mux(stream.encode(None))
    return written


def _encode(container: av.container.OutputContainer, stream: av.video.stream.VideoStream,
            picture: av.VideoFrame, pts: int, end_pts: int) -> None:
    """Encode ``picture`` shown from ``pts`` until ``end_pts`` and mux what the encoder returns."""
    picture.time_base = MP4_TIME_BASE
    picture.pts = pts
    picture.duration = end_pts - pts
    container.mux(stream.encode(picture))


def gif_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """``(width, height)`` scaled down (never up) to at most ``max_width`` wide, aspect kept."""
    if width <= max_width:
        return width, height
    return max_width, max(1, round(height * max_width / width))


def _write_gif(frames: Iterator[tuple[float, np.ndarray]], path: Path, duration: float, max_width: int,
               fps: float) -> int:
    """Looping GIF at most ``fps`` frames per second: each frame shows from its source time snapped to
    the 1/fps grid (the first frame of each grid step is kept), the last until ``duration``."""
    def kept() -> Iterator[Image.Image]:
        pending: tuple[int, np.ndarray] | None = None
        for seconds, frame in frames:
            tick = int(np.floor(seconds * fps + 1e-6))
            if pending is not None and tick <= pending[0]:
                continue
            if pending is not None:
                yield _gif_frame(pending[1], max_width, (tick - pending[0]) / fps)
            pending = (tick, frame)
        if pending is not None:
            end_tick = max(round(duration * fps), pending[0] + 1)
            yield _gif_frame(pending[1], max_width, (end_tick - pending[0]) / fps)

    images = kept()
    first = next(images)
    rest = list(images)
    first.save(path, format="GIF", save_all=True, append_images=rest, loop=0, duration=[first.info["duration"]]
               + [image.info["duration"] for image in rest])
    return 1 + len(rest)


def _gif_frame(frame: np.ndarray, max_width: int, seconds: float) -> Image.Image:
    """A GIF frame: scaled to ``max_width`` and lasting ``seconds`` (whole milliseconds)."""
    image = Image.fromarray(frame)
    size = gif_size(image.width, image.height, max_width)
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    image.info["duration"] = round(1000 * seconds)
    return image


__all__ = ["Caption", "GIF_FPS", "GIF_WIDTH", "OUTPUT_SUFFIXES", "caption_frame", "gif_size",
           "write_annotated_video"]
