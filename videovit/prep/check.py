"""Scan the videos of a list before training: which cannot be decoded, are truncated or too short.

Each video is probed (a frame count from its packets) and the frames a centred uniform clip would
use, plus the last frame, are decoded, under the same timeout as in training. A video whose header
promises more frames than it holds (a cut-off download with its index at the front) is reported as
truncated with the number that decode: training would otherwise silently use only that prefix.
Scanning runs in a process pool; every worker decodes its own files, so nothing is shared between
processes. See docs/data.md.
"""
from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from videovit.data.datasets import DECODE_FAILURES, failure_reason, time_limit
from videovit.data.decoding import check_backend, probe_video, read_frames
from videovit.data.decoding.index import index_video
from videovit.data.lists import ListEntry, read_list, write_list
from videovit.data.sampling import uniform_indices

SHORT = "short"
TRUNCATED = "truncated"


@dataclass(frozen=True)
class ScanSettings:
    """What a usable video must satisfy and how to decode it.

    ``header_slack``: frames a header may promise beyond those in the file before the video counts
    as truncated (one real .mov declares one frame more than it holds, docs/data.md).
    """

    min_frames: int = 8
    backend: str = "auto"
    timeout: float = 60.0
    header_slack: int = 1


def check_video(path: str, settings: ScanSettings) -> str | None:
    """None when ``path`` decodes whole and has at least ``min_frames`` frames, else the reason."""
    try:
        with time_limit(settings.timeout):
            info = probe_video(path, settings.backend)
            if info.num_frames < settings.min_frames:
                return f"{SHORT}: {info.num_frames} decodable frames, fewer than {settings.min_frames}"
            indices = uniform_indices(info.num_frames, settings.min_frames, train=False)
            read_frames(path, sorted(set(indices) | {info.num_frames - 1}), settings.backend)
            index = index_video(path)  # the probe's, reused
    except DECODE_FAILURES as error:
        return failure_reason(error)
    held = index.packet_frames + index.discarded_packets  # frames an edit list hides are not missing
    if index.header_frames - held > settings.header_slack:
        return (f"{TRUNCATED}: the header declares {index.header_frames} frames but only "
                f"{info.num_frames} decode")
    return None


@dataclass
class CheckReport:
    """Result of a scan: the list's entries, their full paths and ``(path, reason)`` for each problem."""

    list_file: Path
    entries: list[ListEntry]
    paths: list[str]
    problems: list[tuple[str, str]]

    @property
    def checked(self) -> int:
        """Videos checked."""
        return len(self.paths)

    def clean_entries(self) -> list[ListEntry]:
        """The list's entries without the problem videos, in list order."""
        broken = {path for path, _ in self.problems}
        return [entry for entry, path in zip(self.entries, self.paths, strict=True) if path not in broken]

    def summary(self, problems_file: Path | None = None) -> str:
        """One paragraph: counts of good, undecodable, truncated and short videos, where the details are."""
        short = sum(reason.startswith(SHORT) for _, reason in self.problems)
        truncated = sum(reason.startswith(TRUNCATED) for _, reason in self.problems)
        lines = [f"checked {self.checked} videos of {self.list_file}: {self.checked - len(self.problems)} ok, "
                 f"{len(self.problems) - short - truncated} undecodable, {truncated} truncated, "
                 f"{short} too short"]
        kinds = Counter(reason.split(":")[0] if reason.startswith((SHORT, TRUNCATED)) else reason.split(" (")[0]
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
    entries = read_list(list_file, separator)
    paths = [str(Path(path_prefix) / entry.path) for entry in entries]
    workers = workers or os.cpu_count() or 1
    check_backend(settings.backend)  # an unknown or unusable backend fails here, once
    if workers == 1:
        reasons = [check_video(path, settings) for path in paths]
    else:
        with ProcessPoolExecutor(workers) as pool:
            chunk = max(1, len(paths) // (4 * workers))
            reasons = list(pool.map(_check_one, [(path, settings) for path in paths], chunksize=chunk))
    problems = [(path, reason) for path, reason in zip(paths, reasons, strict=True) if reason is not None]
    return CheckReport(list_file, entries, paths, problems)


def write_problems(path: str | Path, problems: list[tuple[str, str]]) -> None:
    """Write ``path<TAB>reason`` lines, one per problem video (an empty file when all are fine)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{video}\t{reason}\n" for video, reason in problems), encoding="utf-8")


def write_clean_list(path: str | Path, report: CheckReport, separator: str = " ") -> int:
    """Write the checked list without its problem videos to ``path``; return how many lines it has."""
    clean = report.clean_entries()
    write_list(path, clean, separator)
    return len(clean)


__all__ = ["CheckReport", "ScanSettings", "check_list", "check_video", "write_clean_list", "write_problems"]
