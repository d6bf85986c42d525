"""The synthetic Kinetics-format dataset: official layout and CSVs, determinism, temporal-only classes."""
from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest
from av.video.frame import PictureType

from videovit.data import probe_video, read_frames
from videovit.errors import UsageError
from videovit.prep.synthetic import (
    CLASS_NAMES,
    CLASS_PAIRS,
    GRID,
    MOTIONS,
    POSITION_NAMES,
    class_motion,
    encode_h264,
    forward_trajectory,
    generate_synthetic_kinetics,
    main,
    render_clip,
    render_still,
)

SIZE, NUM_FRAMES, FPS = (64, 48), 8, 10
COUNTS = {"train": 2, "val": 1, "test": 1}
SPLIT_FILES = {"train": "train.csv", "val": "validate.csv", "test": "test.csv"}


def _generate(root: Path, seed: int, workers: int) -> Path:
    return generate_synthetic_kinetics(
        root, COUNTS["train"], COUNTS["val"], COUNTS["test"],
        size=SIZE, num_frames=NUM_FRAMES, fps=FPS, seed=seed, workers=workers,
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small dataset, generated with 2 worker processes."""
    return _generate(tmp_path_factory.mktemp("synthetic"), seed=0, workers=2)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _digests(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root``, by relative path."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*")) if path.is_file()
    }


def _video_path(root: Path, row: dict[str, str], split: str) -> Path:
    name = f"{row['youtube_id']}_{int(row['time_start']):06d}_{int(row['time_end']):06d}.mp4"
    folder = root / "videos" / ("val" if split == "val" else split)
    return folder / name if split == "test" else folder / row["label"] / name


@pytest.mark.slow  # worker processes
def test_same_seed_same_bytes_whatever_the_workers_other_seed_differs(dataset: Path, tmp_path: Path) -> None:
    again = _generate(tmp_path / "again", seed=0, workers=1)
    other = _generate(tmp_path / "other", seed=1, workers=2)
    assert _digests(again) == _digests(dataset)
    other_digests = _digests(other)
    assert other_digests.keys() != _digests(dataset).keys()  # other youtube ids
    assert set(other_digests.values()).isdisjoint(_digests(dataset).values())


def test_annotation_files_follow_the_official_format(dataset: Path, test_data: Path) -> None:
    official = test_data / "annotations" / "k400"
    annotations = dataset / "annotations"
    for name in ("train.csv", "validate.csv", "test.csv"):
        header = (annotations / name).read_text().splitlines()[0]
        assert header == (official / name).read_text().splitlines()[0]
    assert "label" not in _rows(annotations / "test.csv")[0]
    raw_train = (annotations / "train.csv").read_text()
    first_row = _rows(annotations / "train.csv")[0]
    assert f'\n"{first_row["label"]}",{first_row["youtube_id"]},' in raw_train  # quoted only with spaces
    ids = []
    for split, file_name in SPLIT_FILES.items():
        for row in _rows(annotations / file_name):
            assert row["split"] == split
            assert re.fullmatch(r"[A-Za-z0-9_-]{11}", row["youtube_id"])
            assert int(row["time_end"]) > int(row["time_start"]) >= 0
            ids.append(row["youtube_id"])
    assert len(ids) == len(set(ids)) == sum(COUNTS.values()) * len(CLASS_NAMES)
    test_rows = _rows(annotations / "test.csv")
    labelled_test = _rows(annotations / "test_labels.csv")
    assert [{k: v for k, v in row.items() if k != "label"} for row in labelled_test] == test_rows


def test_classes_are_balanced_and_files_sit_in_the_official_layout(dataset: Path) -> None:
    for split, file_name in SPLIT_FILES.items():
        rows = _rows(dataset / "annotations" / ("test_labels.csv" if split == "test" else file_name))
        assert Counter(row["label"] for row in rows) == {name: COUNTS[split] for name in CLASS_NAMES}
        for row in rows:
            assert _video_path(dataset, row, split).is_file()
    assert len(list((dataset / "videos").rglob("*.mp4"))) == sum(COUNTS.values()) * len(CLASS_NAMES)
    assert not list(dataset.rglob("*.partial"))


def test_clips_are_h264_with_b_frames_and_decode_fully(dataset: Path) -> None:
    clips = sorted((dataset / "videos").rglob("*.mp4"))
    for path in clips:
        info = probe_video(path)
        expected = (NUM_FRAMES, FPS, *SIZE, "h264")
        assert (info.num_frames, info.fps, info.width, info.height, info.codec) == expected
        assert read_frames(path, range(NUM_FRAMES)).shape == (NUM_FRAMES, SIZE[1], SIZE[0], 3)
    with av.open(str(clips[0])) as container:
        frame_types = {PictureType(frame.pict_type).name for frame in container.decode(video=0)}
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    assert "B" in frame_types


@pytest.mark.parametrize("pair", CLASS_PAIRS)
def test_second_class_of_a_pair_is_the_first_played_backwards(pair: tuple[str, str]) -> None:
    forward_class, backward_class = CLASS_NAMES.index(pair[0]), CLASS_NAMES.index(pair[1])
    for seed in range(3):
        forward, forward_states = render_clip(np.random.default_rng(seed), forward_class, NUM_FRAMES, SIZE)
        backward, backward_states = render_clip(np.random.default_rng(seed), backward_class, NUM_FRAMES, SIZE)
        np.testing.assert_array_equal(backward, forward[::-1])
        np.testing.assert_array_equal(backward_states.centres, forward_states.centres[::-1])


def _changing_quantity(class_index: int, clips: int) -> np.ndarray:
    """(clips, T) per-frame position of the centre along the direction of the class's pair."""
    motion, backwards = class_motion(class_index)
    series = []
    for seed in range(clips):
        states = forward_trajectory(np.random.default_rng([seed, class_index]), motion, NUM_FRAMES, SIZE)
        states = states.reversed() if backwards else states
        series.append(states.centres @ np.array(MOTIONS[motion]))
    return np.array(series)


@pytest.mark.slow
@pytest.mark.parametrize("pair_index", range(len(CLASS_PAIRS)))
def test_frame_statistics_match_within_a_pair_and_only_time_tells_them_apart(pair_index: int) -> None:
    """Pooled over frames, both classes show the same states; over time they change oppositely."""
    first, second = (_changing_quantity(2 * pair_index + k, clips=2000) for k in (0, 1))
    spread = np.concatenate([first, second]).std()
    quantiles = np.linspace(0.05, 0.95, 19)
    assert np.abs(np.quantile(first, quantiles) - np.quantile(second, quantiles)).max() < 0.05 * spread
    assert (np.diff(first, axis=1).mean(axis=1) > 0).all()
    assert (np.diff(second, axis=1).mean(axis=1) < 0).all()


def test_encoding_keeps_reversed_pairs_alike_frame_by_frame(tmp_path: Path) -> None:
    """Compression quality does not depend on frame position, so it does not reveal the direction."""
    forward, _ = render_clip(np.random.default_rng(7), 0, 24, SIZE)
    encode_h264(forward, tmp_path / "forward.mp4", FPS)
    encode_h264(forward[::-1].copy(), tmp_path / "backward.mp4", FPS)
    decoded_forward = read_frames(tmp_path / "forward.mp4", range(24)).astype(np.int16)
    decoded_backward = read_frames(tmp_path / "backward.mp4", range(24))[::-1].astype(np.int16)
    per_frame_error = np.abs(decoded_forward - forward).mean(axis=(1, 2, 3))
    per_frame_gap = np.abs(decoded_forward - decoded_backward).mean(axis=(1, 2, 3))
    assert per_frame_error.max() < 1.5 * per_frame_error.mean()
    assert per_frame_gap.max() < 5


def test_command_line_writes_the_dataset_and_refuses_a_used_root(tmp_path: Path) -> None:
    args = ["--root", str(tmp_path / "cli"), "--train-per-class", "1", "--val-per-class", "0",
            "--test-per-class", "0", "--size", "32", "32", "--frames", "4", "--workers", "1"]
    root = main(args)
    assert len(list((root / "videos" / "train").rglob("*.mp4"))) == len(CLASS_NAMES)
    assert len(_rows(root / "annotations" / "validate.csv")) == 0
    with pytest.raises(UsageError, match="not empty"):
        main(args)


def test_motion_clips_keep_the_whole_shape_in_frame_on_a_straight_path() -> None:
    for class_index in range(len(CLASS_NAMES)):
        motion, _ = class_motion(class_index)
        for seed in range(50):
            states = forward_trajectory(np.random.default_rng(seed), motion, NUM_FRAMES, SIZE)
            low, high = states.centres - states.radii[:, None], states.centres + states.radii[:, None]
            assert (low > -1.5).all() and (high < np.array(SIZE) + 1.5).all()  # 1.5: the jitter
            travel = states.centres[-1] - states.centres[0]
            across = travel - (travel @ np.array(MOTIONS[motion])) * np.array(MOTIONS[motion])
            assert np.linalg.norm(travel) > 0.3 * min(SIZE) and np.linalg.norm(across) < 2.5


@pytest.mark.slow
def test_position_clips_hold_a_still_shape_in_the_named_cell(tmp_path: Path) -> None:
    for cell, name in enumerate(POSITION_NAMES):
        for seed in range(20):
            frames, states = render_still(np.random.default_rng([seed, cell]), cell, 2, SIZE)
            assert frames.shape == (2, SIZE[1], SIZE[0], 3)
            cell_size = np.array(SIZE) / GRID
            corner = np.array([cell % GRID, cell // GRID]) * cell_size
            inside = (states.centres > corner - 1.5) & (states.centres < corner + cell_size + 1.5)
            assert inside.all(), name  # 1.5: the jitter
            assert np.ptp(states.centres, axis=0).max() < 3  # only the sub-pixel jitter
    root = generate_synthetic_kinetics(tmp_path / "positions", 1, 0, 1, size=SIZE, num_frames=1, fps=FPS,
                                       workers=1, task="position")
    rows = _rows(root / "annotations" / "train.csv")
    assert [row["label"] for row in rows] == list(POSITION_NAMES)
    assert probe_video(_video_path(root, rows[0], "train")).num_frames == 1


def test_unknown_task_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown task 'colour'"):
        generate_synthetic_kinetics(tmp_path, 1, 0, 0, task="colour")
