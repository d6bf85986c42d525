"""The one-command demo: synthetic data, a small RegionViT pretrained on images and finetuned on
video on CPU, a 3-crop test and a results table.

    python tools/run_demo.py [KEY VALUE ...]        (`make demo` runs it without arguments)

1. writes the two synthetic Kinetics-format datasets of videovit/prep/synthetic.py unless they are
   there: "position" (still shapes in 9 grid cells) under data/synthetic_32px_positions and
   "motion" (8 direction classes in 4 pairs that only temporal order tells apart) under
   data/synthetic_32px; then builds their list files;
2. image pretraining: configs/demo/synthetic_regionvit.yaml + synthetic_positions.yaml train the
   model as a one-frame image model on the position task (output/demo_pretrain), standing in for
   the IN1K checkpoint of a real run; a finished stage is resumed, i.e. skipped;
3. video finetuning: ``videovit.engine.run`` with synthetic_regionvit.yaml plus the KEY VALUE
   overrides given, starting from stage 2's checkpoint (inflated into the video model), then the
   3-crop test; prints video-level accuracy and, per class pair, how often the right class of the
   pair scores higher than the other (50% = chance).

Overrides go to their own run folder (OUTPUT_DIR/<overrides>) unless OUTPUT_DIR is among them, so
``python tools/run_demo.py MODEL.TEMPORAL False`` (the frame-averaged image model, which should stay
near chance within every pair) does not resume the temporal run; it reuses the pretrained image
model. Overriding TRAIN.CHECKPOINT_FILE_PATH (e.g. with "") skips the pretraining stage; do so
with architecture overrides, which the pretrained image model would not fit. Run from the
repository root.
"""
from __future__ import annotations

import sys

from videovit.cli import run_tool


def main(argv: list[str] | None = None) -> int:
    """Run the demo (``videovit.recipes.demo``); the status of ``videovit.cli.run_tool``."""

    def demo() -> None:
        from videovit.recipes.demo import run_demo

        run_demo(argv)

    return run_tool(demo, interrupted="rerun the same command (finished stages are reused)")


if __name__ == "__main__":
    sys.exit(main())
