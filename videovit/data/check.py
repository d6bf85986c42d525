"""Scan the videos of a list before training: which cannot be decoded, which are too short.

Each video is probed (a trustworthy frame count) and the frames a centred uniform clip would use,
plus the last frame, are decoded, under the same timeout as in training. Scanning runs in a process
pool; every worker decodes its own files, so nothing is shared between processes.
"""
from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from videovit.data.datasets import DECODE_FAILURES, failure_reason, time_limit
from videovit.data.decoding import probe_video, read_frames, set_default_backend
from videovit.data.lists import read_list
from videovit.data.sampling import uniform_indices

SHORT = "short"


@dataclass(frozen=True)
class ScanSettings:
    """What a usable video must satisfy and how to decode it."""

    min_frames: int = 8
    backend: str = "auto"
    timeout: float = 60.0


def check_video(path: str, settings: ScanSettings) -> str | None:
    """None when ``path`` decodes and has at least ``min_frames`` frames, else the reason."""
    try:
        with time_limit(settings.timeout):
            info = probe_video(path, settings.backend)
            if info.num_frames < settings.min_frames:
                return f"{SHORT}: {info.num_frames} decodable frames, fewer than {settings.min_frames}"
            indices = uniform_indices(info.num_frames, settings.min_frames, train=False)
            read_frames(path, sorted(set(indices) | {info.num_frames - 1}), settings.backend)
    except DECODE_FAILURES as error:
        return failure_reason(error)
    return None


@dataclass
class CheckReport:
    """Result of a scan: how many videos were checked and ``(path, reason)`` for each problem."""

    list_file: Path
    checked: int
    problems: list[tuple[str, str]]

    def summary(self, problems_file: Path | None = None) -> str:
        """One paragraph: counts of good, undecodable and short videos, and where the details are."""
        short = sum(reason.startswith(SHORT) for _, reason in self.problems)
        lines = [f"checked {self.checked} videos of {self.list_file}: {self.checked - len(self.problems)} ok, "
                 f"{len(self.problems) - short} undecodable, {short} too short"]
        kinds = Counter(reason.split(":")[0] if reason.startswith(SHORT) else reason.split(" (")[0]
                        for _, reason in self.problems)
        lines.extend(f"  {count:6d} x {kind}" for kind, count in kinds.most_common())
        if problems_file is not None and self.problems:
            lines.append(f"details in {problems_file}; remove these videos from the list before training")
        return "\n".join(lines)


def _check_one(args: tuple[str, ScanSettings]) -> str | None:
    return check_video(*args)


def check_list(list_file: str | Path, path_prefix: str | Path = "", separator: str = " ",
               settings: ScanSettings = ScanSettings(), workers: int | None = None) -> CheckReport:
    """Check every video of ``list_file`` (paths relative to ``path_prefix``) with ``workers`` processes."""
    list_file = Path(list_file)
    paths = [str(Path(path_prefix) / entry.path) for entry in read_list(list_file, separator)]
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        set_default_backend(settings.backend)
        reasons = [check_video(path, settings) for path in paths]
    else:
        with ProcessPoolExecutor(workers, initializer=set_default_backend, initargs=(settings.backend,)) as pool:
            chunk = max(1, len(paths) // (4 * workers))
            reasons = list(pool.map(_check_one, [(path, settings) for path in paths], chunksize=chunk))
    problems = [(path, reason) for path, reason in zip(paths, reasons) if reason is not None]
    return CheckReport(list_file, len(paths), problems)


def write_problems(path: str | Path, problems: list[tuple[str, str]]) -> None:
    """Write ``path<TAB>reason`` lines, one per problem video (an empty file when all are fine)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{video}\t{reason}\n" for video, reason in problems), encoding="utf-8")


__all__ = ["CheckReport", "ScanSettings", "check_list", "check_video", "write_problems"]
