"""Measure the models of the given configs and write the README's model table.

    python tools/model_table.py configs/K400/*.yaml [--readme README.md]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from videovit.bench.model_table import measure_config, render_table, replace_table
from videovit.cli import run_tool


def write_table(configs: list[str], readme: Path | None) -> None:
    """Measure every config, print the table; with ``readme``, also write it between its markers."""
    if readme is not None and not readme.is_file():
        raise FileNotFoundError(f"--readme {readme} does not exist")
    rows = []
    for path in configs:
        rows.append(measure_config(path))
        print(f"measured {path}", flush=True)
    table = render_table(rows)
    print(table)
    if readme is not None:
        readme.write_text(replace_table(readme.read_text(), table))


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and write the table; 2 on a user's mistake (missing config, no markers)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", help="config files, one table row each")
    parser.add_argument("--readme", type=Path, help="file whose model-table markers get the table")
    args = parser.parse_args(argv)
    return run_tool(lambda: write_table(args.configs, args.readme))


if __name__ == "__main__":
    sys.exit(main())
