"""Train and/or test a video model: ``python tools/run_net.py --cfg configs/K400/regionvit_s.yaml [KEY VALUE ...]``.

Multi-process: ``torchrun --nproc_per_node N tools/run_net.py --cfg ...`` (add --nnodes/--node_rank/
--rdzv_endpoint for several machines). Configuration, data-list and checkpoint problems are printed
without a traceback and exit with status 2; a training stopped by a non-finite loss prints its report
(step, videos, last good checkpoint) the same way and exits with status 1. SIGTERM or SIGINT (Ctrl-C)
finishes the current step, saves a checkpoint the same command resumes from, and exits with status
143 or 130; a second signal exits at once.
"""
from __future__ import annotations

import argparse
import sys

from videovit.config import add_config_arguments, config_from_args
from videovit.engine import run
from videovit.engine.interrupts import RunInterrupted
from videovit.engine.loaders import DataSetupError
from videovit.engine.trainer import NonFiniteLossError
from videovit.utils.cli import USER_ERRORS, exit_status


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the job; 2 on user errors, 1 on a non-finite loss, 128 + signal
    number when a signal stopped it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return exit_status(lambda: run(config_from_args(args)), USER_ERRORS + (DataSetupError,))
    except NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except RunInterrupted as stop:
        return stop.status


if __name__ == "__main__":
    sys.exit(main())
