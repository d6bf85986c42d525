"""Plots from files in the engine's real formats: stats.jsonl written by StatsWriter, predictions.csv
written by write_test_outputs; hand-checked confusion and per-class numbers."""
from __future__ import annotations

import runpy
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from videovit.data.lists import write_classes
from videovit.engine.run_log import StatsWriter
from videovit.evaluation.views import ListedVideos, VideoScores, write_test_outputs
from videovit.viz.plots import (
    confusion_matrix,
    most_confused_classes,
    most_confused_pairs,
    per_class_accuracy,
    plot_confusion,
    plot_curves,
    plot_per_class,
    read_predictions,
    read_stats,
    row_normalised,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLASSES = ["walking", "running", "jumping", "swimming"]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG after checking its signature and IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def assert_drawn_png(path: Path, min_width: int, min_height: int) -> None:
    """A real picture: PNG signature, at least the given size, more than a blank canvas."""
    width, height = png_size(path)
    assert width >= min_width and height >= min_height and path.stat().st_size > 5_000
    pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    assert (pixels < 128).mean() > 0.005  # lines, bars, text: not an empty white canvas


@pytest.fixture
def stats_file(tmp_path) -> Path:
    """Two epochs of 4 steps, validation after each, the second epoch logged twice (a resume)."""
    writer = StatsWriter(tmp_path, active=True, tensorboard=False)
    for epoch, steps in ((1, range(1, 5)), (2, range(5, 9)), (2, range(5, 9))):
        for step in steps:
            writer.write("train", {"epoch": epoch, "step": (step - 1) % 4 + 1, "loss": 2.0 / step,
                                   "lr": 1e-3 * min(step, 4) / 4, "grad_norm": float("nan"),
                                   "clips_per_s": 10.0, "data_s": 0.1, "compute_s": 0.5, "eta_s": 5.0}, step)
        writer.write("train_epoch", {"epoch": epoch, "loss": 1.0 / epoch, "failed_videos": 0, "skipped_steps": 0,
                                     "clips_per_s": 10.0, "data_s": 0.1, "compute_s": 0.5}, 4 * epoch)
        writer.write("val", {"epoch": epoch, "clip_top1": 30.0 * epoch, "clip_top5": 60.0 + 10 * epoch,
                             "loss": 1.5 / epoch, "clips": 16}, 4 * epoch)
    writer.write("test", {"top1": 55.0, "top5": 90.0, "mean_class_acc": 50.0, "videos_scored": 8,
                          "videos_total": 8}, 8)
    writer.close()
    return tmp_path / "stats.jsonl"


@pytest.fixture
def predictions(tmp_path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """predictions.csv of 10 videos over 4 classes (class 3 has no video) and classes.txt."""
    true = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    predicted = np.array([0, 0, 0, 1, 1, 1, 3, 0, 2, 2])
    probs = np.full((len(true), len(CLASSES)), 0.1, dtype=np.float32)
    probs[np.arange(len(true)), predicted] = 0.7
    scores = VideoScores(probs, np.ones(len(true), dtype=bool), {})
    videos = ListedVideos([f"video_{i}.mp4" for i in range(len(true))], true, CLASSES)
    write_test_outputs(tmp_path, videos, scores, {"top1": 70.0})
    write_classes(tmp_path / "classes.txt", CLASSES)
    return tmp_path / "predictions.csv", tmp_path / "classes.txt", true, predicted


def test_read_stats_groups_by_kind_and_keeps_the_last_record_of_a_repeated_step(stats_file) -> None:
    stats = read_stats(stats_file)
    assert sorted(stats) == ["test", "train", "train_epoch", "val"]
    assert [r["global_step"] for r in stats["train"]] == list(range(1, 9))
    assert [r["clip_top1"] for r in stats["val"]] == [30.0, 60.0]


def test_curves_png(stats_file, tmp_path) -> None:
    out = plot_curves(read_stats(stats_file), tmp_path / "plots" / "curves.png")
    assert_drawn_png(out, 1200, 350)


def test_curves_without_training_records_is_an_error(tmp_path) -> None:
    StatsWriter(tmp_path, active=True, tensorboard=False).write("test", {"top1": 1.0}, 0)
    with pytest.raises(ValueError, match="no 'train' record"):
        plot_curves(read_stats(tmp_path / "stats.jsonl"), tmp_path / "curves.png")


def test_confusion_and_per_class_numbers_by_hand(predictions) -> None:
    path, classes, true, predicted = predictions
    read_true, read_predicted, names = read_predictions(path, CLASSES)
    assert names == CLASSES
    assert read_predictions(path)[2] == CLASSES[:3] + ["swimming"]   # names from the file: class 3 only predicted
    assert read_true.tolist() == true.tolist() and read_predicted.tolist() == predicted.tolist()
    counts = confusion_matrix(true, predicted, 4)
    assert counts.tolist() == [[3, 1, 0, 0], [0, 2, 0, 1], [1, 0, 2, 0], [0, 0, 0, 0]]
    normalised = row_normalised(counts)
    assert np.allclose(normalised[:3], [[0.75, 0.25, 0, 0], [0, 2 / 3, 0, 1 / 3], [1 / 3, 0, 2 / 3, 0]])
    assert np.isnan(normalised[3]).all()
    accuracy = per_class_accuracy(true, predicted, 4)
    assert np.allclose(accuracy[:3], [75.0, 200 / 3, 200 / 3]) and np.isnan(accuracy[3])


def test_confusion_and_per_class_pngs(predictions, tmp_path) -> None:
    path, _, _, _ = predictions
    true, predicted, _ = read_predictions(path, CLASSES)
    assert_drawn_png(plot_confusion(true, predicted, CLASSES, tmp_path / "cm.png"), 400, 400)
    out, accuracy = plot_per_class(true, predicted, CLASSES, tmp_path / "per_class.png")
    assert_drawn_png(out, 500, 150)
    assert np.allclose(accuracy[:3], [75.0, 200 / 3, 200 / 3])


def test_predictions_with_another_classes_file_are_refused(predictions) -> None:
    path, _, _, _ = predictions
    with pytest.raises(ValueError, match="do not match the classes file"):
        read_predictions(path, ["a", "b", "c", "d"])


@pytest.mark.slow
def test_plot_cli_draws_every_subcommand(stats_file, predictions, tmp_path, capsys) -> None:
    main = runpy.run_path(str(REPO_ROOT / "tools" / "plot.py"))["main"]
    path, classes, _, _ = predictions
    assert main(["curves", "--stats", str(stats_file), "--out", str(tmp_path / "a.png")]) == 0
    assert main(["confusion", "--predictions", str(path), "--classes", str(classes),
                 "--out", str(tmp_path / "b.png")]) == 0
    assert main(["per-class", "--predictions", str(path), "--classes", str(classes),
                 "--out", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert "worst classes: jumping 66.7%, running 66.7%, walking 75.0%" in out
    for name in "abc":
        png_size(tmp_path / f"{name}.png")
    assert main(["curves", "--stats", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "d.png")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_400_classes_show_the_most_confused_ones_and_list_the_pairs(tmp_path, capsys) -> None:
    """400 classes, class 2k taken for 2k+1 in half of its videos for 2k < 20, scattered errors elsewhere."""
    rng = np.random.default_rng(0)
    names = [f"action {i:03d}" for i in range(400)]
    true = np.repeat(np.arange(400), 10)
    predicted = true.copy()
    scattered = rng.random(len(true)) < 0.05
    predicted[scattered] = (true[scattered] + 200) % 400        # never into the first 20 classes' pairs
    for k in range(0, 20, 2):
        predicted[np.flatnonzero(true == k)[:5]] = k + 1
    probs = np.full((len(true), 400), 1e-4, dtype=np.float32)
    probs[np.arange(len(true)), predicted] = 0.9
    write_test_outputs(tmp_path, ListedVideos([f"v{i}.mp4" for i in range(len(true))], true, names),
                       VideoScores(probs, np.ones(len(true), dtype=bool), {}), {"top1": 0.0})

    pairs = most_confused_pairs(true, predicted, names)
    assert [(p.true, p.predicted, p.count) for p in pairs[:10]] == [
        (f"action {k:03d}", f"action {k + 1:03d}", 5) for k in range(0, 20, 2)]
    assert pairs[0].fraction_of_true == 0.5
    shown = most_confused_classes(true, predicted, 400, 30)
    assert set(range(20)) <= set(shown.tolist()), "every class of a frequent confusion is drawn"

    main = runpy.run_path(str(REPO_ROOT / "tools" / "plot.py"))["main"]
    predictions = str(tmp_path / "predictions.csv")
    assert main(["confusion", "--predictions", predictions, "--out", str(tmp_path / "cm.png")]) == 0
    assert "action 000 -> action 001: 5, 50.0%" in capsys.readouterr().out
    width, height = png_size(tmp_path / "cm.png")
    assert width < 2000 and height < 2000, "30 labelled classes, not a 400 x 400 picture"
    rows = (tmp_path / "cm_pairs.csv").read_text().splitlines()
    assert rows[0] == "true,predicted,count,fraction_of_true" and rows[1] == "action 000,action 001,5,0.5000"
    assert main(["per-class", "--predictions", predictions, "--out", str(tmp_path / "pc.png")]) == 0
    assert_drawn_png(tmp_path / "pc.png", 1200, 400)
