"""Write the synthetic Kinetics-format dataset: `python tools/make_synthetic_data.py --root data/synthetic`.

See videovit/prep/synthetic.py for the classes, the layout and the options (`--help`).
"""
from __future__ import annotations

import sys

from videovit.cli import run_tool


def main(argv: list[str] | None = None) -> int:
    """Write the dataset the command line describes; the status of ``videovit.cli.run_tool``."""

    def write() -> None:
        from videovit.prep.synthetic import main as write_dataset

        write_dataset(argv)

    return run_tool(write)


if __name__ == "__main__":
    sys.exit(main())
