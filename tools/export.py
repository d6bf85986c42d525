"""Export a trained checkpoint to a self-describing folder (safetensors, config.json, model card).

    python tools/export.py output/K400/regionvit_s/checkpoints/checkpoint_latest.pyth exported/ [--onnx] [--ema]
    python tools/export.py output/K400/videomae_b/checkpoints/checkpoint_latest.pyth hub/ --format transformers

--onnx also writes model.onnx (dynamic batch axis) and checks it with onnxruntime against PyTorch
before reporting success (needs the export extra: pip install -e '.[export]'). --ema exports the EMA
weights. The folder appears only once everything is written and checked (an interrupted or failed
export leaves none). Load it with videovit.from_pretrained or tools/demo.py --checkpoint; see
docs/deployment.md. --format transformers writes a timesformer_b or videomae_* checkpoint as a folder
that transformers.AutoModelForVideoClassification.from_pretrained loads, the class names as id2label
(docs/checkpoints.md, "transformers folders").
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from videovit.cli import run_tool
from videovit.errors import InputPathError


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and export; 2 on user errors, 1 when the ONNX check fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="videovit training checkpoint (checkpoint_*.pyth)")
    parser.add_argument("out_dir", type=Path,
                        help="folder to write: new, empty or a previous export (replaced once the new one is complete)")
    parser.add_argument("--onnx", action="store_true", help="also write and check model.onnx")
    parser.add_argument("--ema", action="store_true", help="export the EMA weights instead of the plain ones")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (>= 17; default: videovit.deploy.onnx's)")
    parser.add_argument("--format", default="videovit", dest="folder_format", metavar="{videovit,transformers}",
                        help="folder format: videovit's own (default) or transformers' (TimeSformer, VideoMAE)")
    args = parser.parse_args(argv)
    if args.opset is not None and args.opset < 17:
        parser.error(f"--opset must be 17 or newer, got {args.opset}")

    def export() -> None:
        if not args.checkpoint.exists():
            raise InputPathError(f"checkpoint {args.checkpoint} does not exist")
        from videovit.deploy.export import export_model
        from videovit.deploy.onnx import MAX_ABS_DIFF, ONNX_OPSET

        done = export_model(args.checkpoint, args.out_dir, use_ema=args.ema, onnx=args.onnx,
                            opset=args.opset or ONNX_OPSET, folder_format=args.folder_format)
        if done.onnx is not None:
            print(f"model.onnx: onnxruntime matches PyTorch on batches of {done.onnx.batch_sizes}, "
                  f"max |logit diff| {done.onnx.max_abs_diff:.3g} (tolerance {MAX_ABS_DIFF:g})")
        for path in sorted(done.folder.iterdir()):
            print(f"  {path.name:<20} {path.stat().st_size / 1e6:9.2f} MB")
        print(f"exported {args.checkpoint} to {done.folder} ({'EMA' if done.weights == 'model_ema' else 'plain'} "
              f"weights, {done.num_classes} classes)")

    return run_tool(export, interrupted=f"{args.out_dir} is as it was (an export is moved in only when complete); "
                                        f"rerun the same command")


if __name__ == "__main__":
    sys.exit(main())
