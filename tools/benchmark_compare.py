"""Side by side with transformers, timm and the official RegionViT code: same weights, one process.

    python tools/benchmark_compare.py [--models timesformer_b volo_d1 regionvit_ti ...]
        [--regionvit-repo DIR] [--batch-sizes 1 4] [--modes forward forward+backward]
        [--precisions fp32 bf16] [--warmup 1] [--iters 3] [--device cpu|cuda] [--threads N] [--markdown]

Default models: every pair that can run here (the RegionViT rows need --regionvit-repo, a checkout of
github.com/IBM/RegionViT; videomae_b appears once that model is registered). Times are per iteration,
medians, in CPU ms on a CPU and wall ms on a GPU; ratio = ours / theirs. What each column means:
videovit/bench/compare.py; figures: docs/performance.md.
"""
from __future__ import annotations

import argparse
import sys

from videovit.cli import run_tool


def run(args: argparse.Namespace) -> None:
    """Measure and print the rows as they come, then the whole table."""
    import torch

    from videovit.bench.compare import available_pairs, compare, comparison_table, markdown_table
    from videovit.runtime.distributed import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    names = args.models or available_pairs(args.regionvit_repo)
    print(f"torch {torch.__version__}, device {device}"
          f"{' ' + torch.cuda.get_device_name(device) if device.type == 'cuda' else ''}, "
          f"{torch.get_num_threads()} threads, warm-up {args.warmup} + {args.iters} timed iterations per side")
    rows = []
    for row in compare(names, args.regionvit_repo, args.batch_sizes, args.modes, args.precisions, device,
                       args.warmup, args.iters):
        rows.append(row)
        print(" | ".join(row.cells()), flush=True)
    print(markdown_table(rows, device) if args.markdown else comparison_table(rows, device))


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and print the comparison; 2 on a usage error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--models", nargs="+", default=None, metavar="NAME",
                        help="pairs to compare: timesformer_b videomae_b volo_d1 regionvit_ti regionvit_s regionvit_m")
    parser.add_argument("--regionvit-repo", default=None, metavar="DIR", help="a checkout of IBM/RegionViT")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--modes", nargs="+", default=["forward", "forward+backward"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations per side and row")
    parser.add_argument("--iters", type=int, default=3, help="timed iterations per side and row")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: with more, CPU time also counts the threads' spin-waits, "
                             "which dominate on a loaded machine; 0: torch's default)")
    parser.add_argument("--markdown", action="store_true", help="print the final table as markdown")
    args = parser.parse_args(argv)
    return run_tool(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
