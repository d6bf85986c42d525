"""Export a trained checkpoint to a self-describing folder (safetensors, config.json, model card).

    python tools/export.py output/K400/regionvit_s/checkpoints/checkpoint_latest.pyth exported/ [--onnx] [--ema]

--onnx also writes model.onnx (dynamic batch axis) and checks it with onnxruntime against PyTorch
before reporting success (needs the export extra: pip install -e '.[export]'). --ema exports the EMA
weights. Load the folder with videovit.from_pretrained or tools/demo.py --checkpoint; see
docs/deployment.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from videovit.cli import run_tool
from videovit.errors import CheckFailedError, InputPathError


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and export; 2 on user errors, 1 when the ONNX check fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="videovit training checkpoint (checkpoint_*.pyth)")
    parser.add_argument("out_dir", type=Path, help="folder to write (created; existing files are replaced)")
    parser.add_argument("--onnx", action="store_true", help="also write and check model.onnx")
    parser.add_argument("--ema", action="store_true", help="export the EMA weights instead of the plain ones")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (>= 17; default: videovit.deploy.onnx's)")
    args = parser.parse_args(argv)
    if args.opset is not None and args.opset < 17:
        parser.error(f"--opset must be 17 or newer, got {args.opset}")
    if args.out_dir.exists() and not args.out_dir.is_dir():
        parser.error(f"{args.out_dir} exists and is not a folder")

    def export() -> None:
        if not args.checkpoint.exists():
            raise InputPathError(f"checkpoint {args.checkpoint} does not exist")
        from videovit.deploy.export import ONNX_FILE, export_model
        from videovit.deploy.onnx import MAX_ABS_DIFF, ONNX_OPSET, check_onnx, export_onnx

        loaded = export_model(args.checkpoint, args.out_dir, use_ema=args.ema)
        if args.onnx:
            cfg = loaded.cfg
            clip_shape = (3, cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE)
            model = loaded.model.cpu().float()
            path = export_onnx(model, clip_shape, args.out_dir / ONNX_FILE, args.opset or ONNX_OPSET)
            check = check_onnx(path, model, clip_shape)
            if not check.passed:
                raise CheckFailedError(f"{path}: onnxruntime differs from PyTorch by {check.max_abs_diff:.3g} "
                                   f"(> {MAX_ABS_DIFF:g}); the ONNX file is not trustworthy")
            print(f"{path}: onnxruntime matches PyTorch on batches of {check.batch_sizes}, "
                  f"max |logit diff| {check.max_abs_diff:.3g} (tolerance {MAX_ABS_DIFF:g})")
        for path in sorted(args.out_dir.iterdir()):
            print(f"  {path.name:<20} {path.stat().st_size / 1e6:9.2f} MB")
        print(f"exported {args.checkpoint} to {args.out_dir} ({'EMA' if args.ema else 'plain'} weights, "
              f"{len(loaded.class_names)} classes)")

    return run_tool(export, interrupted=f"{args.out_dir} may hold an incomplete export; rerun the same command")


if __name__ == "__main__":
    sys.exit(main())
