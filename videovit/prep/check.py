"""Scan the videos of a list before training: which cannot be decoded, are truncated or too short.

Each video is probed (a frame count from its packets) and the frames a centred uniform clip would
use, plus the last frame, are decoded, under the same timeout as in training. A file shorter than
the sizes its container declares (AVI, MP4/MOV, Matroska/WebM) lost its end: it is reported as
truncated with the number of frames that decode, since training would otherwise silently use only
that prefix. Frame counts alone do not tell (empty AVI chunks for repeated frames, edit lists;
``container_size.py``). A video the chosen backend refuses as not frame-exact but PyAV reads is
reported as such, not as broken: it stays in the clean list. Scanning runs in worker processes that
die with the tool (``videovit.workers``). See docs/data.md, "Checking videos".
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from videovit.data.datasets import DECODE_FAILURES, failure_reason, time_limit
from videovit.data.decoding import check_backend, probe_video, read_frames
from videovit.data.decoding.container_size import declared_length
from videovit.data.decoding.index import index_video
from videovit.data.lists import ListEntry, read_list, write_list
from videovit.data.sampling import uniform_indices
from videovit.errors import Interrupted
from videovit.workers import WorkerPool

SHORT = "short"
TRUNCATED = "truncated"
NOT_EXACT = "not exact with"  # a backend's refusal of a video PyAV reads: usable, not broken
EXACT_READER = "pyav"


@dataclass(frozen=True)
class ScanSettings:
    """What a usable video must satisfy and how to decode it."""

    min_frames: int = 8
    backend: str = "auto"
    timeout: float = 60.0


def _read_problem(path: str, settings: ScanSettings, backend: str) -> str | None:
    """None when ``backend`` decodes the frames a clip and the end need and the file is whole and long
    enough, else the reason."""
    try:
        with time_limit(settings.timeout):
            info = probe_video(path, backend)
            declared, size = declared_length(path), Path(path).stat().st_size
            if declared is not None and declared > size:
                header = index_video(path).header_frames  # the probe's, reused
                of = f" of the {header} it declares" if header else ""
                return (f"{TRUNCATED}: the file has {size} bytes where its container declares {declared}; "
                        f"{info.num_frames} frames{of} decode")
            if info.num_frames < settings.min_frames:
                return f"{SHORT}: {info.num_frames} decodable frames, fewer than {settings.min_frames}"
            indices = uniform_indices(info.num_frames, settings.min_frames, train=False)
            read_frames(path, sorted(set(indices) | {info.num_frames - 1}), backend)
    except DECODE_FAILURES as error:
        return failure_reason(error)
    return None


def check_video(path: str, settings: ScanSettings) -> str | None:
    """None when ``path`` decodes whole and has at least ``min_frames`` frames, else the reason. What
    the chosen backend cannot read is read again with PyAV, the exact reader: a video PyAV reads is
    "not exact with BACKEND: why; readable with pyav", otherwise PyAV's diagnosis is the reason."""
    problem = _read_problem(path, settings, settings.backend)
    if problem is None or settings.backend in (EXACT_READER, "auto"):
        return problem
    exact_problem = _read_problem(path, settings, EXACT_READER)
    if exact_problem is not None:
        return exact_problem
    return f"{NOT_EXACT} {settings.backend}: {problem.split('; use ')[0]}; readable with {EXACT_READER}"


def is_unusable(reason: str) -> bool:
    """True for a problem that makes a video unusable (not a backend's refusal of a readable one)."""
    return not reason.startswith(NOT_EXACT)


@dataclass
class CheckReport:
    """Result of a scan: the list's entries, their full paths and ``(path, reason)`` for each problem."""

    list_file: Path
    entries: list[ListEntry]
    paths: list[str]
    problems: list[tuple[str, str]]
    backend: str = "auto"

    @property
    def checked(self) -> int:
        """Videos checked."""
        return len(self.paths)

    @property
    def unusable(self) -> list[tuple[str, str]]:
        """The problems that make a video unusable (undecodable, truncated, too short)."""
        return [(path, reason) for path, reason in self.problems if is_unusable(reason)]

    def clean_entries(self) -> list[ListEntry]:
        """The list's entries without the unusable videos, in list order."""
        broken = {path for path, _ in self.unusable}
        return [entry for entry, path in zip(self.entries, self.paths, strict=True) if path not in broken]

    def summary(self, problems_file: Path | None = None) -> str:
        """One paragraph: counts of good, undecodable, truncated, short and not-exact videos, where the
        details are and what to do about them."""
        short = sum(reason.startswith(SHORT) for _, reason in self.problems)
        truncated = sum(reason.startswith(TRUNCATED) for _, reason in self.problems)
        not_exact = len(self.problems) - len(self.unusable)
        undecodable = len(self.unusable) - short - truncated
        lines = [f"checked {self.checked} videos of {self.list_file}: {self.checked - len(self.problems)} ok, "
                 f"{undecodable} undecodable, {truncated} truncated, {short} too short"
                 + (f", {not_exact} not exact with {self.backend} (readable with {EXACT_READER})" if not_exact else "")]
        kinds = Counter(reason.split(":")[0] if reason.startswith((SHORT, TRUNCATED)) else
                        f"{NOT_EXACT} {self.backend}" if not is_unusable(reason) else reason.split(" (")[0]
                        for _, reason in self.problems)
        lines.extend(f"  {count:6d} x {kind}" for kind, count in kinds.most_common())
        if problems_file is not None and self.problems:
            lines.append(f"details in {problems_file}")
        if self.unusable:
            lines.append("remove the undecodable, truncated and too short videos from the list before training "
                         "(--write-clean-list writes it without them)")
        if not_exact:
            lines.append(f"the {not_exact} videos {self.backend} refuses are fine: train with "
                         f"DATA.DECODING_BACKEND auto, which reads them with {EXACT_READER}")
        return "\n".join(lines)


def _check_one(args: tuple[str, ScanSettings]) -> str | None:
    return check_video(*args)


def check_list(list_file: str | Path, path_prefix: str | Path = "", separator: str = " ",
               settings: ScanSettings = ScanSettings(), workers: int | None = None) -> CheckReport:
    """Check every video of ``list_file`` (paths relative to ``path_prefix``) with ``workers`` processes;
    a signal stops it within a second (``Interrupted`` says how far it got; nothing is written)."""
    list_file = Path(list_file)
    entries = read_list(list_file, separator)
    paths = [str(Path(path_prefix) / entry.path) for entry in entries]
    workers = workers or os.cpu_count() or 1
    check_backend(settings.backend)  # an unknown or unusable backend fails here, once
    reasons: list[str | None] = [None] * len(paths)
    done = 0
    try:
        if workers == 1:
            for index, path in enumerate(paths):  # in this process: a signal stops it at once
                reasons[index] = check_video(path, settings)
                done += 1
        else:
            with WorkerPool(_check_one, workers) as pool:
                for index, reason in pool.run([(path, settings) for path in paths]):
                    reasons[index] = reason
                    done += 1
    except Interrupted as stop:
        raise Interrupted(stop.signum, f"{stop} after checking {done} of {len(paths)} videos: no report was "
                                       f"written; rerun the same command to check them all") from None
    problems = [(path, reason) for path, reason in zip(paths, reasons, strict=True) if reason is not None]
    return CheckReport(list_file, entries, paths, problems, settings.backend)


def write_problems(path: str | Path, problems: list[tuple[str, str]]) -> None:
    """Write ``path<TAB>reason`` lines, one per problem video (an empty file when all are fine)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{video}\t{reason}\n" for video, reason in problems), encoding="utf-8")


def write_clean_list(path: str | Path, report: CheckReport, separator: str = " ") -> int:
    """Write the checked list without its unusable videos to ``path``; return how many lines it has."""
    clean = report.clean_entries()
    write_list(path, clean, separator)
    return len(clean)


__all__ = ["CheckReport", "ScanSettings", "check_list", "check_video", "is_unusable", "write_clean_list",
           "write_problems"]
