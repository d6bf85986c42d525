"""Plot a run's results as PNG files.

    python tools/plot.py curves --stats OUTPUT_DIR/stats.jsonl --out curves.png
    python tools/plot.py confusion --predictions OUTPUT_DIR/predictions.csv --out cm.png [--classes classes.txt]
    python tools/plot.py per-class --predictions OUTPUT_DIR/predictions.csv --out acc.png [--classes classes.txt]

Class names come from predictions.csv; ``--classes`` (the run's classes.txt) also keeps the classes
no video was predicted as or labelled with. ``confusion`` also writes the most confused class pairs
to ``<out>_pairs.csv`` and prints the first of them.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from videovit.cli import run_tool
from videovit.data.lists import read_classes
from videovit.viz.plots import (
    PAIRS_SHOWN,
    most_confused_pairs,
    plot_confusion,
    plot_curves,
    plot_per_class,
    read_predictions,
    read_stats,
    write_pairs_csv,
)

SHOWN_CLASSES = 5


def _predictions(args: argparse.Namespace):
    return read_predictions(args.predictions, read_classes(args.classes) if args.classes else None)


def _curves(args: argparse.Namespace) -> Path:
    return plot_curves(read_stats(args.stats), args.out)


def _confusion(args: argparse.Namespace) -> Path:
    true, predicted, names = _predictions(args)
    pairs = most_confused_pairs(true, predicted, names)
    table = write_pairs_csv(pairs, args.out.with_name(f"{args.out.stem}_pairs.csv"))
    print(f"most confused pairs (true -> predicted: videos, share of the true class); all {len(pairs)} in {table}:")
    for pair in pairs[:PAIRS_SHOWN]:
        print(f"  {pair.true} -> {pair.predicted}: {pair.count}, {100 * pair.fraction_of_true:.1f}%")
    return plot_confusion(true, predicted, names, args.out)


def _per_class(args: argparse.Namespace) -> Path:
    true, predicted, names = _predictions(args)
    path, accuracy = plot_per_class(true, predicted, names, args.out)
    ranked = sorted((value, name) for value, name in zip(accuracy, names, strict=True) if not math.isnan(value))
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
        command.add_argument("--classes", type=Path, default=None,
                             help="classes.txt the run used (default: the names in predictions.csv)")
        command.set_defaults(draw=draw)
    for command in commands.choices.values():
        command.add_argument("--out", required=True, type=Path, help="PNG file to write")
    args = parser.parse_args(argv)
    return run_tool(lambda: print(f"wrote {args.draw(args)}"))


if __name__ == "__main__":
    sys.exit(main())
