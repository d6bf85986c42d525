"""The embedded default data: synthetic clips in the exact on-disk layout of Kinetics-400.

Two tasks share one renderer (a random irregular polygon of random colour and size over a random
low-contrast textured background, with per-frame noise):

* ``motion`` (the demo's video task): eight classes in four pairs that only temporal order tells
  apart, a shape moving in a straight line left to right / right to left, top to bottom / bottom
  to top and along both diagonals, at a random speed from a random start. Both classes of a pair
  draw their parameters from the same distribution and render the same forward motion; the second
  class plays it backwards. A time-reversed clip of one class is therefore a valid clip of the
  other, the *set* of frames has the same distribution in both, and a per-frame image model cannot
  beat chance within a pair.
* ``position`` (the demo's image pretraining task, standing in for ImageNet): nine classes, a still
  shape whose centre lies in one cell of a 3x3 grid. It teaches the 2-D layers to find the shape
  that the temporal layers then follow.

Backgrounds are centred on the ImageNet mean colour with a small random tint and a low-contrast
texture, and there is one shape: measured on the demo model, backgrounds of any base colour (40-215)
with a high-contrast texture kept it at chance on both tasks for the whole 10-minute budget, and a
second, static shape would make the position task ambiguous. x264 runs with equal quality for I,
P and B frames and without its macroblock tree, so that compression does not mark which end of the
clip came first.

Layout written under ``root`` (that of the official crawler, so the same list builder and loader
run on it)::

    annotations/train.csv        label,youtube_id,time_start,time_end,split   (split "train")
    annotations/validate.csv     same columns                                 (split "val")
    annotations/test.csv         youtube_id,time_start,time_end,split         (no label, as official)
    annotations/test_labels.csv  validate.csv's columns for the test clips: the ground truth the
                                 official test.csv withholds, for the demo's evaluation
    videos/train/<label>/<youtube_id>_<time_start:06d>_<time_end:06d>.mp4
    videos/val/<label>/...
    videos/test/<youtube_id>_<time_start:06d>_<time_end:06d>.mp4   (flat: test labels are unknown)

Labels keep their spaces in folder names and CSVs (quoted there, as in the official files); the
annotations are written last, so their presence marks a complete dataset. Clips are H.264 (yuv420p,
B-frames) MP4, ``time_end - time_start`` is the clip duration rounded up to whole seconds, and every
byte is a deterministic function of the arguments (whatever the number of workers).
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from videovit.data.transforms import IMAGENET_MEAN
from videovit.errors import Interrupted, UsageError
from videovit.prep.partial_files import remove_orphaned_partials, written_whole
from videovit.workers import WorkerPool

CLASS_PAIRS = (
    ("moving left to right", "moving right to left"),
    ("moving top to bottom", "moving bottom to top"),
    ("moving top-left to bottom-right", "moving bottom-right to top-left"),
    ("moving top-right to bottom-left", "moving bottom-left to top-right"),
)
CLASS_NAMES = tuple(name for pair in CLASS_PAIRS for name in pair)
# Forward motion of each pair: its unit direction on screen (x right, y down).
MOTIONS = {
    "horizontal": (1.0, 0.0),
    "vertical": (0.0, 1.0),
    "diagonal": (math.sqrt(0.5), math.sqrt(0.5)),
    "antidiagonal": (-math.sqrt(0.5), math.sqrt(0.5)),
}
GRID = 3  # the position task's cells per side
POSITION_NAMES = tuple(f"shape in the {row} {column}" for row in ("top", "middle", "bottom")
                       for column in ("left", "centre", "right"))
TASK_CLASSES = {"motion": CLASS_NAMES, "position": POSITION_NAMES}

# Official split name (the "split" column and the video folder) -> annotation file.
SPLIT_FILES = {"train": "train.csv", "val": "validate.csv", "test": "test.csv"}
LABELLED_HEADER = ("label", "youtube_id", "time_start", "time_end", "split")
YOUTUBE_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_SUPERSAMPLING = 3  # sub-pixel samples per axis for anti-aliased shape edges
_IMAGENET_MEAN_RGB = np.array(IMAGENET_MEAN, dtype=np.float32) * 255
# x264: equal quantiser for I, P and B frames and no macroblock tree (which spends bits by where a
# frame sits in the reference chain), so compression does not reveal where a clip starts. The
# macroblock tree also made the output depend on what the process had encoded before (1 to 5 of
# 32 clips differed between identical runs); without it the bytes are reproducible.
_X264_OPTIONS = {"preset": "veryfast", "crf": "18", "x264-params": "ipratio=1.0:pbratio=1.0:no-mbtree=1"}


@dataclass(frozen=True)
class Trajectory:
    """Per-frame state of the moving shape: centre (x, y) and radius in pixels, angle in radians."""

    centres: np.ndarray  # (T, 2)
    radii: np.ndarray  # (T,)
    angles: np.ndarray  # (T,)

    def reversed(self) -> Trajectory:
        """The same states played backwards."""
        return Trajectory(self.centres[::-1].copy(), self.radii[::-1].copy(), self.angles[::-1].copy())


def class_motion(class_index: int) -> tuple[str, bool]:
    """(forward motion of the class's pair, whether the class plays it backwards)."""
    if not 0 <= class_index < len(CLASS_NAMES):
        raise ValueError(f"class index {class_index} out of range 0..{len(CLASS_NAMES) - 1}")
    return tuple(MOTIONS)[class_index // 2], bool(class_index % 2)


def _shape_radius(rng: np.random.Generator, size: tuple[int, int]) -> float:
    return rng.uniform(0.10, 0.16) * min(size)


def _jitter(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """(T, 2) i.i.d. sub-pixel wobble of the centre: alike forwards and backwards."""
    return rng.normal(0.0, 0.4, (num_frames, 2))


def forward_trajectory(
    rng: np.random.Generator, motion: str, num_frames: int, size: tuple[int, int]
) -> Trajectory:
    """A straight path along the forward ``motion`` at a random speed from a random start that keeps
    the whole shape in frame; no parameter depends on the class."""
    if motion not in MOTIONS:
        raise ValueError(f"unknown motion {motion!r}; choose one of {tuple(MOTIONS)}")
    direction = np.array(MOTIONS[motion])
    radius = _shape_radius(rng, size)
    room = min((side - 2 * radius - 1) / abs(step) for side, step in zip(size, direction, strict=True) if step)
    travel = min(rng.uniform(0.4, 0.65) * min(size), room)
    span = travel * np.abs(direction)
    low = np.array([rng.uniform(radius, side - radius - extent) for side, extent in zip(size, span, strict=True)])
    start = np.where(direction >= 0, low, low + span)
    t = np.linspace(0.0, 1.0, num_frames)[:, None]
    centres = start + travel * t * direction
    angles = np.full(num_frames, rng.uniform(0, 2 * math.pi))
    return Trajectory(centres + _jitter(rng, num_frames), np.full(num_frames, radius), angles)


def still_trajectory(
    rng: np.random.Generator, cell: int, num_frames: int, size: tuple[int, int]
) -> Trajectory:
    """A shape resting with its centre in ``cell`` of the 3x3 grid (row-major), the whole shape in frame."""
    if not 0 <= cell < GRID * GRID:
        raise ValueError(f"cell {cell} out of range 0..{GRID * GRID - 1}")
    radius = _shape_radius(rng, size)
    centre = []
    for side, index in zip(size, (cell % GRID, cell // GRID), strict=True):
        low, high = max(index * side / GRID, radius), min((index + 1) * side / GRID, side - radius)
        centre.append(rng.uniform(low, high))
    centres = np.tile(centre, (num_frames, 1)) + _jitter(rng, num_frames)
    angles = np.full(num_frames, rng.uniform(0, 2 * math.pi))
    return Trajectory(centres, np.full(num_frames, radius), angles)


def _irregular_polygon(rng: np.random.Generator) -> np.ndarray:
    """(n, 2) unit-scale vertices of a random polygon with one clear spike (no rotational symmetry)."""
    count = int(rng.integers(5, 8))
    angles = np.sort(rng.uniform(0, 2 * math.pi, count))
    radii = np.concatenate([[1.0], rng.uniform(0.45, 0.8, count - 1)])
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _polygon_coverage(vertices: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) fraction of each pixel inside the polygon (even-odd rule, supersampled)."""
    width, height = size
    coverage = np.zeros((height, width), dtype=np.float32)
    x0, y0 = np.clip(np.floor(vertices.min(axis=0)).astype(int), 0, [width, height])
    x1, y1 = np.clip(np.ceil(vertices.max(axis=0)).astype(int) + 1, 0, [width, height])
    if x1 <= x0 or y1 <= y0:
        return coverage
    offsets = (np.arange(_SUPERSAMPLING) + 0.5) / _SUPERSAMPLING
    px, py = np.meshgrid((np.arange(x0, x1)[:, None] + offsets).ravel(),
                         (np.arange(y0, y1)[:, None] + offsets).ravel())
    inside = np.zeros(px.shape, dtype=bool)
    for (ax, ay), (bx, by) in zip(vertices, np.roll(vertices, -1, axis=0), strict=True):
        crosses = (ay > py) != (by > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = ax + (py - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (px < x_at)
    samples = inside.reshape(y1 - y0, _SUPERSAMPLING, x1 - x0, _SUPERSAMPLING)
    coverage[y0:y1, x0:x1] = samples.mean(axis=(1, 3))
    return coverage


def _place(shape: np.ndarray, centre: np.ndarray, radius: float, angle: float) -> np.ndarray:
    """Shape vertices rotated by ``angle``, scaled to ``radius`` and moved to ``centre``."""
    cos, sin = math.cos(angle), math.sin(angle)
    return centre + radius * shape @ np.array([[cos, sin], [-sin, cos]])


def _upsample_bilinear(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling of a small (h, w, C) grid to (height, width, C)."""
    rows, cols = np.linspace(0, grid.shape[0] - 1, height), np.linspace(0, grid.shape[1] - 1, width)
    r0, c0 = np.minimum(rows.astype(int), grid.shape[0] - 2), np.minimum(cols.astype(int), grid.shape[1] - 2)
    fr, fc = (rows - r0)[:, None, None], (cols - c0)[None, :, None]
    top = grid[r0][:, c0] * (1 - fc) + grid[r0][:, c0 + 1] * fc
    bottom = grid[r0 + 1][:, c0] * (1 - fc) + grid[r0 + 1][:, c0 + 1] * fc
    return top * (1 - fr) + bottom * fr


def _textured_background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) float background: the ImageNet mean colour with a random tint of up to 20 levels,
    one to three random gratings of up to 8 levels and smooth blotches (std 6)."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = _IMAGENET_MEAN_RGB + rng.uniform(-20, 20, 3).astype(np.float32)
    image = np.tile(base, (height, width, 1))
    for _ in range(int(rng.integers(1, 4))):
        frequency, direction = rng.uniform(0.05, 0.4), rng.uniform(0, math.pi)
        phase = rng.uniform(0, 2 * math.pi)
        wave = np.sin(frequency * (xx * math.cos(direction) + yy * math.sin(direction)) + phase)
        image += wave[..., None] * rng.uniform(-8, 8, 3).astype(np.float32)
    return image + _upsample_bilinear(rng.normal(0, 6, (4, 4, 3)), height, width).astype(np.float32)


def _contrasting_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A random RGB colour whose brightness differs clearly from the background's mean."""
    mean = float(background.mean())
    colour = rng.uniform(0, 255, 3)
    if abs(colour.mean() - mean) < 60:
        colour = np.clip(colour + (90 if mean < 128 else -90), 0, 255)
    return colour.astype(np.float32)


def _paint(image: np.ndarray, outline: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """``image`` with the polygon ``outline`` filled in ``colour`` (anti-aliased)."""
    alpha = _polygon_coverage(outline, (image.shape[1], image.shape[0]))[..., None]
    return image + alpha * (colour - image)


def _render(rng: np.random.Generator, states_for: Callable[[np.random.Generator], Trajectory],
            num_frames: int, size: tuple[int, int]) -> tuple[np.ndarray, Trajectory]:
    """(T, H, W, 3) uint8 frames of a random shape over a random background following ``states_for``."""
    background = _textured_background(rng, size)
    shape, colour = _irregular_polygon(rng), _contrasting_colour(rng, background)
    states = states_for(rng)
    noise_level = rng.uniform(1.0, 3.0)
    frames = np.empty((num_frames, size[1], size[0], 3), dtype=np.uint8)
    for i in range(num_frames):
        outline = _place(shape, states.centres[i], states.radii[i], states.angles[i])
        frame = _paint(background, outline, colour) + rng.normal(0, noise_level, background.shape)
        frames[i] = np.clip(frame, 0, 255).round()
    return frames, states


def render_clip(
    rng: np.random.Generator, class_index: int, num_frames: int, size: tuple[int, int]
) -> tuple[np.ndarray, Trajectory]:
    """(T, H, W, 3) uint8 frames of one motion clip of ``class_index`` and the shape's per-frame states."""
    motion, backwards = class_motion(class_index)
    frames, states = _render(rng, lambda r: forward_trajectory(r, motion, num_frames, size), num_frames, size)
    if backwards:
        return frames[::-1].copy(), states.reversed()
    return frames, states


def render_still(
    rng: np.random.Generator, class_index: int, num_frames: int, size: tuple[int, int]
) -> tuple[np.ndarray, Trajectory]:
    """(T, H, W, 3) uint8 frames of one position clip: a resting shape centred in cell ``class_index``."""
    return _render(rng, lambda r: still_trajectory(r, class_index, num_frames, size), num_frames, size)


RENDERERS = {"motion": render_clip, "position": render_still}


def encode_h264(frames: np.ndarray, path: Path, fps: int) -> None:
    """Write (T, H, W, 3) uint8 RGB frames as H.264 yuv420p MP4 with B-frames, reproducibly."""
    height, width = frames.shape[1:3]
    if width % 2 or height % 2:
        raise ValueError(f"yuv420p needs an even width and height, got {width}x{height}")
    with written_whole(path) as partial, av.open(str(partial), mode="w", format="mp4") as output:  # whole or absent
        stream = output.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1  # one process per core already
        stream.options = dict(_X264_OPTIONS)
        for index, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))


@dataclass(frozen=True)
class ClipRecord:
    """One clip: its split, class, number within the class, and official row fields."""

    split: str
    class_index: int
    label: str  # class name, as in the official CSV's label column
    clip_number: int
    youtube_id: str
    time_start: int
    time_end: int

    def relative_path(self) -> Path:
        """Path under ``root/videos``: ``<split>/<label>/<file>`` (train, val) or ``test/<file>``."""
        file_name = f"{self.youtube_id}_{self.time_start:06d}_{self.time_end:06d}.mp4"
        if self.split == "test":
            return Path(self.split, file_name)
        return Path(self.split, self.label, file_name)

    def labelled_row(self) -> tuple[str, str, int, int, str]:
        """The row of train.csv / validate.csv (and test_labels.csv) for this clip."""
        return (self.label, self.youtube_id, self.time_start, self.time_end, self.split)


def _plan_records(counts: dict[str, int], class_names: Sequence[str], num_frames: int, fps: int,
                  seed: int) -> list[ClipRecord]:
    """Every clip's identity, drawn from one seeded generator in a fixed order (unique ids)."""
    rng = np.random.default_rng([seed, 400])
    alphabet = list(YOUTUBE_ID_ALPHABET)
    duration = max(1, math.ceil(num_frames / fps))
    used: set[str] = set()
    records = []
    for split, per_class in counts.items():
        for class_index, label in enumerate(class_names):
            for clip_number in range(per_class):
                youtube_id = ""
                while not youtube_id or youtube_id in used:
                    youtube_id = "".join(rng.choice(alphabet, 11))
                used.add(youtube_id)
                start = int(rng.integers(0, 290))
                end = start + duration
                records.append(ClipRecord(split, class_index, label, clip_number, youtube_id, start, end))
    return records


@dataclass(frozen=True)
class _ClipJob:
    """Everything a worker process needs to render and encode one clip."""

    path: Path
    seed: tuple[int, ...]
    task: str
    class_index: int
    num_frames: int
    size: tuple[int, int]
    fps: int


def _make_clip(job: _ClipJob) -> None:
    """Render and encode one clip (runs in a worker process)."""
    render = RENDERERS[job.task]
    frames, _ = render(np.random.default_rng(job.seed), job.class_index, job.num_frames, job.size)
    encode_h264(frames, job.path, job.fps)


def _csv_field(value: object) -> str:
    """A CSV field as the official files write it: quoted when it holds a space, comma or quote."""
    text = str(value)
    if any(character in text for character in ' ,"'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Write an annotation CSV with Unix line endings."""
    lines = [",".join(header)] + [",".join(_csv_field(value) for value in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_annotations(folder: Path, records: list[ClipRecord]) -> None:
    """train.csv, validate.csv, test.csv (no label column) and test_labels.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = {split: [r.labelled_row() for r in records if r.split == split] for split in SPLIT_FILES}
    _write_csv(folder / SPLIT_FILES["train"], LABELLED_HEADER, rows["train"])
    _write_csv(folder / SPLIT_FILES["val"], LABELLED_HEADER, rows["val"])
    _write_csv(folder / SPLIT_FILES["test"], LABELLED_HEADER[1:], [row[1:] for row in rows["test"]])
    _write_csv(folder / "test_labels.csv", LABELLED_HEADER, rows["test"])


def generate_synthetic_kinetics(
    root: Path,
    num_train_per_class: int,
    num_val_per_class: int,
    num_test_per_class: int,
    size: tuple[int, int] = (128, 128),
    num_frames: int = 32,
    fps: int = 25,
    seed: int = 0,
    workers: int = 2,
    task: str = "motion",
) -> Path:
    """Write the synthetic dataset of ``task`` ("motion" or "position") under ``root`` (layout in
    the module docstring); return ``root``.

    ``size`` is (width, height), both even; ``workers`` processes render and encode in parallel.
    ``root`` must not already hold videos or annotations.
    """
    if task not in TASK_CLASSES:
        raise UsageError(f"unknown task {task!r}; choose one of {tuple(TASK_CLASSES)}")
    root = Path(root)
    existing = next(folder for folder in (root, *root.parents) if folder.exists())
    if not existing.is_dir():
        raise UsageError(f"cannot write the dataset to {root}: {existing} is a file, not a folder; choose another root")
    counts = {"train": num_train_per_class, "val": num_val_per_class, "test": num_test_per_class}
    if min(counts.values()) < 0 or max(counts.values()) == 0:
        raise UsageError(f"clip counts per class must be >= 0 and not all 0, got {counts}")
    if num_frames < 1 or fps < 1 or workers < 1:
        raise UsageError(
            f"need num_frames >= 1, fps >= 1 and workers >= 1; got {num_frames}, {fps}, {workers}"
        )
    for existing in (root / "videos", root / "annotations"):
        if existing.exists() and any(existing.iterdir()):
            raise UsageError(
                f"{existing} is not empty: choose another root, or delete it (an interrupted run leaves "
                "videos without annotations) and run again"
            )
    records = _plan_records(counts, TASK_CLASSES[task], num_frames, fps, seed)
    jobs = []
    task_index = list(TASK_CLASSES).index(task)  # the tasks draw different shapes and backgrounds
    for record in records:
        path = root / "videos" / record.relative_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        clip_seed = (seed, task_index, list(SPLIT_FILES).index(record.split), record.class_index,
                     record.clip_number)
        jobs.append(_ClipJob(path, clip_seed, task, record.class_index, num_frames, (size[0], size[1]), fps))
    done = 0
    try:
        if workers == 1:
            for job in jobs:
                _make_clip(job)
                done += 1
        else:
            with WorkerPool(_make_clip, workers) as pool:
                for _ in pool.run(jobs):
                    done += 1
    except Interrupted as stop:
        remove_orphaned_partials(root / "videos")  # the killed workers' clips
        raise Interrupted(stop.signum, f"{stop} after {done} of {len(jobs)} clips: {root / 'videos'} is incomplete "
                                       f"and has no annotations; delete it and run again") from None
    _write_annotations(root / "annotations", records)
    return root


def main(argv: Sequence[str] | None = None) -> Path:
    """Command line of ``tools/make_synthetic_data.py``."""
    parser = argparse.ArgumentParser(description="Write the synthetic Kinetics-format dataset.")
    parser.add_argument("--root", type=Path, default=Path("data/synthetic"), help="output folder (empty)")
    parser.add_argument("--task", choices=tuple(TASK_CLASSES), default="motion",
                        help="motion: 8 direction classes (video); position: 9 grid cells (images)")
    parser.add_argument("--train-per-class", type=int, default=30, help="training clips per class")
    parser.add_argument("--val-per-class", type=int, default=8, help="validation clips per class")
    parser.add_argument("--test-per-class", type=int, default=8, help="test clips per class")
    parser.add_argument("--size", type=int, nargs=2, default=(128, 128), metavar=("W", "H"),
                        help="frame width and height (even)")
    parser.add_argument("--frames", type=int, default=32, help="frames per clip")
    parser.add_argument("--fps", type=int, default=25, help="frame rate written in the files")
    parser.add_argument("--seed", type=int, default=0, help="seed of everything generated")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes")
    args = parser.parse_args(argv)
    root = generate_synthetic_kinetics(
        args.root, args.train_per_class, args.val_per_class, args.test_per_class,
        size=(args.size[0], args.size[1]), num_frames=args.frames, fps=args.fps, seed=args.seed,
        workers=args.workers, task=args.task,
    )
    print(f"wrote {len(TASK_CLASSES[args.task])} {args.task} classes x ({args.train_per_class} train, "
          f"{args.val_per_class} val, {args.test_per_class} test) clips to {root}")
    return root
