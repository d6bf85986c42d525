"""The video scanner (check_videos) on planted broken files, and a smoke run of the data benchmark."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from videos import (
    decoded_indices,
    make_avi_with_repeats,
    make_indexed_video,
    make_random_bytes_file,
    make_truncated_copy,
    make_zero_byte_file,
)

from videovit.bench.data import benchmark_list, format_table
from videovit.data.decoding import available_backends, backend_unavailable, probe_video, read_frames
from videovit.data.decoding.index import index_video
from videovit.data.lists import ListEntry, read_list
from videovit.prep.check import ScanSettings, check_list, check_video, write_problems

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, Path]:
    """A video root with two good videos, a short one and four broken files, and a list of them all."""
    root = tmp_path_factory.mktemp("planted")
    make_indexed_video(root / "good.mp4", 24, size=(64, 48))
    make_indexed_video(root / "good.webm", 24, codec="vp9", size=(64, 48))
    make_indexed_video(root / "short.mp4", 5, size=(64, 48))
    make_random_bytes_file(root / "corrupt.mp4", 20_000)
    make_truncated_copy(root / "good.mp4", root / "truncated.mp4", 0.6)
    make_zero_byte_file(root / "empty.avi")
    # index at the front (faststart): the header promises 120 frames, the cut file holds about 45
    make_indexed_video(root / "faststart.mp4", 120, size=(64, 48), muxer_options={"movflags": "faststart"})
    make_truncated_copy(root / "faststart.mp4", root / "cut_faststart.mp4", 0.4)
    names = ["good.mp4", "corrupt.mp4", "good.webm", "short.mp4", "truncated.mp4", "empty.avi", "missing.mp4",
             "cut_faststart.mp4"]
    list_file = root / "lists" / "train.csv"
    list_file.parent.mkdir()
    list_file.write_text("".join(f"{name} {i % 2}\n" for i, name in enumerate(names)))
    (root / "lists" / "classes.txt").write_text("x\ny\n")
    return root, list_file


EXPECTED = {
    "corrupt.mp4": "FFmpeg cannot open it",
    "short.mp4": "short: 5 decodable frames, fewer than 8",
    "truncated.mp4": "FFmpeg cannot open it",
    "empty.avi": "file is empty",
    "missing.mp4": "file not found",
    "cut_faststart.mp4": "truncated: the file has ",
}
GOOD = ["good.mp4", "good.webm"]


@pytest.mark.parametrize("workers", [1, 2])
def test_check_list_finds_every_planted_problem(planted, workers):
    root, list_file = planted
    report = check_list(list_file, root, settings=ScanSettings(min_frames=8, backend="pyav"), workers=workers)
    assert report.checked == 8
    found = {Path(path).name: reason for path, reason in report.problems}
    assert sorted(found) == sorted(EXPECTED)
    for name, reason in EXPECTED.items():
        assert found[name].startswith(reason), (name, found[name])
    decoded = int(found["cut_faststart.mp4"].split("; ")[1].split()[0])
    assert 10 < decoded < 120 and found["cut_faststart.mp4"].endswith(f"{decoded} frames of the 120 it declares decode")
    summary = report.summary(root / "problems.txt")
    assert "checked 8 videos" in summary and "2 ok, 4 undecodable, 1 truncated, 1 too short" in summary
    assert "details in" in summary and "remove the undecodable, truncated and too short videos" in summary
    assert [entry.path for entry in report.clean_entries()] == GOOD


def test_check_video_accepts_good_files_with_every_backend(planted):
    root, _ = planted
    for backend in available_backends():
        assert check_video(str(root / "good.mp4"), ScanSettings(8, backend, 60.0)) is None


def test_check_video_times_out(planted):
    root, _ = planted
    reason = check_video(str(root / "good.webm"), ScanSettings(8, "pyav", timeout=1e-4))
    assert reason is not None and reason.startswith("DecodeTimeout")


def test_problems_file_lists_path_and_reason(tmp_path):
    write_problems(tmp_path / "out" / "problems.txt", [("a b.mp4", "file is empty"), ("c.mp4", "short: 3")])
    assert (tmp_path / "out" / "problems.txt").read_text() == "a b.mp4\tfile is empty\nc.mp4\tshort: 3\n"


def test_a_faststart_file_with_fewer_frames_than_its_header_is_truncated_with_any_backend(planted):
    root, _ = planted
    for backend in ("pyav", "auto"):
        reason = check_video(str(root / "cut_faststart.mp4"), ScanSettings(8, backend, 60.0))
        assert reason is not None and reason.startswith(EXPECTED["cut_faststart.mp4"]), reason
    assert check_video(str(root / "faststart.mp4"), ScanSettings(8, "auto", 60.0)) is None


def _check_videos_tool():
    sys.path.insert(0, str(REPO_ROOT / "tools"))
    try:
        import check_videos
    finally:
        sys.path.pop(0)
    return check_videos


def test_check_videos_cli_writes_the_report_and_the_clean_list(planted, tmp_path, capsys):
    root, list_file = planted
    out, clean = tmp_path / "problems.txt", tmp_path / "clean" / "train.csv"
    status = _check_videos_tool().main(["--list", str(list_file), "--prefix", str(root), "--out", str(out),
                                        "--workers", "2", "--backend", "pyav", "--write-clean-list", str(clean)])
    assert status == 1  # broken videos found
    printed = capsys.readouterr().out
    assert "2 ok, 4 undecodable, 1 truncated, 1 too short" in printed
    assert sorted(Path(line.split("\t")[0]).name for line in out.read_text().splitlines()) == sorted(EXPECTED)
    assert read_list(clean) == [ListEntry("good.mp4", 0), ListEntry("good.webm", 0)]
    assert f"wrote 2 of 8 videos (the unusable ones left out) to {clean}" in printed
    # the clean list passes: status 0
    assert _check_videos_tool().main(["--list", str(clean), "--prefix", str(root), "--workers", "1",
                                      "--out", str(tmp_path / "none.txt")]) == 0
    assert "2 ok, 0 undecodable, 0 truncated, 0 too short" in capsys.readouterr().out


# ---------------------------------------------------------------------------- real containers

@pytest.fixture(scope="module")
def containers(tmp_path_factory) -> dict[str, Path]:
    """Complete videos in the containers users have (AVI with empty repeat chunks, MKV, MOV, OGG, MP4)."""
    root = tmp_path_factory.mktemp("containers")
    return {
        "cinepak.avi": make_avi_with_repeats(root / "cinepak.avi", 60, "cinepak", repeat_every=6),
        "vp9.avi": make_avi_with_repeats(root / "vp9.avi", 60, "vp9", repeat_every=12),
        "h264.mkv": make_indexed_video(root / "h264.mkv", 40, size=(64, 48)),
        "h264.mov": make_indexed_video(root / "h264.mov", 40, size=(64, 48), muxer_options={"movflags": "faststart"}),
        "vp8.ogg": make_indexed_video(root / "vp8.ogg", 40, codec="vp8", size=(64, 48)),
        "h264.mp4": make_indexed_video(root / "h264.mp4", 40, size=(64, 48)),
        "mpeg4.avi": make_indexed_video(root / "mpeg4.avi", 40, codec="mpeg4", size=(64, 48)),
    }


def test_complete_videos_in_every_container_are_ok_as_a_full_decode_says(containers):
    """An AVI whose header counts empty repeat chunks (a cinepak "444 frames, 68 decode", a VP9 "300 ...
    295") is complete: the check agrees with a full decode, never "truncated"."""
    for name, path in containers.items():
        assert check_video(str(path), ScanSettings(4, "pyav")) is None, name
    decoded = len(read_frames(containers["cinepak.avi"], range(probe_video(containers["cinepak.avi"]).num_frames)))
    assert (index_video(containers["cinepak.avi"]).header_frames, decoded) == (60, 10)
    assert decoded_indices(read_frames(containers["vp9.avi"], range(5), "pyav")) == [0, 12, 24, 36, 48]


@pytest.mark.parametrize("name", ["mpeg4.avi", "h264.mkv", "h264.mov"])
def test_a_cut_off_file_is_truncated_whatever_its_container(containers, tmp_path, name):
    cut = make_truncated_copy(containers[name], tmp_path / f"cut_{name}", 0.6)
    reason = check_video(str(cut), ScanSettings(4, "pyav"))
    assert reason is not None and reason.startswith(f"truncated: the file has {cut.stat().st_size} bytes where its "
                                                    f"container declares {containers[name].stat().st_size}"), reason


def test_a_backend_refusal_is_not_exact_readable_with_pyav_and_stays_in_the_clean_list(containers, tmp_path):
    backend = next((name for name in ("torchcodec", "decord") if backend_unavailable(name) is None), None)
    if backend is None:
        pytest.skip("neither torchcodec nor decord can run here")
    list_file = tmp_path / "train.csv"
    list_file.write_text("cinepak.avi 0\nh264.mp4 1\nmissing.mp4 0\n")
    prefix = containers["h264.mp4"].parent
    report = check_list(list_file, prefix, settings=ScanSettings(4, backend), workers=1)
    reasons = {Path(path).name: reason for path, reason in report.problems}
    assert reasons["cinepak.avi"] == (f"not exact with {backend}: {backend} is not frame-exact for cinepak in 'avi'; "
                                      f"readable with pyav")
    assert [entry.path for entry in report.clean_entries()] == ["cinepak.avi", "h264.mp4"]
    summary = report.summary(tmp_path / "problems.txt")
    assert f"1 ok, 1 undecodable, 0 truncated, 0 too short, 1 not exact with {backend} (readable with pyav)" in summary
    assert "train with DATA.DECODING_BACKEND auto" in summary
    assert "remove the undecodable" in summary  # missing.mp4 really cannot be read
    list_file.write_text("cinepak.avi 0\nh264.mp4 1\n")
    only_refused = check_list(list_file, prefix, settings=ScanSettings(4, backend), workers=1)
    assert "remove" not in only_refused.summary(tmp_path / "problems.txt") and not only_refused.unusable


@pytest.mark.parametrize("content, message", [
    (None, r"^error: .*train.csv does not exist"),
    ("good.mp4 0\ngood.webm\n", r"^error: .*train.csv:2: expected '<path> <label>'"),
    ("good.mp4 zero\n", r"^error: .*train.csv:1: label 'zero' is not an integer"),
])
def test_check_videos_cli_reports_a_bad_list_in_one_line(planted, tmp_path, capsys, content, message):
    import re

    root, _ = planted
    list_file = tmp_path / "train.csv"
    if content is not None:
        list_file.write_text(content)
    assert _check_videos_tool().main(["--list", str(list_file), "--prefix", str(root), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and len(err.strip().splitlines()) == 1 and "DATA.PATH_TO_DATA_DIR" not in err


def test_check_videos_cli_usage_errors_exit_2(planted, tmp_path, capsys):
    root, list_file = planted
    assert _check_videos_tool().main(["--list", str(list_file), "--prefix", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith("error: --prefix")
    with pytest.raises(SystemExit) as caught:
        _check_videos_tool().main(["--list", str(list_file), "--backend", "ffmpeg"])
    assert caught.value.code == 2


def test_benchmark_runs_on_a_tiny_list_and_prints_its_table(planted, tmp_path, capsys):
    root, _ = planted
    list_file = tmp_path / "val.csv"
    list_file.write_text("good.mp4 0\ngood.webm 1\n")
    backends = ("pyav", "auto")
    rows = benchmark_list(list_file, root / "lists" / "classes.txt", root, num_frames=4, backends=backends)
    print(format_table(rows))
    table = capsys.readouterr().out
    bare = [("torchcodec (bare)", "-")] if backend_unavailable("torchcodec") is None else []
    assert [(row.method, row.backend) for row in rows] == bare + [
        ("read_frames", "pyav"), ("loader", "pyav"), ("read_frames", "auto"), ("loader", "auto"),
        ("VideoDataset", "pyav"), ("VideoDataset", "auto")]
    assert all(row.clips == 2 for row in rows)
    assert all(row.identical == "yes" for row in rows if row.method != "VideoDataset")
    assert table.splitlines()[0].split()[:3] == ["method", "backend", "clips"]
    assert len(table.splitlines()) == 2 + len(rows)


def test_benchmark_pytorchvideo_rows_match_our_frames(planted, tmp_path):
    pytest.importorskip("pytorchvideo", reason="the pytorchvideo rows need the bench extra")
    root, _ = planted
    list_file = tmp_path / "val.csv"
    list_file.write_text("good.mp4 0\ngood.webm 1\n")
    rows = benchmark_list(list_file, root / "lists" / "classes.txt", root, num_frames=4, backends=("pyav",),
                          pytorchvideo_decoders=("pyav",))
    assert (rows[-1].method, rows[-1].backend, rows[-1].identical) == ("pytorchvideo", "pyav", "yes")


def test_benchmark_tool_asks_for_the_bench_extra_without_pytorchvideo(planted, tmp_path, monkeypatch, capsys):
    root, list_file = planted
    real_find_spec = importlib.util.find_spec  # pytorchvideo as if not installed
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "pytorchvideo" else real_find_spec(name, *args))
    sys.path.insert(0, str(REPO_ROOT / "tools"))
    try:
        import benchmark_data
    finally:
        sys.path.pop(0)
    assert benchmark_data.main(["--list", str(list_file), "--prefix", str(root), "--pytorchvideo", "pyav"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the pytorchvideo rows need pytorchvideo: pip install -e '.[bench]'")
