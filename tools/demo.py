"""Classify a video with a trained model: top-5 classes, or a timeline over a long video; optionally an annotated copy.

    python tools/demo.py --checkpoint output/K400/regionvit_s/checkpoints/checkpoint_latest.pyth \
        --video clip.mp4 [--cfg configs/K400/regionvit_s.yaml] [--output annotated.mp4|.gif] [KEY VALUE ...]
    python tools/demo.py --checkpoint exported_folder --video long.mp4 --window 4 --stride 2 \
        --csv windows.csv --timeline timeline.png --output annotated.mp4

--checkpoint is a training checkpoint or a folder written by tools/export.py. The model and its test
protocol (frames, temporal views, spatial crops) are the checkpoint's, except what --cfg files or
KEY VALUE overrides set (the rule of the test-only run); probabilities are softmax scores averaged
over the test views. With --window, every window of the
video is classified like a video of its own (see docs/deployment.md); MODEL.COMPILE True runs the
model through torch.compile.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from videovit.cli import run_tool
from videovit.config.cli import split_config_files
from videovit.errors import InputPathError
from videovit.viz.annotate import OUTPUT_SUFFIXES, write_annotated_video

DECIMALS = 6


def truncated(prob: float) -> str:
    """``prob`` cut (not rounded) to DECIMALS places, so that the printed top-k never sums above 1."""
    return f"{math.floor(prob * 10**DECIMALS) / 10**DECIMALS:.{DECIMALS}f}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, with user mistakes reported by argparse (status 2)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path,
                        help="videovit training checkpoint (.pyth) or a folder written by tools/export.py")
    parser.add_argument("--video", required=True, type=Path, help="video file to classify")
    parser.add_argument("--cfg", nargs="+", default=[], metavar="FILE",
                        help="config files to use instead of the config saved with the model")
    parser.add_argument("--output", type=Path, default=None,
                        help="write a copy of the video with the top-1 class drawn on every frame (.mp4 or .gif)")
    parser.add_argument("--top-k", type=int, default=5, help="how many classes to print (and write per window)")
    parser.add_argument("--window", type=float, default=None, metavar="SECONDS",
                        help="classify windows of this many seconds instead of the whole video")
    parser.add_argument("--stride", type=float, default=None, metavar="SECONDS",
                        help="seconds between window starts (default: the window length)")
    parser.add_argument("--csv", type=Path, default=None, help="with --window: write one row per window here")
    parser.add_argument("--timeline", type=Path, default=None,
                        help="with --window: plot the top classes' probabilities over time (PNG)")
    parser.add_argument("--gif-width", type=int, default=480, help="largest width of a GIF output (pixels)")
    parser.add_argument("--gif-fps", type=float, default=10.0, help="largest frame rate of a GIF output")
    parser.add_argument("overrides", nargs="*", metavar="KEY VALUE", help="config overrides, e.g. DEVICE cpu")
    args = parser.parse_args(argv)
    if args.output is not None and args.output.suffix.lower() not in OUTPUT_SUFFIXES:
        parser.error(f"--output must end in {' or '.join(OUTPUT_SUFFIXES)}, got {args.output}")
    if args.window is None and (args.stride is not None or args.csv is not None or args.timeline is not None):
        parser.error("--stride, --csv and --timeline go with --window SECONDS")
    if args.window is not None and (args.window <= 0 or (args.stride is not None and args.stride <= 0)):
        parser.error("--window and --stride must be positive numbers of seconds")
    if args.timeline is not None and args.timeline.suffix.lower() != ".png":
        parser.error(f"--timeline must end in .png, got {args.timeline}")
    if args.top_k < 1 or args.gif_width < 16 or args.gif_fps <= 0:
        parser.error("--top-k must be >= 1, --gif-width >= 16 and --gif-fps > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, print the predictions, write the outputs asked for; 2 on user errors."""
    args = parse_args(argv)
    cfg_files, trailing = split_config_files(args.cfg)

    def classify() -> None:
        if not args.checkpoint.exists():
            raise InputPathError(f"--checkpoint {args.checkpoint} does not exist")
        if not args.video.is_file():
            raise InputPathError(f"--video {args.video} is not a file" if args.video.exists()
                                 else f"--video {args.video} does not exist")
        from videovit.deploy.classifier import VideoClassifier, from_pretrained

        model = from_pretrained(args.checkpoint, cfg_files, trailing + list(args.overrides), log=lambda _: None)
        classifier = VideoClassifier(model)
        views = classifier.preprocessing
        protocol = (f"{views.temporal_views} temporal x {views.spatial_crops} spatial views of "
                    f"{views.num_frames} frames, softmax averaged")
        if args.window is not None:
            caption = classify_windows(classifier, args, protocol)
        else:
            predictions = classifier.classify(args.video, args.top_k)
            print(f"{args.video}: {protocol}")
            width = max(len(name) for name, _ in predictions)
            for rank, (name, prob) in enumerate(predictions, start=1):
                print(f"  {rank}. {name:<{width}}  {truncated(prob)}")
            name, prob = predictions[0]
            caption = f"{name} {100 * prob:.1f}%"
        if args.output is not None:
            frames = write_annotated_video(args.video, args.output, caption, classifier.cfg.DATA.DECODING_BACKEND,
                                           gif_width=args.gif_width, gif_fps=args.gif_fps)
            print(f"wrote {args.output} ({frames} frames)")

    return run_tool(classify)


def classify_windows(classifier, args: argparse.Namespace, protocol: str):
    """Score every window, print and write them; the caption function for the annotated copy."""
    from videovit.deploy.windows import ProgressBar, caption_at, write_windows_csv
    from videovit.evaluation.views import top_classes
    from videovit.viz.timeline import plot_timeline

    stride = args.stride if args.stride is not None else args.window
    print(f"{args.video}: windows of {args.window:g} s every {stride:g} s, each {protocol}")
    try:
        scores = classifier.windows(args.video, args.window, stride, progress=ProgressBar("windows", sys.stderr))
    except BaseException:  # an error or a signal: its line starts below the progress bar's
        print(file=sys.stderr)
        raise
    names = classifier.class_names
    for score in scores:
        (name, prob), = top_classes(score.probs, names, 1)
        print(f"  {score.window.start:8.2f} - {score.window.end:8.2f} s  {name}  {truncated(prob)}")
    if args.csv is not None:
        write_windows_csv(args.csv, scores, names, args.top_k)
        print(f"wrote {args.csv} ({len(scores)} windows)")
    if args.timeline is not None:
        plot_timeline(scores, names, args.timeline, top=args.top_k,
                      title=f"{args.video.name}: windows of {args.window:g} s every {stride:g} s")
        print(f"wrote {args.timeline}")
    return caption_at(scores, names)


if __name__ == "__main__":
    sys.exit(main())
