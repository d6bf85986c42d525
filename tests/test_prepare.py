"""prepare_videos: re-encoded copies are frame-exact, resized, keyframed every N frames, verified, resumable."""
from __future__ import annotations

import hashlib
import math
import socket
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from videos import decoded_indices, make_indexed_video, make_random_bytes_file, make_timed_video

from videovit.data.decoding import read_frames
from videovit.data.decoding.index import index_video
from videovit.data.decoding.stream import frame_times
from videovit.data.lists import ListEntry, read_list
from videovit.prep.partial_files import partial_path
from videovit.prep.prepare import (
    PreparedVideo,
    PrepareError,
    PrepareSettings,
    output_size,
    prepare_tree,
    prepare_video,
    verify_output,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
FRAMES, FPS = 60, 25


@pytest.fixture()
def source_tree(tmp_path: Path) -> Path:
    """An H.264 MP4 (long GOP), a VP9 WebM in a subfolder and a broken file."""
    src = tmp_path / "src"
    (src / "class b").mkdir(parents=True)
    make_indexed_video(src / "a.mp4", FRAMES, size=(128, 96), fps=FPS, gop=250)
    make_indexed_video(src / "class b" / "b.webm", FRAMES, codec="vp9", size=(128, 96), fps=FPS)
    make_random_bytes_file(src / "broken.mp4", 20_000)
    return src


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_output_size_keeps_the_aspect_with_even_sides():
    assert output_size(340, 256, 320) == (424, 320)  # 425 is odd: the nearest even size
    assert output_size(256, 340, 320) == (320, 424)
    assert output_size(640, 360, 320) == (568, 320)
    assert output_size(101, 77, 64) == (84, 64)
    with pytest.raises(ValueError, match="even"):
        PrepareSettings(short_side=321)
    with pytest.raises(ValueError, match="keyframe interval"):
        PrepareSettings(keyframe_interval=0)


def test_prepared_tree_is_exact_keyframed_verified_and_resumable(source_tree: Path, tmp_path: Path):
    before = _digest(source_tree)
    out = tmp_path / "out"
    settings = PrepareSettings(short_side=72, keyframe_interval=8, preset="veryfast")
    report = prepare_tree(source_tree, out, settings, workers=1)
    assert (report.prepared, report.skipped) == (2, 0)
    assert [Path(source).name for source, _ in report.failures] == ["broken.mp4"]
    assert "FFmpeg cannot open it" in report.failures[0][1]
    for relative in ("a.mp4", "class b/b.mp4"):
        index = index_video(out / relative)
        assert (index.info.width, index.info.height, index.info.fps, index.info.codec) == (96, 72, FPS, "h264")
        assert index.info.num_frames == index.header_frames == FRAMES
        assert index.restart_frames == tuple(range(0, FRAMES, 8)) and index.all_keyframes_restart
        assert decoded_indices(read_frames(out / relative, list(range(FRAMES)), "pyav")) == list(range(FRAMES))
    assert not list(out.rglob("*.partial")) and not (out / "broken.mp4").exists()
    assert _digest(source_tree) == before  # sources are only read

    (out / "class b" / "stale.mp4.partial").write_bytes(b"half")  # as an older run leaves it
    (out / "class b" / f"gone.mp4.{socket.gethostname().split('.')[0]}-{dead_pid()}.partial").write_bytes(b"half")
    running = partial_path(out / "running.mp4")  # a live writer's (this process stands in for a dying run)
    running.write_bytes(b"half")
    again = prepare_tree(source_tree, out, settings, workers=2)
    assert (again.prepared, again.skipped, len(again.failures)) == (0, 2, 1)
    assert list(out.rglob("*.partial")) == [running]


def dead_pid() -> int:
    """The pid of a process that has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


# Frame times of a phone clip: about 30 fps with jitter and one 185 ms gap.
PHONE_TIMES = np.concatenate([[0.0], np.cumsum(np.where(np.arange(59) == 30, 0.185,
                                                         1 / 30 + np.random.default_rng(0).normal(0, 0.002, 59)))])


@pytest.mark.parametrize("name, codec, time_base", [
    ("phone.mp4", "h264", Fraction(1, 90000)), ("phone.mov", "h264", Fraction(1, 600)),
    ("phone.mkv", "h264", Fraction(1, 1000)), ("phone.webm", "vp9", Fraction(1, 1000)),
])
def test_a_variable_frame_rate_keeps_every_frame_at_its_source_time(tmp_path: Path, name, codec, time_base):
    """The container's declared rate (30 in MKV and WebM, the average in MP4) need not match the output's
    average: the timing is checked frame by frame (the old rate comparison failed the MKV and WebM)."""
    source = make_timed_video(tmp_path / name, PHONE_TIMES, codec, time_base=time_base)
    source_starts = frame_times(source).starts
    prepared = prepare_video(source, tmp_path / "out.mp4", PrepareSettings(96, 8, preset="veryfast"))
    assert prepared.frames == len(PHONE_TIMES) and prepared.times is not None
    assert np.abs(frame_times(tmp_path / "out.mp4").starts - source_starts).max() < 0.001
    assert decoded_indices(read_frames(tmp_path / "out.mp4", list(range(prepared.frames)), "pyav")) == \
        list(range(len(PHONE_TIMES)))


def test_a_timing_that_does_not_survive_says_which_flag_retimes_it(tmp_path: Path):
    source = make_indexed_video(tmp_path / "src.mp4", 20, size=(64, 48), fps=FPS)
    prepared = prepare_video(source, tmp_path / "out.mp4", PrepareSettings(48, 5, preset="veryfast"))
    shifted = PreparedVideo(prepared.frames, prepared.fps, tuple(t + 0.01 for t in prepared.times or ()))
    with pytest.raises(PrepareError, match=r"start up to 10\.0 ms away from the source's; --fps 25 re-times"):
        verify_output(tmp_path / "out.mp4", shifted)


def test_a_forced_rate_shows_the_latest_source_frame_at_each_tick(tmp_path: Path):
    source = make_indexed_video(tmp_path / "src.mp4", FRAMES, size=(128, 96), fps=FPS)
    prepared = prepare_video(source, tmp_path / "out.mp4", PrepareSettings(96, 5, fps=10, preset="veryfast"))
    expected = [math.floor(k * FPS / 10) for k in range(FRAMES * 10 // FPS)]
    assert (prepared.frames, prepared.fps) == (len(expected), 10.0)
    assert decoded_indices(read_frames(tmp_path / "out.mp4", list(range(len(expected))), "pyav")) == expected


def _prepare_tool():
    sys.path.insert(0, str(REPO_ROOT / "tools"))
    try:
        import prepare_videos
    finally:
        sys.path.pop(0)
    return prepare_videos


def test_prepare_videos_cli_reports_failures_and_rewrites_lists(source_tree: Path, tmp_path: Path, capsys):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "train.csv").write_text("a.mp4 0\nclass b/b.webm 1\nbroken.mp4 1\n")
    (lists / "classes.txt").write_text("x\ny\n")
    out = tmp_path / "out"
    status = _prepare_tool().main(["--src", str(source_tree), "--out", str(out), "--short-side", "96",
                                   "--keyframe-interval", "16", "--preset", "veryfast", "--workers", "1",
                                   "--lists", str(lists / "train.csv")])
    assert status == 1  # broken.mp4 failed
    printed = capsys.readouterr().out
    assert "prepared 2 videos" in printed and "1 failed" in printed
    failures = (out / "prepare_failures.txt").read_text().splitlines()
    assert len(failures) == 1 and failures[0].startswith(str(source_tree / "broken.mp4") + "\t")
    assert read_list(out / "lists" / "train.csv") == [ListEntry("a.mp4", 0), ListEntry("class b/b.mp4", 1)]
    assert (out / "lists" / "classes.txt").read_text() == "x\ny\n"
    assert "wrote" in printed and "2 of 3 videos (1 without a prepared copy left out)" in printed


@pytest.mark.parametrize("arguments, message", [
    (["--out", "{src}/inside"], "must be separate folders"),
    (["--out", "{tmp}/out", "--lists", "{tmp}/none.csv"], "none.csv does not exist"),
    (["--out", "{tmp}/out", "--short-side", "33"], "even"),
])
def test_prepare_videos_cli_usage_errors_are_one_line(source_tree: Path, tmp_path: Path, capsys, arguments,
                                                       message):
    filled = [a.format(src=source_tree, tmp=tmp_path) for a in arguments]
    assert _prepare_tool().main(["--src", str(source_tree), *filled]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not (source_tree / "inside").exists()
