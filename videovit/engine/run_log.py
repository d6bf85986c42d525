"""The run's log: console + ``OUTPUT_DIR/log.txt`` on rank 0, JSON stats lines, TensorBoard, progress.

Every module logs through the ``videovit`` logger hierarchy. Rank 0 writes INFO and above to the
console and the log file; other ranks print only warnings and errors, tagged with their rank, so a
video failing on any process is still seen. The console is line-buffered, so output redirected to a
file reads in the order things happened; ``log_failure`` puts a run's error (with the traceback
when it is a bug) into log.txt, as its last line, while the command line prints it once on stderr.
``StatsWriter`` appends one JSON object per line to ``OUTPUT_DIR/stats.jsonl`` (and TensorBoard
scalars when asked); ``ProgressMeter`` turns step timings into the progress line (clips/s, data-wait
vs compute time, ETA).
"""
from __future__ import annotations

import datetime
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

from videovit.cli import line_buffered_console
from videovit.engine.checkpoint_files import atomic_write

LOGGER_NAME = "videovit"
LOG_FILE = "log.txt"
STATS_FILE = "stats.jsonl"
_FORMAT = "[%(asctime)s] %(message)s"
_DATE_FORMAT = "%m-%d %H:%M:%S"
FILE_ONLY = "videovit_file_only"  # LogRecord attribute: keep the record off the console


def setup_logging(output_dir: str | Path, rank: int = 0) -> logging.Logger:
    """Configure the ``videovit`` logger for this process (replacing a previous run's handlers)."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in [h for h in logger.handlers if getattr(h, "_videovit_run", False)]:
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = False
    logger.setLevel(logging.INFO)
    line_buffered_console()
    console = logging.StreamHandler(sys.stdout)
    console.addFilter(lambda record: not getattr(record, FILE_ONLY, False))
    handlers: list[logging.Handler] = [console]
    if rank == 0:
        console.setFormatter(logging.Formatter(_FORMAT, _DATE_FORMAT))
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        log_file = logging.FileHandler(Path(output_dir) / LOG_FILE, mode="a", encoding="utf-8")
        log_file.setFormatter(logging.Formatter(_FORMAT, _DATE_FORMAT))
        handlers.append(log_file)
    else:
        console.setLevel(logging.WARNING)
        console.setFormatter(logging.Formatter(f"[%(asctime)s rank {rank}] %(message)s", _DATE_FORMAT))
    for handler in handlers:
        handler._videovit_run = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    return logger


def log_failure(log: logging.Logger, error: BaseException, with_traceback: bool) -> None:
    """Write a user error's details, then ``error: <message>`` (after its traceback when
    ``with_traceback``) to log.txt only, as its last lines: the command line prints the error on
    stderr itself, so the console does not show it twice."""
    for line in getattr(error, "details", ()):
        log.error(line, extra={FILE_ONLY: True})
    log.error(f"error: {error}" if str(error) else f"error: {type(error).__name__}",
              exc_info=error if with_traceback else None, extra={FILE_ONLY: True})


def log_interruption(log: logging.Logger, stop: BaseException) -> None:
    """Write the line of a run stopped by a signal to log.txt only, as its last line (the command line
    prints it on stderr)."""
    log.warning(str(stop), extra={FILE_ONLY: True})


def get_logger() -> logging.Logger:
    """The project's logger (configured by ``setup_logging``)."""
    return logging.getLogger(LOGGER_NAME)


class StatsWriter:
    """Appends ``{"kind": ..., **stats}`` JSON lines to stats.jsonl and mirrors numbers to TensorBoard.

    Inactive (writes nothing) on every rank but 0.
    """

    def __init__(self, output_dir: str | Path, active: bool, tensorboard: bool) -> None:
        self.active = active
        self.path = Path(output_dir) / STATS_FILE
        self._board_dir = Path(output_dir) / "tensorboard" if active and tensorboard else None
        self._board = self._open_board() if self._board_dir is not None else None

    def _open_board(self, purge_step: int | None = None) -> Any:
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(self._board_dir), purge_step=purge_step)

    def rewind(self, step: int) -> None:
        """Forget the records after global ``step``: a resumed run replays those steps and writes
        them again, so each step keeps one record (JSON lines and TensorBoard alike)."""
        if not self.active:
            return
        if self.path.is_file():
            lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
            kept = [line for line in lines if _record_step(line) <= step]
            if len(kept) < len(lines):
                atomic_write(self.path, lambda stream: stream.write("".join(kept).encode("utf-8")))
        if self._board is not None:
            self._board.close()
            self._board = self._open_board(purge_step=step + 1)

    def write(self, kind: str, stats: dict[str, Any], step: int) -> None:
        """Record ``stats`` of ``kind`` (e.g. "train", "train_epoch", "val") at global ``step``."""
        if not self.active:
            return
        record = {"kind": kind, "global_step": step, **stats}
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(record, default=_json_default) + "\n")
        if self._board is not None:
            for key, value in stats.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                    self._board.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self._board is not None:
            self._board.close()
            self._board = None


def _record_step(line: str) -> float:
    """The global step of a stats.jsonl line; a torn last line (killed mid-write) counts as after
    every step, so that rewinding drops it."""
    try:
        return json.loads(line)["global_step"]
    except (ValueError, KeyError, TypeError):
        return math.inf


def _json_default(value: Any) -> Any:
    """Numbers from numpy/torch as plain Python numbers in the JSON lines."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to {STATS_FILE}")


class ProgressMeter:
    """Timing of one epoch's micro-batches (data wait, compute, throughput, ETA); a resumed epoch
    continues from the totals its checkpoint carried (``totals()``), so epoch figures cover it whole."""

    def __init__(self, steps_per_epoch: int, steps_after_epoch: int, world_size: int,
                 carried: dict[str, float] | None = None) -> None:
        carried = carried or {}
        self.steps_per_epoch = steps_per_epoch
        self.steps_after_epoch = steps_after_epoch
        self.world_size = world_size
        self.seconds_before = float(carried.get("seconds", 0.0))
        self.data_time = float(carried.get("data_seconds", 0.0))
        self.compute_time = float(carried.get("compute_seconds", 0.0))
        self.clips = int(carried.get("clips", 0))
        self.start = time.perf_counter()
        self._mark = self.start

    def data_ready(self) -> None:
        """Call when a batch arrived: the time since the previous mark was spent waiting for data."""
        now = time.perf_counter()
        self.data_time += now - self._mark
        self._mark = now

    def step_done(self, local_clips: int) -> None:
        """Call after the batch's forward/backward: the time since ``data_ready`` was compute."""
        now = time.perf_counter()
        self.compute_time += now - self._mark
        self._mark = now
        self.clips += local_clips * self.world_size

    def totals(self) -> dict[str, float]:
        """Seconds, data/compute seconds and clips of the epoch so far (what a checkpoint carries)."""
        return {"seconds": self.seconds_before + time.perf_counter() - self.start,
                "data_seconds": self.data_time, "compute_seconds": self.compute_time, "clips": self.clips}

    def stats(self, steps_done: int) -> dict[str, float]:
        """clips/s over all processes, mean data/compute seconds per step, and ETA seconds, after
        ``steps_done`` steps of the epoch."""
        elapsed = max(self.totals()["seconds"], 1e-9)
        per_step = elapsed / max(steps_done, 1)
        remaining = self.steps_per_epoch - steps_done + self.steps_after_epoch
        return {"clips_per_s": self.clips / elapsed,
                "data_s": self.data_time / max(steps_done, 1),
                "compute_s": self.compute_time / max(steps_done, 1),
                "eta_s": per_step * max(remaining, 0)}


def format_duration(seconds: float) -> str:
    """``3725.2`` -> ``"1:02:05"``."""
    return str(datetime.timedelta(seconds=int(round(seconds))))


__all__ = ["LOGGER_NAME", "LOG_FILE", "ProgressMeter", "STATS_FILE", "StatsWriter", "format_duration",
           "get_logger", "log_failure", "setup_logging"]
