"""Write a copy of a video with a caption (e.g. the top-1 class and its probability) on every frame.

Frames are read through ``videovit.data.read_frames`` (the same exact decoder the datasets use), a
chunk at a time, so long videos are never held in memory whole. Outputs: ``.mp4`` (H.264 yuv420p
through PyAV, at the source frame rate) or ``.gif`` (Pillow). yuv420p needs even sides, so an odd
last row or column is dropped in MP4 output.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from videovit.data.decoding import probe_video, read_frames

OUTPUT_SUFFIXES = (".mp4", ".gif")
FRAMES_PER_CHUNK = 32
MIN_FONT_SIZE = 6
_TEXT_COLOUR = (255, 255, 255)
_BOX_COLOUR = (0, 0, 0)


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


def iter_frames(path: str | Path, num_frames: int, backend: str | None = None) -> Iterator[np.ndarray]:
    """Every frame of the video in display order, decoded ``FRAMES_PER_CHUNK`` at a time."""
    for start in range(0, num_frames, FRAMES_PER_CHUNK):
        yield from read_frames(path, range(start, min(start + FRAMES_PER_CHUNK, num_frames)), backend)


def write_annotated_video(source: str | Path, output: str | Path, text: str,
                          backend: str | None = None) -> int:
    """Copy ``source`` to ``output`` (.mp4 or .gif) with ``text`` drawn on every frame; frames written."""
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise ValueError(f"cannot write {output}: the annotated video must end in {' or '.join(OUTPUT_SUFFIXES)}")
    info = probe_video(source, backend)
    if info.num_frames < 1:
        raise ValueError(f"{source} has no decodable frame to annotate")
    output.parent.mkdir(parents=True, exist_ok=True)
    frames = (caption_frame(frame, text) for frame in iter_frames(source, info.num_frames, backend))
    fps = info.fps if info.fps > 0 else 25.0
    writer = _write_mp4 if suffix == ".mp4" else _write_gif
    writer(frames, output, fps)
    return info.num_frames


def _write_mp4(frames: Iterator[np.ndarray], path: Path, fps: float) -> None:
    """H.264 yuv420p MP4 at ``fps`` (rounded to 1/1000 s), even-sided."""
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.pix_fmt = "yuv420p"
        for index, frame in enumerate(frames):
            frame = frame[:frame.shape[0] // 2 * 2, :frame.shape[1] // 2 * 2]
            if index == 0:
                stream.height, stream.width = frame.shape[:2]
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            picture.pts = index
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))


def _write_gif(frames: Iterator[np.ndarray], path: Path, fps: float) -> None:
    """Looping GIF at ``fps`` (GIF stores frame durations in whole milliseconds)."""
    images = (Image.fromarray(frame) for frame in frames)
    first = next(images)
    first.save(path, save_all=True, append_images=images, duration=round(1000 / fps), loop=0)


__all__ = ["OUTPUT_SUFFIXES", "caption_frame", "iter_frames", "write_annotated_video"]
