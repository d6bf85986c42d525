"""Print the parameters and GFLOPs of a configured model on one test clip.

    python tools/model_info.py --cfg configs/K400/regionvit_s.yaml [KEY VALUE ...]
                               [--per-module [DEPTH]]
"""
from __future__ import annotations

import argparse
import sys

from videovit.config import add_config_arguments, config_from_args
from videovit.utils.cli import exit_status
from videovit.utils.flops import model_summary


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and print the model summary; 2 on a user's mistake."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    parser.add_argument("--per-module", nargs="?", const=2, type=int, default=None, metavar="DEPTH",
                        help="also print a per-module table down to DEPTH (default 2); put it after "
                             "any bare KEY VALUE overrides")
    args = parser.parse_args(argv)
    return exit_status(lambda: print(model_summary(config_from_args(args), args.per_module)))


if __name__ == "__main__":
    sys.exit(main())
