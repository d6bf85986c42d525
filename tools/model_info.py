"""Print the parameters and GFLOPs of a configured model on one test clip.

    python tools/model_info.py --cfg configs/K400/regionvit_s.yaml [KEY VALUE ...]
                               [--per-module [DEPTH]]
"""
from __future__ import annotations

import argparse
import sys

from videovit.cli import run_tool
from videovit.config import add_config_arguments, config_from_args


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and print the model summary; 2 on a user's mistake."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    parser.add_argument("--per-module", nargs="?", const=2, type=int, default=None, metavar="DEPTH",
                        help="also print a per-module table down to DEPTH (default 2); put it after "
                             "any bare KEY VALUE overrides")
    args = parser.parse_args(argv)

    def summarise() -> None:
        cfg = config_from_args(args)
        from videovit.bench.flops import model_summary

        print(model_summary(cfg, args.per_module))

    return run_tool(summarise)


if __name__ == "__main__":
    sys.exit(main())
