"""Predict the classes of unlabelled videos with a trained model, by the multi-view test protocol.

    python tools/predict.py --checkpoint CHECKPOINT_OR_EXPORTED_FOLDER --list videos.txt --out predictions.csv
    python tools/predict.py --checkpoint ... --folder videos/ --out predictions.csv [KEY VALUE ...]
    torchrun --nproc_per_node 2 tools/predict.py --checkpoint ... --folder videos/ --out predictions.csv

--list holds one video path per line (relative ones are joined to --prefix); --folder is searched
recursively for the files of every video container the decoders read (the others are skipped, and
named). Writes one row per predicted video (top-k classes and probabilities) and OUT_failed.csv with
the videos that could not be decoded; prints "predicted N of M videos". Exits 1, after writing both,
when more than TEST.MAX_FAILED_SHARE of the videos failed. The views follow the checkpoint's protocol
unless --cfg or KEY VALUE overrides set them; they go through the model TEST.BATCH_SIZE at a time, and
under torchrun every process scores its share of the videos. MODEL.COMPILE True runs the model through
torch.compile. See docs/deployment.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from videovit.cli import run_tool
from videovit.config.cli import split_config_files
from videovit.errors import InputPathError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, with user mistakes reported by argparse (status 2)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path,
                        help="videovit training checkpoint (.pyth) or a folder written by tools/export.py")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--list", type=Path, help="text file with one video path per line")
    source.add_argument("--folder", type=Path, help="folder searched recursively for video files")
    parser.add_argument("--prefix", type=Path, default=Path(""), help="folder the --list paths are relative to")
    parser.add_argument("--out", required=True, type=Path, help="predictions CSV to write")
    parser.add_argument("--top-k", type=int, default=5, help="classes per video in the CSV")
    parser.add_argument("--cfg", nargs="+", default=[], metavar="FILE",
                        help="config files to use instead of the config saved with the model")
    parser.add_argument("overrides", nargs="*", metavar="KEY VALUE", help="config overrides, e.g. TEST.BATCH_SIZE 16")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error(f"--top-k must be at least 1, got {args.top_k}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and predict; 2 on user errors, 1 when too many videos could not be predicted."""
    args = parse_args(argv)
    cfg_files, trailing = split_config_files(args.cfg)

    def predict() -> None:
        if not args.checkpoint.exists():
            raise InputPathError(f"--checkpoint {args.checkpoint} does not exist")
        from videovit.deploy.predict import predict_videos, videos_in_folder, videos_in_list

        inputs = videos_in_list(args.list, args.prefix) if args.list is not None else videos_in_folder(args.folder)
        predict_videos(args.checkpoint, inputs, args.out, args.top_k, cfg_files, trailing + list(args.overrides))

    return run_tool(predict)


if __name__ == "__main__":
    sys.exit(main())
