"""Annotated copies keep the source's real time: constant and variable frame rate, MP4 and GIF.

The variable-frame-rate source is written with PyAV, every frame's pts set by hand (gaps of 20 to
200 ms), as phone recordings are; the copies are read back with PyAV and Pillow.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from videos import frame_index_of, indexed_frame, make_indexed_video

from videovit.data.decoding.stream import frame_times, stream_frames
from videovit.viz.annotate import GIF_FPS, GIF_WIDTH, gif_size, write_annotated_video

VFR_GAPS_MS = [40, 40, 200, 20, 20, 120, 40, 80, 200, 40] * 3   # 30 frames, 2.4 s


def make_vfr_video(path: Path, size: tuple[int, int] = (128, 96)) -> tuple[Path, list[float]]:
    """An H.264 MP4 whose frames last ``VFR_GAPS_MS``; (path, each frame's start in seconds)."""
    starts = np.concatenate([[0], np.cumsum(VFR_GAPS_MS)[:-1]]) / 1000
    with av.open(str(path), mode="w") as output:
        stream = output.add_stream("libx264", rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"preset": "veryfast", "crf": "18"}
        for index, start in enumerate(starts):
            frame = av.VideoFrame.from_ndarray(indexed_frame(index, size), format="rgb24").reformat(format="yuv420p")
            frame.pts = round(start * 1000)
            frame.time_base = Fraction(1, 1000)
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return path, starts.tolist()


def gif_durations(path: Path) -> tuple[list[int], tuple[int, int]]:
    """Per-frame durations (ms) and size of a GIF."""
    durations = []
    with Image.open(path) as image:
        size = image.size
        for index in range(image.n_frames):
            image.seek(index)
            durations.append(image.info["duration"])
    return durations, size


def test_the_vfr_source_really_has_variable_timestamps(tmp_path) -> None:
    video, starts = make_vfr_video(tmp_path / "vfr.mp4")
    times = frame_times(video)
    assert np.allclose(times.starts, starts, atol=1e-3)
    assert [frame_index_of(frame) for _, _, frame in stream_frames(video)] == list(range(len(starts)))


def test_mp4_copy_of_a_vfr_video_keeps_every_timestamp_and_the_duration(tmp_path) -> None:
    video, starts = make_vfr_video(tmp_path / "vfr.mp4")
    output = tmp_path / "annotated.mp4"
    assert write_annotated_video(video, output, lambda t: f"{t:.2f} s") == len(starts)
    copy = frame_times(output)
    assert np.allclose(copy.starts, starts, atol=1e-3)
    with av.open(str(output)) as container:   # within one source frame (40 ms) of the 2.4 s
        assert container.duration / 1e6 == pytest.approx(sum(VFR_GAPS_MS) / 1000, abs=0.04)


def test_gif_copy_lasts_as_long_as_the_source_at_the_gif_frame_rate(tmp_path) -> None:
    video, starts = make_vfr_video(tmp_path / "vfr.mp4")
    output = tmp_path / "annotated.gif"
    frames = write_annotated_video(video, output, "caption")
    durations, size = gif_durations(output)
    assert sum(durations) == sum(VFR_GAPS_MS)      # 2.4 s, on the 100 ms grid of 10 fps
    assert len(durations) == frames <= len(starts) and min(durations) >= 1000 / GIF_FPS
    assert size == (128, 96)


def test_gif_of_a_large_video_is_scaled_down_and_keeps_real_time(tmp_path) -> None:
    video = make_indexed_video(tmp_path / "large.mp4", 25, size=(960, 540), fps=25)
    output = tmp_path / "large.gif"
    write_annotated_video(video, output, "caption")
    durations, size = gif_durations(output)
    assert size == (GIF_WIDTH, 270) and sum(durations) == 1000 and len(durations) == 10
    assert output.stat().st_size < 2_000_000


def test_gif_size_scales_down_only() -> None:
    assert gif_size(1280, 720, 480) == (480, 270)
    assert gif_size(320, 240, 480) == (320, 240)
