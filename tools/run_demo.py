"""The one-command demo: synthetic data, a small RegionViT trained and tested on CPU, a results table.

    python tools/run_demo.py [KEY VALUE ...]        (`make demo` runs it without arguments)

1. writes the synthetic Kinetics-format dataset (videovit/data/synthetic.py: 8 motion classes in 4
   pairs that only temporal order tells apart) under the parent of DATA.PATH_PREFIX
   (data/synthetic_64px) unless it is already there;
2. builds its list files into DATA.PATH_TO_DATA_DIR (output/demo/lists), with the test
   list taken from the labelled test CSV;
3. runs ``videovit.engine.run`` with configs/demo/synthetic_regionvit.yaml plus the KEY VALUE
   overrides given, then prints video-level accuracy and, per class pair, how often the right
   class of the pair scores higher than the other (50% = chance).

Overrides go to their own run folder (OUTPUT_DIR/<overrides>) unless OUTPUT_DIR is among them, so
``python tools/run_demo.py MODEL.TEMPORAL False`` (the frame-averaged image model, which should stay
near chance within every pair) does not resume the temporal run. Run from the repository root.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from videovit.config import add_config_arguments, config_from_args
from videovit.data.lists import build_k400_lists, read_classes, read_list
from videovit.data.synthetic import CLASS_PAIRS, generate_synthetic_kinetics
from videovit.engine import run
from videovit.engine.evaluate import PROBABILITIES_FILE, format_metrics_table, pair_accuracy
from videovit.engine.loaders import DataSetupError
from videovit.utils.cli import USER_ERRORS

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo" / "synthetic_regionvit.yaml"
# Clips per class for train / val / test, frame size (W, H), frames per clip, fps, seed.
DATA_SIZE = {"num_train_per_class": 128, "num_val_per_class": 4, "num_test_per_class": 16,
             "size": (64, 64), "num_frames": 16, "fps": 25, "seed": 0}


def ensure_dataset(root: Path) -> float:
    """Generate the synthetic dataset under ``root`` unless its annotations are already there;
    returns the seconds spent generating (0 when it was there)."""
    if (root / "annotations" / "test_labels.csv").is_file():
        print(f"using the synthetic dataset in {root}")
        return 0.0
    print(f"writing the synthetic dataset to {root} ...", flush=True)
    start = time.perf_counter()
    generate_synthetic_kinetics(root, workers=2, **DATA_SIZE)
    return time.perf_counter() - start


def demo_arguments(argv: list[str] | None) -> argparse.Namespace:
    """Command-line arguments with the demo config as default and a per-override OUTPUT_DIR."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    overrides = list(args.overrides) + list(args.opts)
    if not args.cfg:
        args.cfg = [str(DEMO_CONFIG)]
        if overrides and "OUTPUT_DIR" not in overrides[0::2]:
            base = config_from_args(argparse.Namespace(cfg=args.cfg, overrides=[], opts=[])).OUTPUT_DIR
            name = "_".join(f"{key}={value}" for key, value in zip(overrides[0::2], overrides[1::2]))
            args.opts = list(args.opts) + ["OUTPUT_DIR", str(Path(base) / name.replace("/", "-"))]
    return args


def pair_report(output_dir: Path, test_list: Path, classes_file: Path) -> str:
    """Per-pair accuracy lines from the saved probabilities and the test list's labels."""
    probs = np.load(output_dir / PROBABILITIES_FILE)
    names = read_classes(classes_file)
    labels = np.array([entry.label for entry in read_list(test_list, num_classes=len(names))])
    lines = []
    for first, second in CLASS_PAIRS:
        accuracy = pair_accuracy(probs, labels, (names.index(first), names.index(second)))
        lines.append(f"  {first} / {second}: {accuracy:.1f}%")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Generate data if needed, build lists, train and test, print the results; 2 on user errors."""
    start = time.perf_counter()
    try:
        cfg = config_from_args(demo_arguments(argv))
        generation = ensure_dataset(Path(cfg.DATA.PATH_PREFIX).parent)
        lists_dir = Path(cfg.DATA.PATH_TO_DATA_DIR)
        annotations = Path(cfg.DATA.PATH_PREFIX).parent / "annotations"
        report = build_k400_lists(annotations, cfg.DATA.PATH_PREFIX, lists_dir,
                                  labelled_test_csv=annotations / "test_labels.csv")
        print(report.summary(), flush=True)
        metrics = run(cfg)
    except USER_ERRORS + (DataSetupError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if metrics is None:
        return 0
    pairs = pair_report(Path(cfg.OUTPUT_DIR), lists_dir / f"{cfg.TEST.SPLIT}.csv", lists_dir / "classes.txt")
    print(f"\nsynthetic demo ({'with' if cfg.MODEL.TEMPORAL else 'WITHOUT'} temporal layers), "
          f"results in {cfg.OUTPUT_DIR}\n{format_metrics_table(metrics)}\n"
          f"per-pair accuracy (right class of the pair ranked above the other; chance 50%):\n{pairs}\n"
          f"wall time {time.perf_counter() - start:.0f} s, of which {generation:.0f} s generating data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
