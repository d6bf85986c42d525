"""Re-encode a video collection once for cheap, exact reading: short side, keyframe interval, H.264.

Every video under the source folder is decoded with PyAV, resized (short side as asked, aspect
kept, even sizes), and encoded as H.264 yuv420p MP4 with an IDR keyframe every N frames and no
audio, at the source's timing (or a forced constant rate). Seek-based readers then decode at most
N - 1 frames before a wanted one, instead of up to a whole default x264 GOP of 250. See
docs/data.md for the measured file-size / read-cost table behind the default interval.

An output is written under a temporary name unique to its process (``partial_files.py``), verified
(it decodes to its end, holds the expected number of frames, each at the source's time, or at the
forced rate, and every keyframe is an exact restart point), and only then renamed into place; an
existing output is therefore finished and is skipped on a rerun. Its stream index (the loader's
exactness proof) is then stored beside it as ``<output>.index.json``, so that reading it costs no
demux pass. Sources are only read. The worker processes die with the tool, and a signal stops it
within a second, keeping the finished outputs (``videovit.workers``).
"""
from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType

from videovit.data.decoding.index import index_video, open_video, save_index
from videovit.data.decoding.stream import frame_times
from videovit.data.lists import VIDEO_EXTENSIONS, ListEntry, read_list, write_list
from videovit.errors import DecodeError, InputPathError, Interrupted, StorageError, UsageError
from videovit.files import storage_error, storage_failure
from videovit.prep.partial_files import remove_orphaned_partials, written_whole
from videovit.signals import raise_if_interrupted
from videovit.workers import WorkerPool

DEFAULT_SHORT_SIDE = 320
DEFAULT_KEYFRAME_INTERVAL = 16  # the knee of the size / read-cost table in docs/data.md
TIME_BASE = Fraction(1, 90000)  # of outputs that keep the source's timing: any source time to 11 us
TIMING_TOLERANCE = 0.001  # seconds an output frame may start away from its source frame
LIST_COMPANIONS = ("classes.txt", "class_map.csv", "flip_class_swap.txt")  # copied next to rewritten lists


Progress = Callable[[int, int], None]  # (videos done, videos to do)


class PrepareError(Exception):
    """One video could not be prepared; the message says why."""


@dataclass(frozen=True)
class PrepareSettings:
    """How every video is re-encoded (``fps`` None keeps the source timing)."""

    short_side: int = DEFAULT_SHORT_SIDE
    keyframe_interval: int = DEFAULT_KEYFRAME_INTERVAL
    fps: float | None = None
    crf: int = 23
    preset: str = "medium"

    def __post_init__(self) -> None:
        if self.short_side < 2 or self.short_side % 2:
            raise UsageError(f"the short side must be an even number of pixels >= 2, got {self.short_side}")
        if self.keyframe_interval < 1:
            raise UsageError(f"the keyframe interval must be >= 1 frame, got {self.keyframe_interval}")
        if self.fps is not None and self.fps <= 0:
            raise UsageError(f"a forced frame rate must be positive, got {self.fps}")


@dataclass(frozen=True)
class PreparedVideo:
    """An output: its frame count, its (average) rate and, when it keeps the source's timing, when
    each frame starts (seconds from the first; None at a forced constant rate)."""

    frames: int
    fps: float
    times: tuple[float, ...] | None = None


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the shorter side ``short_side`` and the aspect kept, both even."""
    scale = short_side / min(width, height)
    even = lambda value: max(2, 2 * round(value * scale / 2))  # noqa: E731
    return (short_side, even(height)) if width <= height else (even(width), short_side)


def output_path(source: Path, src_root: Path, out_root: Path) -> Path:
    """Where the prepared copy of ``source`` goes: same relative path under ``out_root``, suffix .mp4."""
    return (out_root / source.relative_to(src_root)).with_suffix(".mp4")


def _source_frames(path: Path) -> Iterator[tuple[av.VideoFrame, float]]:
    """Decoded frames of the first video stream with their display time in seconds."""
    with open_video(path) as (container, stream):
        time_base = float(stream.time_base or 0)
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        last, count = None, 0
        try:
            for frame in container.decode(stream):
                if frame.pts is not None and time_base:
                    seconds = frame.pts * time_base
                else:
                    seconds = count / rate if rate else float(count)
                if last is not None and seconds <= last:  # repeated or missing timestamps
                    seconds = last + (1 / rate if rate else 1e-3)
                last = seconds
                count += 1
                yield frame, seconds
        except av.FFmpegError as error:
            raise PrepareError(f"the source stops decoding after {count} frames ({error})") from error


def _constant_rate(frames: Iterator[tuple[av.VideoFrame, float]], fps: float,
                   last_duration: float) -> Iterator[av.VideoFrame]:
    """The frame shown at each tick k / fps (the latest source frame at or before it), up to the
    end of the last source frame (its time plus ``last_duration``)."""
    tick, previous, start, seconds = 0, None, None, 0.0
    for frame, seconds in frames:
        start = seconds if start is None else start
        while previous is not None and start + tick / fps < seconds - 1e-9:
            yield previous
            tick += 1
        previous = frame
    while previous is not None and start is not None and start + tick / fps < seconds + last_duration - 1e-9:
        yield previous
        tick += 1


def _encode(source: Path, partial: Path, settings: PrepareSettings) -> PreparedVideo:
    """Write the re-encoded ``source`` to ``partial``; return its frame count and rate."""
    with open_video(source) as (_, stream):
        width, height = stream.codec_context.width, stream.codec_context.height
        source_rate = Fraction(stream.average_rate or stream.guessed_rate or 0)
    if settings.fps is None and not source_rate:
        raise PrepareError("the source declares no frame rate; force one with --fps")
    rate = Fraction(settings.fps).limit_denominator(1001) if settings.fps else source_rate
    size = output_size(width, height, settings.short_side)
    interval = settings.keyframe_interval
    frames = _source_frames(source)
    with av.open(str(partial), mode="w", format="mp4", options={"movflags": "faststart"}) as output:
        video = output.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        time_base = TIME_BASE if settings.fps is None else 1 / rate
        video.time_base = video.codec_context.time_base = time_base
        video.codec_context.gop_size = interval
        video.codec_context.thread_count = 1  # one process per core already
        video.options = {"crf": str(settings.crf), "preset": settings.preset,
                         "x264-params": f"keyint={interval}:min-keyint={interval}:scenecut=0:open-gop=0"}
        if settings.fps is None:
            timed = ((frame, round(seconds / TIME_BASE)) for frame, seconds in frames)
        else:
            last_duration = 1 / float(source_rate) if source_rate else 1 / float(rate)
            timed = ((frame, tick) for tick, frame in enumerate(_constant_rate(frames, float(rate), last_duration)))
        count, first, times = 0, None, []
        for frame, pts in timed:
            first = pts if first is None else first
            picture = frame.reformat(width=size[0], height=size[1], format="yuv420p", interpolation="BICUBIC")
            picture.pts, picture.time_base = pts - first, time_base
            picture.pict_type = PictureType.NONE  # a source I-frame would otherwise force an extra keyframe
            output.mux(video.encode(picture))
            times.append(float((pts - first) * time_base))
            count += 1
        output.mux(video.encode(None))
    if count == 0:
        raise PrepareError("the source holds no decodable frame")
    return PreparedVideo(count, float(rate), tuple(times) if settings.fps is None else None)


def verify_output(path: Path, expected: PreparedVideo) -> PreparedVideo:
    """The output as read back (frames, average rate, frame times); PrepareError unless it decodes to
    its end with the expected frames, each at its expected time (or at the forced rate), and keyframes
    that are exact restart points.

    Kept timing is checked frame by frame, not by the average rates: FFmpeg derives a source's average
    rate from container fields that differ between a phone's MP4 and our output, and a variable frame
    rate has no single rate to compare (docs/data.md).
    """
    try:
        index = index_video(path)
        written = frame_times(path).starts
        with open_video(path) as (container, stream):
            decoded = sum(1 for _ in container.decode(stream))
    except (DecodeError, av.FFmpegError) as error:
        raise PrepareError(f"the output does not decode ({error})") from error
    counts = {index.header_frames, index.packet_frames, decoded}
    if counts != {expected.frames}:
        raise PrepareError(f"the output holds {sorted(counts)} frames (header, packets, decoded), "
                           f"{expected.frames} were written")
    constant = f"--fps {max(1, round(expected.fps))} re-times the video to a constant rate"
    if expected.times is not None:
        drift = float(abs(written - expected.times).max())
        if drift > TIMING_TOLERANCE:
            raise PrepareError(f"the output's frames start up to {1000 * drift:.1f} ms away from the source's; "
                               f"{constant}")
    elif abs(index.info.fps - expected.fps) > 0.01 * expected.fps:
        raise PrepareError(f"the output plays at {index.info.fps:.3f} fps, not {expected.fps:.3f}")
    if not index.all_keyframes_restart:
        raise PrepareError("the output has keyframes that are not IDR restart points")
    return PreparedVideo(expected.frames, index.info.fps, expected.times)


def prepare_video(source: Path, destination: Path, settings: PrepareSettings) -> PreparedVideo:
    """Re-encode ``source`` into ``destination`` (via a temporary file), verified; PrepareError on failure,
    StorageError when the storage refuses the output (no space, quota, ...: later videos would fail alike)."""
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        with written_whole(destination) as partial:
            prepared = verify_output(partial, _encode(source, partial, settings))  # frames: all the source decodes to
        save_index(destination, index_video(destination))  # the loader's exactness proof (docs/data.md)
        return prepared
    except (DecodeError, av.FFmpegError, OSError) as error:
        failure = storage_failure(error)
        if failure is not None and _refused_output(failure, source):
            raise storage_error(destination, failure) from error
        raise PrepareError(str(error)) from error


def _refused_output(failure: OSError, source: Path) -> bool:
    """Whether the storage's ``failure`` is about writing the output: a file named that is not the source,
    or an errno that only writes meet (a read of the source that fails is that video's failure)."""
    if failure.filename is not None:
        return failure.filename != str(source)
    return failure.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


@dataclass
class PrepareReport:
    """What a run did: outputs written, outputs already there, and ``(source, reason)`` failures."""

    out_root: Path
    prepared: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def summary(self, failures_file: Path | None = None) -> str:
        """One paragraph for the terminal."""
        lines = [f"prepared {self.prepared} videos into {self.out_root}, {self.skipped} were already there, "
                 f"{len(self.failures)} failed"]
        if self.failures and failures_file is not None:
            lines.append(f"failures with their reasons in {failures_file}")
        return "\n".join(lines)


def find_sources(src_root: Path) -> list[Path]:
    """Every video file under ``src_root`` (by extension), in sorted order."""
    found: list[Path] = []
    for folder, subdirs, files in os.walk(src_root):
        subdirs.sort()
        found.extend(Path(folder) / name for name in sorted(files) if Path(name).suffix.lower() in VIDEO_EXTENSIONS)
    return found


def _job(args: tuple[Path, Path, PrepareSettings]) -> tuple[Path, str | None]:
    """Prepare one video; any failure becomes its reason, so one odd file never stops a long run (the
    storage refusing outputs does: it is not the file's fault)."""
    source, destination, settings = args
    try:
        prepare_video(source, destination, settings)
    except PrepareError as error:
        return source, str(error)
    except StorageError:
        raise
    except Exception as error:  # noqa: BLE001 - e.g. a pixel format PyAV cannot convert
        return source, f"{type(error).__name__}: {error}"
    return source, None


def check_roots(src_root: Path, out_root: Path) -> None:
    """FileNotFoundError / ValueError unless ``src_root`` exists and neither folder lies inside the other."""
    if not src_root.is_dir():
        raise InputPathError(f"--src {src_root} is not a folder")
    src, out = src_root.resolve(), out_root.resolve()
    if src == out or src in out.parents or out in src.parents:
        raise UsageError(f"--out {out_root} and --src {src_root} must be separate folders (sources are never "
                         f"modified, and outputs inside the sources would be taken for sources)")


def prepare_tree(src_root: Path, out_root: Path, settings: PrepareSettings, workers: int = 1,
                 progress: Progress | None = None) -> PrepareReport:
    """Prepare every video under ``src_root`` into ``out_root`` with ``workers`` processes.

    ``progress(done, total)`` is called after each video. Outputs that exist are skipped; two
    sources mapping to one output (``a.webm`` and ``a.mp4``) make the second a failure. A signal
    raises ``Interrupted`` within a second, saying how many were prepared; the finished outputs stay
    and no partial file is left, so a rerun continues.
    """
    check_roots(src_root, out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    remove_orphaned_partials(out_root)  # left by a killed run
    report = PrepareReport(out_root)
    jobs: list[tuple[Path, Path, PrepareSettings]] = []
    claimed: dict[Path, Path] = {}
    for source in find_sources(src_root):
        destination = output_path(source, src_root, out_root)
        if destination in claimed:
            report.failures.append((str(source), f"{claimed[destination]} already maps to {destination}"))
        elif destination.exists():
            report.skipped += 1
        else:
            jobs.append((source, destination, settings))
        claimed.setdefault(destination, source)
    done = 0
    try:
        if workers == 1:
            for job in jobs:  # in this process: a signal stops the encode at once
                raise_if_interrupted()  # (or here, if Python swallowed its first raise)
                source, reason = _job(job)
                done = _record(report, source, reason, done, len(jobs), progress)
        else:
            with WorkerPool(_job, workers) as pool:
                for _, (source, reason) in pool.run(jobs):
                    done = _record(report, source, reason, done, len(jobs), progress)
    except Interrupted as stop:
        remove_orphaned_partials(out_root)  # the killed workers' files
        raise Interrupted(stop.signum, f"{stop} after {done} of {len(jobs)} videos: the {report.prepared} prepared "
                                       f"are kept in {out_root}, no partial file is left; rerun the same command "
                                       f"to continue (it skips them)") from None
    except StorageError as refused:
        remove_orphaned_partials(out_root)
        raise StorageError(refused.path, refused.reason,
                           f"{refused.remedy}, then rerun the same command to continue (it skips them)",
                           f"the {report.prepared} videos prepared so far are kept in {out_root}, no partial file "
                           f"is left") from None
    report.failures.sort()
    return report


def _record(report: PrepareReport, source: Path, reason: str | None, done: int, total: int,
            progress: Progress | None) -> int:
    if reason is None:
        report.prepared += 1
    else:
        report.failures.append((str(source), reason))
    if progress is not None:
        progress(done + 1, total)
    return done + 1


def rewrite_list(list_file: Path, out_dir: Path, out_root: Path, separator: str = " ") -> tuple[Path, int, int]:
    """Copy ``list_file`` into ``out_dir`` with every path ending in .mp4 (the prepared copy).

    Videos without a prepared copy under ``out_root`` are left out. The classes file (and SSV2's
    class map and flip pairs) next to the list are copied too. Returns (new list, kept, listed).
    """
    entries = read_list(list_file, separator)
    kept = [ListEntry(str(Path(entry.path).with_suffix(".mp4")), entry.label) for entry in entries]
    kept = [entry for entry in kept if (out_root / entry.path).is_file()]
    destination = out_dir / list_file.name
    write_list(destination, kept, separator)
    for name in LIST_COMPANIONS:
        companion = list_file.parent / name
        if companion.is_file():
            (out_dir / name).write_bytes(companion.read_bytes())
    return destination, len(kept), len(entries)


__all__ = [
    "DEFAULT_KEYFRAME_INTERVAL", "DEFAULT_SHORT_SIDE", "PrepareError", "PrepareReport", "PrepareSettings",
    "PreparedVideo", "check_roots", "find_sources", "output_path", "output_size", "prepare_tree", "prepare_video",
    "rewrite_list", "verify_output",
]
