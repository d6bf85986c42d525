"""The demo's recipe (tools/run_demo.py): synthetic data, a small RegionViT pretrained as an image model on
one task, inflated into the video model and finetuned on another, then the 3-crop test and the
per-pair accuracy (README, "Quickstart"). Run from the repository root: the configs and data folders
are the repository's.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from yacs.config import CfgNode

from videovit.config import add_config_arguments, config_from_args, load_config
from videovit.data.lists import read_classes, read_list
from videovit.engine import run
from videovit.engine.checkpoint_files import CHECKPOINT_SUBDIR, LATEST_NAME
from videovit.evaluation.views import PROBABILITIES_FILE, format_metrics_table, pair_accuracy
from videovit.models import complete_config
from videovit.prep.annotations import build_k400_lists
from videovit.prep.synthetic import CLASS_PAIRS, generate_synthetic_kinetics

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "demo"  # the repository's
DEMO_CONFIG = CONFIG_DIR / "synthetic_regionvit.yaml"
PRETRAIN_CONFIGS = (DEMO_CONFIG, CONFIG_DIR / "synthetic_positions.yaml")  # merged in this order
# Per task: clips per class for train / val / test, frame size (W, H), frames per clip, fps, seed.
DATA_SIZES: dict[str, dict[str, Any]] = {
    "motion": {"num_train_per_class": 512, "num_val_per_class": 4, "num_test_per_class": 32,
               "size": (32, 32), "num_frames": 16, "fps": 25, "seed": 0},
    "position": {"num_train_per_class": 512, "num_val_per_class": 8, "num_test_per_class": 1,
                 "size": (32, 32), "num_frames": 1, "fps": 25, "seed": 0},
}


def prepare_data(cfg: CfgNode, task: str) -> float:
    """Generate ``task``'s dataset under the parent of DATA.PATH_PREFIX unless its annotations are
    there, and build its lists into DATA.PATH_TO_DATA_DIR; returns the seconds spent generating."""
    root = Path(cfg.DATA.PATH_PREFIX).parent
    annotations = root / "annotations"
    seconds = 0.0
    if (annotations / "test_labels.csv").is_file():
        print(f"using the synthetic {task} dataset in {root}")
    else:
        print(f"writing the synthetic {task} dataset to {root} ...", flush=True)
        start = time.perf_counter()
        generate_synthetic_kinetics(root, workers=2, task=task, **DATA_SIZES[task])
        seconds = time.perf_counter() - start
    report = build_k400_lists(annotations, cfg.DATA.PATH_PREFIX, Path(cfg.DATA.PATH_TO_DATA_DIR),
                              labelled_test_csv=annotations / "test_labels.csv")
    print(report.summary(), flush=True)
    return seconds


def demo_arguments(argv: list[str] | None) -> argparse.Namespace:
    """Command-line arguments with the demo config as default and a per-override OUTPUT_DIR."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    overrides = list(args.overrides) + list(args.opts)
    if not args.cfg:
        args.cfg = [str(DEMO_CONFIG)]
        if overrides and "OUTPUT_DIR" not in overrides[0::2]:
            base = load_config([DEMO_CONFIG]).OUTPUT_DIR
            name = "_".join(f"{key}={value}" for key, value in zip(overrides[0::2], overrides[1::2], strict=True))
            args.opts = list(args.opts) + ["OUTPUT_DIR", str(Path(base) / name.replace("/", "-"))]
    return args


def pretrain_image_model() -> tuple[Path, float]:
    """Stage 2: the position-task image model (trained unless finished before); returns its
    checkpoint and the seconds spent generating its data."""
    cfg = load_config(PRETRAIN_CONFIGS)
    generation = prepare_data(cfg, "position")
    print(f"image pretraining on the position task -> {cfg.OUTPUT_DIR}", flush=True)
    run(cfg)
    return Path(cfg.OUTPUT_DIR) / CHECKPOINT_SUBDIR / LATEST_NAME, generation


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


def run_demo(argv: list[str] | None) -> None:
    """Generate the data if needed, pretrain, finetune and test; print the results."""
    start = time.perf_counter()
    args = demo_arguments(argv)
    overrides = list(args.overrides) + list(args.opts)
    config_from_args(args)  # a mistake in the files or overrides fails before any data is written
    generation = 0.0
    if "TRAIN.CHECKPOINT_FILE_PATH" not in overrides[0::2]:
        checkpoint, generation = pretrain_image_model()
        args.overrides = ["TRAIN.CHECKPOINT_FILE_PATH", str(checkpoint)] + list(args.overrides)
    cfg = config_from_args(args)
    generation += prepare_data(cfg, "motion")
    metrics = run(cfg)
    if metrics is None:
        return
    lists_dir = Path(cfg.DATA.PATH_TO_DATA_DIR)
    pairs = pair_report(Path(cfg.OUTPUT_DIR), lists_dir / f"{cfg.TEST.SPLIT}.csv", lists_dir / "classes.txt")
    temporal = complete_config(cfg).MODEL.TEMPORAL  # a key of the demo model's family
    print(f"\nsynthetic demo ({'with' if temporal else 'WITHOUT'} temporal layers), "
          f"results in {cfg.OUTPUT_DIR}\n{format_metrics_table(metrics)}\n"
          f"per-pair accuracy (right class of the pair ranked above the other; chance 50%):\n{pairs}\n"
          f"wall time {time.perf_counter() - start:.0f} s, of which {generation:.0f} s generating data")


__all__ = ["DATA_SIZES", "DEMO_CONFIG", "PRETRAIN_CONFIGS", "demo_arguments", "pair_report", "prepare_data",
           "pretrain_image_model", "run_demo"]
