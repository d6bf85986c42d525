"""Long videos: windows planned over real timestamps, each scored by the test protocol, frames streamed.

Real H.264 videos from tests/videos.py (every frame carries its index as a code), a tiny model saved
by the engine (tests/saved_models.py), and tools/demo.py --window end to end.
"""
from __future__ import annotations

import csv
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
from saved_models import CLASSES, save_checkpoint
from videos import frame_index_of, make_indexed_video

import videovit
from videovit.data import read_frames
from videovit.data.decoding.stream import frame_times, stream_frames
from videovit.data.transforms import build_view_transform
from videovit.deploy.classifier import VideoClassifier
from videovit.deploy.windows import Window, WindowScore, caption_at, plan_windows, window_frame_indices

REPO_ROOT = Path(__file__).resolve().parents[1]
FPS = 25


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint, a 4-second 25 fps video)."""
    root = tmp_path_factory.mktemp("windows")
    checkpoint, _ = save_checkpoint(root, "regionvit")
    return checkpoint, make_indexed_video(root / "long.mp4", 4 * FPS, size=(96, 64), fps=FPS)


def test_stream_frames_are_read_frames_with_source_times(setup) -> None:
    _, video = setup
    streamed = list(stream_frames(video))
    assert [index for index, _, _ in streamed] == list(range(4 * FPS))
    assert [frame_index_of(frame) for _, _, frame in streamed] == list(range(4 * FPS))
    assert np.array_equal(np.stack([f for _, _, f in streamed[30:34]]), read_frames(video, range(30, 34)))
    times = frame_times(video)
    assert np.allclose([t for _, t, _ in streamed], times.starts) and times.duration == pytest.approx(4.0)


def test_windows_cover_the_video_and_the_last_one_ends_with_it(setup) -> None:
    times = frame_times(setup[1])
    windows = plan_windows(times, window=1.5, stride=1.0)
    assert [(w.start, w.end) for w in windows] == [(0.0, 1.5), (1.0, 2.5), (2.0, 3.5), (2.5, 4.0)]
    assert [(w.first, w.count) for w in windows] == [(0, 38), (25, 38), (50, 38), (63, 37)]
    assert plan_windows(times, window=10, stride=5) == [Window(0.0, 4.0, 0, 100)]
    with pytest.raises(ValueError, match="positive"):
        plan_windows(times, window=0, stride=1)


def test_each_window_samples_its_own_frames_by_the_protocol(setup) -> None:
    checkpoint, video = setup
    cfg = videovit.from_pretrained(checkpoint).cfg
    views = window_frame_indices(cfg, Window(2.0, 3.5, 50, 38), FPS)
    assert len(views) == cfg.TEST.NUM_TEMPORAL_VIEWS and all(len(v) == cfg.DATA.NUM_FRAMES for v in views)
    # uniform test view k of 2: segment length 38 / 4 = 9.5, offset 9.5 * (k + 1) / 3
    assert views == [[53, 62, 72, 81], [56, 65, 75, 84]]


def test_a_window_spanning_the_whole_video_scores_like_the_whole_video(setup) -> None:
    checkpoint, video = setup
    classifier = VideoClassifier(videovit.from_pretrained(checkpoint))
    (whole,) = classifier.windows(video, window=60, stride=60)
    expected = classifier.predict([video]).scores.probs[0]
    assert np.allclose(whole.probs, expected, atol=1e-6)
    in_small_batches = VideoClassifier(videovit.from_pretrained(checkpoint, overrides=["TEST.BATCH_SIZE", "4"]))
    (split,) = in_small_batches.windows(video, window=60, stride=60)    # 6 views: batches of 4 and 2
    assert np.allclose(split.probs, expected, atol=1e-6)


def test_windowed_scores_are_the_protocol_views_of_each_window(setup) -> None:
    """A window scores like a video made of exactly its frames: its views' softmax, averaged."""
    checkpoint, video = setup
    model = videovit.from_pretrained(checkpoint)
    cfg = model.cfg
    progress = []
    scores = VideoClassifier(model).windows(video, window=1.5, stride=1.0,
                                            progress=lambda done, total: progress.append((done, total)))
    assert progress == [(i, 4) for i in range(5)]
    window = scores[2].window
    alone = window_frame_indices(cfg, Window(0.0, window.end - window.start, 0, window.count), FPS)
    assert [[i + window.first for i in view] for view in alone] == window_frame_indices(cfg, window, FPS)
    transform = build_view_transform(cfg, cfg.TEST.NUM_SPATIAL_CROPS)
    views = torch.stack([transform(read_frames(video, indices), crop)
                         for indices in window_frame_indices(cfg, window, FPS)
                         for crop in range(cfg.TEST.NUM_SPATIAL_CROPS)])
    with torch.no_grad():
        expected = torch.softmax(model(views), dim=1).mean(dim=0).numpy()
    assert np.allclose(scores[2].probs, expected, atol=1e-6)


def test_captions_follow_the_nearest_window() -> None:
    probs = [np.eye(len(CLASSES), dtype=np.float32)[i] for i in (0, 3)]
    scores = [WindowScore(Window(0, 2, 0, 50), probs[0]), WindowScore(Window(1.5, 3.5, 38, 50), probs[1])]
    caption = caption_at(scores, CLASSES)
    assert caption(0.2) == "class 0 100.0%" and caption(3.4) == "class 3 100.0%"


@pytest.mark.slow
def test_demo_window_writes_rows_timeline_and_an_annotated_copy(setup, tmp_path, capsys) -> None:
    checkpoint, video = setup
    main = runpy.run_path(str(REPO_ROOT / "tools" / "demo.py"))["main"]
    outputs = {"csv": tmp_path / "w.csv", "png": tmp_path / "t.png", "mp4": tmp_path / "a.mp4"}
    assert main(["--checkpoint", str(checkpoint), "--video", str(video), "--window", "1.5", "--stride", "1",
                 "--csv", str(outputs["csv"]), "--timeline", str(outputs["png"]), "--output", str(outputs["mp4"]),
                 "--top-k", "3"]) == 0
    captured = capsys.readouterr()
    assert "windows 4/4" in captured.err and "ETA" in captured.err
    with outputs["csv"].open() as stream:
        rows = list(csv.DictReader(stream))
    assert [(float(r["start"]), float(r["end"])) for r in rows] == [(0, 1.5), (1, 2.5), (2, 3.5), (2.5, 4)]
    assert all(r["pred_1"] in CLASSES and 0 <= float(r["prob_3"]) <= float(r["prob_1"]) <= 1 for r in rows)
    assert outputs["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert frame_times(outputs["mp4"]).duration == pytest.approx(4.0, abs=0.05)


def test_demo_window_options_need_window(setup, capsys) -> None:
    checkpoint, video = setup
    main = runpy.run_path(str(REPO_ROOT / "tools" / "demo.py"))["main"]
    with pytest.raises(SystemExit) as exit_info:
        main(["--checkpoint", str(checkpoint), "--video", str(video), "--csv", "x.csv"])
    assert exit_info.value.code == 2 and "go with --window" in capsys.readouterr().err
