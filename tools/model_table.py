"""Measure the models of the given configs and write the README's model table.

    python tools/model_table.py configs/K400/*.yaml [--readme README.md]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from videovit.utils.model_table import measure_config, render_table, replace_table


def main() -> None:
    """Print the table; with ``--readme``, also write it between the file's markers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", help="config files, one table row each")
    parser.add_argument("--readme", type=Path, help="file whose model-table markers get the table")
    args = parser.parse_args()
    rows = []
    for path in args.configs:
        rows.append(measure_config(path))
        print(f"measured {path}", flush=True)
    table = render_table(rows)
    print(table)
    if args.readme:
        args.readme.write_text(replace_table(args.readme.read_text(), table))


if __name__ == "__main__":
    main()
