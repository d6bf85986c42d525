"""Predict the classes of unlabelled videos (e.g. the official K400 test set) with the test protocol.

The videos go through ``VideoClassifier.predict``, the multi-view test's own pieces: every video
expanded into its test views, the sharded evaluation loader, the one view scorer, gathering across the
processes of a torchrun job and the per-video softmax average. A video with a view that fails to
decode is listed as failed, never replaced: "predicted N of M"; more than TEST.MAX_FAILED_SHARE of
them failed and the command fails once its files are written. A folder is searched for every
container the decoders read (``videovit.data.lists.VIDEO_EXTENSIONS``) and the files it skips are
named. See docs/deployment.md.
"""
from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from videovit.data.lists import VIDEO_EXTENSIONS
from videovit.deploy.classifier import Predictions, VideoClassifier, from_pretrained
from videovit.errors import InputPathError, UsageError
from videovit.evaluation.views import check_scored_share, top_classes
from videovit.runtime.distributed import barrier, init_distributed, shutdown_distributed

SHOWN_SKIPPED = 5


@dataclass(frozen=True)
class VideoInputs:
    """The videos to predict, and the files of a folder that were skipped (not a video by their extension)."""

    paths: list[str]
    skipped: list[str] = field(default_factory=list)

    def skipped_note(self) -> str:
        """``"; skipped 2 files without a video extension (notes.txt, a.json)"``, or "" when none was."""
        if not self.skipped:
            return ""
        names = ", ".join(Path(path).name for path in self.skipped[:SHOWN_SKIPPED])
        more = ", ..." if len(self.skipped) > SHOWN_SKIPPED else ""
        return f"; skipped {len(self.skipped)} file(s) without a video extension ({names}{more})"


def videos_in_list(list_file: str | Path, prefix: str | Path = "") -> VideoInputs:
    """One video path per non-blank line of ``list_file``, joined to ``prefix`` when relative."""
    list_file = Path(list_file)
    if not list_file.is_file():
        raise InputPathError(f"video list {list_file} does not exist")
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise UsageError(f"{list_file} is not UTF-8 text ({err}); --list takes a text file with one video path "
                         "per line") from None
    paths = [str(Path(prefix) / line.strip()) for line in lines if line.strip()]
    if not paths:
        raise UsageError(f"{list_file} lists no video; write one video path per line")
    return VideoInputs(paths)


def videos_in_folder(folder: str | Path) -> VideoInputs:
    """Every video file under ``folder`` (recursively, sorted; by extension, see VIDEO_EXTENSIONS), and
    the other files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputPathError(f"video folder {folder} does not exist")
    files = sorted(str(p) for p in folder.rglob("*") if p.is_file())
    paths = [path for path in files if Path(path).suffix.lower() in VIDEO_EXTENSIONS]
    if not paths:
        raise UsageError(f"{folder} holds no video file ({', '.join(VIDEO_EXTENSIONS)}) among its {len(files)} files")
    return VideoInputs(paths, [path for path in files if path not in set(paths)])


def predict_videos(checkpoint: str | Path, inputs: VideoInputs, out: str | Path, top_k: int = 5,
                   cfg_files: Sequence[str | Path] = (), overrides: Sequence[str] = ()) -> Predictions:
    """Predict ``inputs`` with the model of ``checkpoint`` (every process of a torchrun job its share), write
    ``out`` and its failures file, print the failures and the count; CheckFailedError when too few
    videos could be predicted (TEST.MAX_FAILED_SHARE)."""
    model = from_pretrained(checkpoint, cfg_files, overrides, log=lambda _: None)
    cfg, class_names, protocol = model.trained_parts()
    ctx = init_distributed(cfg.DEVICE, cfg.DIST_BACKEND)
    try:
        predictions = VideoClassifier(model, ctx).predict(inputs.paths)
        if ctx.is_main:
            failed_file = write_predictions(out, predictions, class_names, top_k)
            for video, reason in sorted(predictions.scores.failed.items()):
                print(f"failed: {predictions.paths[video]}: {reason}", file=sys.stderr)
            print(f"predicted {predictions.num_predicted} of {len(inputs.paths)} videos ({protocol.temporal_views} "
                  f"temporal x {protocol.spatial_crops} spatial views, softmax averaged, {ctx.world_size} "
                  f"process(es)); wrote {out}" + (f" and {failed_file}" if predictions.scores.failed else "")
                  + inputs.skipped_note())
        barrier()
    finally:
        shutdown_distributed()
    check_scored_share(predictions.scores, cfg.TEST.MAX_FAILED_SHARE, "videos", str(failures_file(out)),
                       "check the paths and the videos (tools/check_videos.py)")
    return predictions


def failures_file(out: str | Path) -> Path:
    """``<out stem>_failed.csv`` next to ``out``: the videos that could not be predicted."""
    out = Path(out)
    return out.with_name(f"{out.stem}_failed.csv")


def write_predictions(out: str | Path, predictions: Predictions, class_names: Sequence[str],
                      top_k: int = 5) -> Path:
    """``out``: one row per predicted video (path, top-k classes and probabilities); the failed videos
    go to ``failures_file(out)`` (path, reason), which is returned."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    k = min(top_k, len(class_names))
    scores = predictions.scores
    with out.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["path"] + [f"{kind}_{r}" for r in range(1, k + 1) for kind in ("pred", "prob")])
        for video in scores.scored.nonzero()[0]:
            top = top_classes(scores.probs[video], class_names, k)
            writer.writerow([predictions.paths[video]] + [cell for name, prob in top for cell in (name, f"{prob:.6f}")])
    failed = failures_file(out)
    with failed.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["path", "reason"])
        for failed_video, reason in sorted(scores.failed.items()):
            writer.writerow([predictions.paths[failed_video], reason])
    return failed


__all__ = ["VideoInputs", "failures_file", "predict_videos", "videos_in_folder", "videos_in_list",
           "write_predictions"]
