"""Write the synthetic Kinetics-format dataset: `python tools/make_synthetic_data.py --root data/synthetic`.

See videovit/data/synthetic.py for the classes, the layout and the options (`--help`).
"""
from __future__ import annotations

import sys

from videovit.data.synthetic import main
from videovit.utils.cli import exit_status

if __name__ == "__main__":
    sys.exit(exit_status(main))
