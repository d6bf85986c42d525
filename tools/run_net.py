"""Train and/or test a video model: ``python tools/run_net.py --cfg configs/K400/regionvit_s.yaml [KEY VALUE ...]``.

Multi-process: ``torchrun --nproc_per_node N tools/run_net.py --cfg ...`` (add --nnodes/--node_rank/
--rdzv_endpoint for several machines). Configuration, data-list and checkpoint problems are printed
without a traceback as one ``error:`` line and exit with status 2; a training stopped by a non-finite
loss prints its report (step, videos, last good checkpoint) the same way and exits with status 1.
SIGTERM or SIGINT (Ctrl-C) during training finishes the current step, saves a checkpoint the same
command resumes from, and exits with status 143 or 130; in any other phase it stops at once (at the
next batch while data loads); one line says what was kept; a second signal exits at once.
"""
from __future__ import annotations

import argparse
import sys

from videovit.cli import run_tool
from videovit.config import add_config_arguments, config_from_args


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the job; the status of ``videovit.cli.run_tool``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    args = parser.parse_args(argv)

    def run_job() -> None:
        cfg = config_from_args(args)  # config mistakes are reported before torch is imported
        from videovit.engine import run

        run(cfg)

    return run_tool(run_job, interrupted="stopped during start-up, nothing was written; rerun the same command")


if __name__ == "__main__":
    sys.exit(main())
