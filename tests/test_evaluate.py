"""Video-level test math on hand-made numbers: view averaging, de-duplication, metrics, outputs."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from videovit.errors import CheckFailedError
from videovit.evaluation.views import (
    ListedVideos,
    ViewScores,
    average_views,
    check_scored_share,
    mean_class_accuracy,
    pair_accuracy,
    topk_accuracy,
    video_metrics,
    write_test_outputs,
)


def _views(rows: list[tuple[int, int, list[float]]], failures=()) -> ViewScores:
    return ViewScores(np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.int64),
                      np.array([r[2] for r in rows], dtype=np.float32), list(failures))


def test_views_are_averaged_per_video_in_probability_space() -> None:
    views = _views([(0, 0, [0.6, 0.3, 0.1]), (0, 1, [0.2, 0.7, 0.1]),
                    (1, 0, [0.1, 0.1, 0.8]), (1, 1, [0.3, 0.3, 0.4])])
    scores = average_views(views, num_videos=2, views_per_video=2)
    assert np.allclose(scores.probs, [[0.4, 0.5, 0.1], [0.2, 0.2, 0.6]])
    assert scores.scored.tolist() == [True, True] and scores.failed == {}


def test_duplicate_views_from_sampler_padding_count_once() -> None:
    part_a = _views([(0, 0, [1.0, 0.0]), (0, 1, [0.0, 1.0])])
    part_b = _views([(1, 0, [0.2, 0.8]), (1, 1, [0.4, 0.6]), (0, 0, [1.0, 0.0])])  # (0, 0) again
    merged = ViewScores.concatenate([part_a, part_b], num_classes=2)
    assert len(merged.video_index) == 4
    scores = average_views(merged, num_videos=2, views_per_video=2)
    assert np.allclose(scores.probs, [[0.5, 0.5], [0.3, 0.7]])


def test_failed_and_incomplete_videos_are_excluded_and_counted() -> None:
    views = _views([(0, 0, [0.9, 0.1]), (0, 1, [0.8, 0.2]),
                    (1, 1, [0.1, 0.9]),                          # video 1: view 0 failed
                    (2, 0, [0.3, 0.7])],                         # video 2: view 1 never scored
                   failures=[(1, "b.mp4", "truncated file"), (3, "d.mp4", "no decodable frame")])
    scores = average_views(views, num_videos=4, views_per_video=2)
    assert scores.scored.tolist() == [True, False, False, False]
    assert scores.failed[1] == "truncated file"
    assert scores.failed[2] == "1 of 2 views scored"
    assert scores.failed[3] == "no decodable frame"
    assert np.isnan(scores.probs[1:]).all()
    metrics = video_metrics(scores, np.array([0, 1, 1, 0]))
    assert metrics["videos_scored"] == 1 and metrics["videos_total"] == 4
    assert metrics["top1"] == 100.0


def test_top1_top5_and_mean_class_accuracy_on_hand_made_numbers() -> None:
    probs = np.array([[0.50, 0.20, 0.10, 0.08, 0.07, 0.05],   # label 0: top-1 hit
                      [0.05, 0.10, 0.40, 0.20, 0.15, 0.10],   # label 0: rank 6 -> miss in top-5
                      [0.30, 0.25, 0.20, 0.10, 0.10, 0.05],   # label 0: top-1 hit
                      [0.10, 0.35, 0.30, 0.10, 0.10, 0.05]])  # label 2: rank 2 -> top-5 hit
    labels = np.array([0, 0, 0, 2])
    assert topk_accuracy(probs, labels, 1) == pytest.approx(50.0)
    assert topk_accuracy(probs, labels, 5) == pytest.approx(75.0)
    # class 0: 2 of 3 right, class 2: 0 of 1 -> (66.67 + 0) / 2
    assert mean_class_accuracy(probs, labels) == pytest.approx(100 * (2 / 3) / 2)


def test_top5_with_fewer_than_five_classes_is_all_hits() -> None:
    probs = np.array([[0.1, 0.9], [0.8, 0.2]])
    assert topk_accuracy(probs, np.array([0, 1]), 5) == 100.0


def test_outputs_hold_predictions_probabilities_and_metrics(tmp_path) -> None:
    views = _views([(0, 0, [0.7, 0.2, 0.1]), (2, 0, [0.1, 0.3, 0.6])], failures=[(1, "v1.mp4", "zero bytes")])
    scores = average_views(views, num_videos=3, views_per_video=1)
    videos = ListedVideos(["v0.mp4", "v1.mp4", "v2.mp4"], np.array([0, 1, 1]), ["walk", "run", "jump"])
    metrics = video_metrics(scores, videos.labels)
    write_test_outputs(tmp_path, videos, scores, metrics)

    rows = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    assert [r["path"] for r in rows] == ["v0.mp4", "v2.mp4"]
    assert rows[0]["pred_1"] == "walk" and float(rows[0]["prob_1"]) == pytest.approx(0.7)
    assert rows[1]["label_name"] == "run" and rows[1]["pred_1"] == "jump" and rows[1]["correct"] == "0"
    assert [rows[1][f"pred_{k}"] for k in (1, 2, 3)] == ["jump", "run", "walk"]
    failed = list(csv.DictReader((tmp_path / "failed_videos.csv").open()))
    assert failed == [{"video_index": "1", "path": "v1.mp4", "reason": "zero bytes"}]
    probs = np.load(tmp_path / "probabilities.npy")
    assert probs.shape == (3, 3) and np.isnan(probs[1]).all() and np.allclose(probs[2], [0.1, 0.3, 0.6])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["top1"] == pytest.approx(50.0) and saved["top5"] == 100.0
    assert saved["mean_class_acc"] == pytest.approx(50.0)
    assert (saved["videos_scored"], saved["videos_total"]) == (2, 3)


def test_pair_accuracy_compares_the_two_classes_of_a_pair_only() -> None:
    probs = np.array([[0.1, 0.5, 0.4],      # label 1: 0.5 > 0.4 (class 2) -> right within the pair
                      [0.6, 0.1, 0.3],      # label 1: 0.1 < 0.3 -> wrong, although class 0 wins overall
                      [0.7, 0.1, 0.2],      # label 2: 0.2 > 0.1 -> right, although top-1 is class 0
                      [0.2, 0.3, 0.5],      # label 0: not in the pair, ignored
                      [np.nan] * 3])        # label 2: unscored, ignored
    labels = np.array([1, 1, 2, 0, 2])
    assert pair_accuracy(probs, labels, (1, 2)) == pytest.approx(100 * 2 / 3)
    assert np.isnan(pair_accuracy(probs[:1], labels[:1], (0, 2)))


def _scores_with_failures(total: int, failed: int):
    scored = np.arange(failed, total, dtype=np.int64)
    views = ViewScores(scored, np.zeros_like(scored), np.full((len(scored), 2), 0.5, dtype=np.float32),
                       [(video, f"v{video}.mp4", "no such file") for video in range(failed)])
    return average_views(views, num_videos=total, views_per_video=1)


def test_more_failed_videos_than_the_allowed_share_fail_the_check() -> None:
    check_scored_share(_scores_with_failures(20, 1), 0.05, "test videos", "failed_videos.csv", "check X")  # 5 %
    with pytest.raises(CheckFailedError) as raised:
        check_scored_share(_scores_with_failures(14, 6), 0.05, "test videos", "out/failed_videos.csv", "check X")
    message = str(raised.value)
    assert message.startswith("only 8 of 14 test videos were scored: 6 (43%) failed")
    assert "TEST.MAX_FAILED_SHARE 0.05" in message and "out/failed_videos.csv (first: no such file)" in message
    assert "\n" not in message and raised.value.status == 1
    check_scored_share(_scores_with_failures(14, 6), 0.5, "test videos", "f.csv", "check X")   # allowed
    with pytest.raises(CheckFailedError, match="only 0 of 2"):              # nothing scored is never a result
        check_scored_share(_scores_with_failures(2, 2), 1.0, "videos", "f.csv", "check X")
