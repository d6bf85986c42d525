"""Classify a video with a trained checkpoint: top-5 classes, optionally an annotated copy of the video.

    python tools/demo.py --checkpoint output/K400/regionvit_s/checkpoints/checkpoint_latest.pyth \
        --video clip.mp4 [--cfg configs/K400/regionvit_s.yaml] [--output annotated.mp4|.gif] [KEY VALUE ...]

The model and its test protocol (frames, temporal views, spatial crops) come from the config saved in
the checkpoint unless --cfg is given; probabilities are softmax scores averaged over the test views.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from videovit.config.cli import split_config_files
from videovit.inference import load_for_inference, predict_video
from videovit.utils.annotate import OUTPUT_SUFFIXES, write_annotated_video
from videovit.utils.cli import exit_status

DECIMALS = 6


def truncated(prob: float) -> str:
    """``prob`` cut (not rounded) to DECIMALS places, so that the printed top-k never sums above 1."""
    return f"{math.floor(prob * 10**DECIMALS) / 10**DECIMALS:.{DECIMALS}f}"


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, print the top classes, write the annotated video if asked; 2 on user errors."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="videovit training checkpoint (.pyth)")
    parser.add_argument("--video", required=True, type=Path, help="video file to classify")
    parser.add_argument("--cfg", nargs="+", default=[], metavar="FILE",
                        help="config files to use instead of the config saved in the checkpoint")
    parser.add_argument("--output", type=Path, default=None,
                        help="write a copy of the video with the top-1 class drawn on every frame (.mp4 or .gif)")
    parser.add_argument("--top-k", type=int, default=5, help="how many classes to print")
    parser.add_argument("overrides", nargs="*", metavar="KEY VALUE", help="config overrides, e.g. DEVICE cpu")
    args = parser.parse_args(argv)
    if args.output is not None and args.output.suffix.lower() not in OUTPUT_SUFFIXES:
        parser.error(f"--output must end in {' or '.join(OUTPUT_SUFFIXES)}, got {args.output}")
    cfg_files, trailing = split_config_files(args.cfg)

    def classify() -> None:
        for option, path in (("--checkpoint", args.checkpoint), ("--video", args.video)):
            if not path.is_file():
                raise FileNotFoundError(f"{option} {path} does not exist")
        loaded = load_for_inference(args.checkpoint, cfg_files, trailing + list(args.overrides), log=lambda _: None)
        predictions = predict_video(loaded.model, loaded.cfg, args.video, loaded.class_names, args.top_k)
        test = loaded.cfg.TEST
        print(f"{args.video}: {test.NUM_TEMPORAL_VIEWS} temporal x {test.NUM_SPATIAL_CROPS} spatial views of "
              f"{loaded.cfg.DATA.NUM_FRAMES} frames, softmax averaged")
        width = max(len(name) for name, _ in predictions)
        for rank, (name, prob) in enumerate(predictions, start=1):
            print(f"  {rank}. {name:<{width}}  {truncated(prob)}")
        if args.output is not None:
            name, prob = predictions[0]
            frames = write_annotated_video(args.video, args.output, f"{name} {100 * prob:.1f}%",
                                           loaded.cfg.DATA.DECODING_BACKEND)
            print(f"wrote {args.output} ({frames} frames)")

    return exit_status(classify)


if __name__ == "__main__":
    sys.exit(main())
