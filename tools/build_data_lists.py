"""Build the project's list files (data_lists/<dataset>/) from official annotations or existing lists.

    python tools/build_data_lists.py k400 --annotations ANN_DIR --videos VIDEO_ROOT [--out data_lists/k400]
        [--labelled-test-csv FILE] [--separator ' ']
    python tools/build_data_lists.py ssv2 --annotations ANN_DIR --videos VIDEO_ROOT [--out data_lists/ssv2]
        [--flip-swap]
    python tools/build_data_lists.py import --lists DIR --classes classes.txt --videos VIDEO_ROOT
        --out data_lists/NAME

k400 reads train.csv and validate.csv (the official Kinetics-400 CSVs); ssv2 reads the
something-something-v2-{labels,train,validation}.json files (classes.txt: the template names in
official-id order; class_map.csv: the official id of every label, also for a subset whose ids have
gaps; --flip-swap: flip_class_swap.txt, the left/right label pairs); import validates PySlowFast-style
{train,val,test}.csv lists. List paths are relative to VIDEO_ROOT: set DATA.PATH_PREFIX to it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from videovit.cli import run_tool


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, build the lists and print the report; 2 on bad annotations or paths."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("k400", "ssv2"):
        command = commands.add_parser(name, help=f"from the official {name.upper()} annotations")
        command.add_argument("--annotations", required=True, type=Path, help="folder of the official files")
        command.add_argument("--out", type=Path, default=Path("data_lists") / name)
    commands.choices["k400"].add_argument("--labelled-test-csv", type=Path, default=None,
                                          help="labelled test CSV (default: test.csv = the validation split)")
    commands.choices["ssv2"].add_argument("--flip-swap", action="store_true",
                                          help="also write flip_class_swap.txt (left/right label pairs) "
                                               "for DATA.FLIP_CLASS_SWAP")
    imported = commands.add_parser("import", help="validate existing PySlowFast-style lists")
    imported.add_argument("--lists", required=True, type=Path, help="folder with train.csv, val.csv[, test.csv]")
    imported.add_argument("--classes", required=True, type=Path, help="classes.txt: line i = name of class i")
    imported.add_argument("--out", required=True, type=Path)
    for command in commands.choices.values():
        command.add_argument("--videos", required=True, type=Path, help="video root (DATA.PATH_PREFIX)")
        command.add_argument("--separator", default=" ", help="path/label separator of the lists")
    args = parser.parse_args(argv)

    def build() -> None:
        from videovit.prep.annotations import build_k400_lists, build_ssv2_lists, import_lists

        if args.command == "k400":
            report = build_k400_lists(args.annotations, args.videos, args.out, args.separator,
                                      args.labelled_test_csv)
        elif args.command == "ssv2":
            report = build_ssv2_lists(args.annotations, args.videos, args.out, args.separator, args.flip_swap)
        else:
            report = import_lists(args.lists, args.classes, args.videos, args.out, args.out.name,
                                  args.separator)
        print(report.summary())

    return run_tool(build)


if __name__ == "__main__":
    sys.exit(main())
