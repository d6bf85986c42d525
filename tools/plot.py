"""Plot a run's results as PNG files.

    python tools/plot.py curves --stats OUTPUT_DIR/stats.jsonl --out curves.png
    python tools/plot.py confusion --predictions OUTPUT_DIR/predictions.csv --classes classes.txt --out cm.png
    python tools/plot.py per-class --predictions OUTPUT_DIR/predictions.csv --classes classes.txt --out acc.png
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from videovit.data.lists import read_classes
from videovit.utils.plots import plot_confusion, plot_curves, plot_per_class, read_predictions, read_stats

SHOWN_CLASSES = 5


def _curves(args: argparse.Namespace) -> Path:
    return plot_curves(read_stats(args.stats), args.out)


def _confusion(args: argparse.Namespace) -> Path:
    names = read_classes(args.classes)
    return plot_confusion(*read_predictions(args.predictions, names), names, args.out)


def _per_class(args: argparse.Namespace) -> Path:
    names = read_classes(args.classes)
    path, accuracy = plot_per_class(*read_predictions(args.predictions, names), names, args.out)
    ranked = sorted((value, name) for value, name in zip(accuracy, names) if not math.isnan(value))
    print("worst classes: " + ", ".join(f"{name} {value:.1f}%" for value, name in ranked[:SHOWN_CLASSES]))
    print("best classes: " + ", ".join(f"{name} {value:.1f}%" for value, name in ranked[::-1][:SHOWN_CLASSES]))
    return path


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, draw the asked plot; 2 when an input is missing or malformed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    curves = commands.add_parser("curves", help="loss, learning rate and clip-level validation accuracy")
    curves.add_argument("--stats", required=True, type=Path, help="stats.jsonl of a run's OUTPUT_DIR")
    curves.set_defaults(draw=_curves)
    for name, draw, text in (("confusion", _confusion, "confusion matrix normalised per true class"),
                             ("per-class", _per_class, "per-class top-1 accuracy bar chart")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--predictions", required=True, type=Path, help="predictions.csv of a test run")
        command.add_argument("--classes", required=True, type=Path, help="classes.txt the run used")
        command.set_defaults(draw=draw)
    for command in commands.choices.values():
        command.add_argument("--out", required=True, type=Path, help="PNG file to write")
    args = parser.parse_args(argv)
    try:
        path = args.draw(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
