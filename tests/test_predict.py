"""tools/predict.py: unlabelled videos, multi-view, failures listed, 1 process and 2 gloo processes.

Real H.264 MP4 and VP8 Ogg videos (tests/videos.py) with one broken file and one text file, a tiny
model saved by the engine (tests/saved_models.py); the two-process run goes through torchrun.
"""
from __future__ import annotations

import csv
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from saved_models import CLASSES, save_checkpoint
from videos import make_indexed_video

import videovit
from videovit.deploy.classifier import VideoClassifier

REPO_ROOT = Path(__file__).resolve().parents[1]
GOOD_VIDEOS = 6
ALLOW_ONE_FAILURE = ["TEST.MAX_FAILED_SHARE", "0.2"]    # 1 broken of 7 videos is 14 %, over the default 5 %


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path, list[Path], Path]:
    """(checkpoint, folder of videos, the good videos, the broken video); 6 good videos (one an Ogg), 1 broken."""
    root = tmp_path_factory.mktemp("predict")
    checkpoint, _ = save_checkpoint(root, "regionvit")
    folder = root / "videos"
    (folder / "sub dir").mkdir(parents=True)
    good = [make_indexed_video(folder / ("sub dir" if i % 2 else "") / f"clip {i}.mp4", 12 + 3 * i, size=(96, 64))
            for i in range(GOOD_VIDEOS - 1)]
    good.append(make_indexed_video(folder / "clip.ogv", 14, codec="vp8", size=(96, 64)))
    broken = folder / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    (folder / "notes.txt").write_text("not a video")
    return checkpoint, folder, good, broken


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream))


def _predict(argv: list[str]) -> int:
    return runpy.run_path(str(REPO_ROOT / "tools" / "predict.py"))["main"](argv)


def test_predict_folder_scores_every_video_container_lists_the_rest_and_fails_on_too_many_failures(
        setup, tmp_path, capsys) -> None:
    """1 broken video of 7 is more than TEST.MAX_FAILED_SHARE (5 %): every output is written, then status 1."""
    checkpoint, folder, good, broken = setup
    out = tmp_path / "predictions.csv"
    assert _predict(["--checkpoint", str(checkpoint), "--folder", str(folder), "--out", str(out),
                     "--top-k", "3", "TEST.BATCH_SIZE", "4"]) == 1
    captured = capsys.readouterr()
    assert (f"predicted {GOOD_VIDEOS} of {GOOD_VIDEOS + 1} videos" in captured.out
            and "skipped 1 file(s) without a video extension (notes.txt)" in captured.out)
    err = captured.err.strip().splitlines()
    assert f"failed: {broken}: " in captured.err
    assert err[-1].startswith(f"error: only {GOOD_VIDEOS} of {GOOD_VIDEOS + 1} videos were scored: 1 (14%) failed")
    assert "TEST.MAX_FAILED_SHARE 0.05" in err[-1] and str(tmp_path / "predictions_failed.csv") in err[-1]
    rows = _rows(out)
    assert sorted(row["path"] for row in rows) == sorted(str(p) for p in good)
    classifier = VideoClassifier(videovit.from_pretrained(checkpoint))
    predicted = classifier.predict([row["path"] for row in rows])
    for row, probs in zip(rows, predicted.scores.probs, strict=True):
        top = torch.topk(torch.from_numpy(probs), 3)
        assert [row[f"pred_{r}"] for r in (1, 2, 3)] == [CLASSES[i] for i in top.indices.tolist()]
        assert [float(row[f"prob_{r}"]) for r in (1, 2, 3)] == pytest.approx(top.values.tolist(), abs=2e-6)
    failed = _rows(tmp_path / "predictions_failed.csv")
    assert [row["path"] for row in failed] == [str(broken)] and failed[0]["reason"]


def test_predict_list_with_prefix(setup, tmp_path, capsys) -> None:
    checkpoint, folder, good, _ = setup
    listing = tmp_path / "videos.txt"
    listing.write_text("\n".join(str(p.relative_to(folder)) for p in good[:2]) + "\n\n")
    out = tmp_path / "p.csv"
    assert _predict(["--checkpoint", str(checkpoint), "--list", str(listing), "--prefix", str(folder),
                     "--out", str(out)]) == 0
    assert "predicted 2 of 2 videos" in capsys.readouterr().out
    assert [row["path"] for row in _rows(out)] == [str(p) for p in good[:2]]
    assert _rows(tmp_path / "p_failed.csv") == []


def test_predict_user_mistakes_are_one_error_line(setup, tmp_path, capsys) -> None:
    checkpoint, _, _, broken = setup
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _predict(["--checkpoint", str(checkpoint), "--folder", str(empty), "--out", str(tmp_path / "p.csv")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    listing = tmp_path / "only_broken.txt"
    listing.write_text(f"{broken}\n")
    assert _predict(["--checkpoint", str(checkpoint), "--list", str(listing), "--out", str(tmp_path / "p.csv"),
                     "TEST.MAX_FAILED_SHARE", "1.0"]) == 1
    assert "error: only 0 of 1 videos were scored" in capsys.readouterr().err


@pytest.mark.slow
def test_two_processes_predict_each_video_once_like_one_process(setup, tmp_path) -> None:
    checkpoint, folder, good, broken = setup
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    assert _predict(["--checkpoint", str(checkpoint), "--folder", str(folder), "--out", str(one),
                     *ALLOW_ONE_FAILURE]) == 0
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "tools/predict.py", "--checkpoint", str(checkpoint), "--folder", str(folder), "--out", str(two),
               "DIST_BACKEND", "gloo", "DATA_LOADER.NUM_WORKERS", "0", *ALLOW_ONE_FAILURE]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert f"predicted {GOOD_VIDEOS} of {GOOD_VIDEOS + 1} videos" in done.stdout and "2 process(es)" in done.stdout
    assert done.stdout.count("predicted") == 1      # only the main process reports
    rows_one, rows_two = _rows(one), _rows(two)
    assert [row["path"] for row in rows_two] == [row["path"] for row in rows_one]     # no duplicate, no gap
    for a, b in zip(rows_one, rows_two, strict=True):
        assert a["pred_1"] == b["pred_1"] and float(a["prob_1"]) == pytest.approx(float(b["prob_1"]), abs=1e-5)
    assert [row["path"] for row in _rows(tmp_path / "two_failed.csv")] == [str(broken)]
