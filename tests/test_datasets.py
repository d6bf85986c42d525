"""Datasets on real encoded videos, including corrupt, truncated, zero-byte and missing files."""
from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from videos import (
    decoded_indices,
    frame_index_of,
    make_indexed_video,
    make_random_bytes_file,
    make_truncated_copy,
    make_zero_byte_file,
)

from videovit.config.defaults import get_defaults
from videovit.data.datasets import (
    ClipSampling,
    DecodeTimeout,
    build_dataset,
    collate_clips,
    collate_views,
    load_clip_frames,
    time_limit,
)
from videovit.data.sampling import uniform_indices

SIZE = 64  # square frames: a full-frame view shows the whole index code
GOOD = {"good0.mp4": 40, "good1.mkv": 40, "good2.webm": 30, "short.mp4": 5}
BROKEN = ["corrupt.mp4", "truncated.mp4", "empty.mp4", "missing.mp4"]
CLASSES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def video_root(tmp_path_factory) -> Path:
    """Four good indexed videos (one shorter than a clip) and four broken files."""
    root = tmp_path_factory.mktemp("videos")
    for name, frames in GOOD.items():
        codec = "vp9" if name.endswith(".webm") else "h264"
        make_indexed_video(root / name, frames, codec=codec, size=(SIZE, SIZE))
    make_random_bytes_file(root / "corrupt.mp4", 20_000)
    make_truncated_copy(root / "good0.mp4", root / "truncated.mp4", 0.5)  # mp4 index at the end: unreadable
    make_zero_byte_file(root / "empty.mp4")
    return root


def _write_lists(data_dir: Path, names: list[str]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"{name} {i % len(CLASSES)}\n" for i, name in enumerate(names)]
    for split in ("train", "val", "test"):
        (data_dir / f"{split}.csv").write_text("".join(lines))
    (data_dir / "classes.txt").write_text("".join(f"{name}\n" for name in CLASSES))


def _cfg(data_dir: Path, video_root: Path, backend: str = "pyav"):
    cfg = get_defaults()
    cfg.MODEL.NUM_CLASSES = len(CLASSES)
    cfg.DATA.PATH_TO_DATA_DIR = str(data_dir)
    cfg.DATA.PATH_PREFIX = str(video_root)
    cfg.DATA.NUM_FRAMES = 4
    cfg.DATA.TRAIN_JITTER_SCALES = [SIZE, SIZE + 8]
    cfg.DATA.TRAIN_CROP_SIZE = 48
    cfg.DATA.TEST_SCALE = SIZE
    cfg.DATA.TEST_CROP_SIZE = SIZE
    cfg.DATA.MEAN, cfg.DATA.STD = [0.0] * 3, [1.0] * 3
    cfg.DATA.DECODING_BACKEND = backend
    cfg.TEST.NUM_TEMPORAL_VIEWS = 2
    cfg.TEST.NUM_SPATIAL_CROPS = 1
    return cfg


def _clip_frame_indices(clip: torch.Tensor) -> list[int]:
    """Indices drawn in the frames of a full-frame, identity-normalised (C, T, H, W) clip."""
    frames = (clip.permute(1, 2, 3, 0) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    return [frame_index_of(frame) for frame in frames]


@pytest.fixture()
def mixed_cfg(tmp_path, video_root):
    """Lists alternating good and broken videos (indices 1, 3, 5, 7 are broken)."""
    names = ["good0.mp4", "corrupt.mp4", "good1.mkv", "truncated.mp4", "good2.webm", "empty.mp4",
             "short.mp4", "missing.mp4"]
    _write_lists(tmp_path / "lists", names)
    return _cfg(tmp_path / "lists", video_root)


# ---------------------------------------------------------------------------- frames

def test_load_clip_frames_returns_the_sampled_frames(video_root):
    sampling = ClipSampling("uniform", num_frames=8)
    frames = load_clip_frames(video_root / "good0.mp4", sampling, train=False, view=1, num_views=3)
    assert frames.shape == (8, SIZE, SIZE, 3) and frames.dtype == np.uint8
    assert decoded_indices(frames) == uniform_indices(40, 8, train=False, view=1, num_views=3)


def test_short_video_repeats_frames_within_its_length(video_root):
    dense = ClipSampling("dense", num_frames=4, stride=2, target_fps=25)
    assert decoded_indices(load_clip_frames(video_root / "short.mp4", dense, train=False)) == [0, 2, 4, 4]


def test_truncated_matroska_clamps_to_its_decodable_prefix(tmp_path, video_root):
    make_indexed_video(tmp_path / "full.mkv", 40, size=(SIZE, SIZE))
    cut = make_truncated_copy(tmp_path / "full.mkv", tmp_path / "cut.mkv", 0.5)
    indices = decoded_indices(load_clip_frames(cut, ClipSampling("uniform", 4), train=False))
    assert max(indices) < 30 and indices == sorted(indices)  # sampled over the frames that exist


def test_val_view_is_the_centred_uniform_clip(mixed_cfg):
    dataset = build_dataset(mixed_cfg, "val")
    sample = dataset[2]
    assert sample["clip"].shape == (3, 4, SIZE, SIZE)
    assert _clip_frame_indices(sample["clip"]) == [5, 15, 25, 35]
    assert (sample["video_index"], sample["label"], sample["failures"]) == (2, 2, [])


# ---------------------------------------------------------------------------- train: replace and report

@pytest.mark.parametrize("broken_index, reason", [
    (1, "FFmpeg cannot open it"), (3, "FFmpeg cannot open it"), (5, "empty"), (7, "not found")])
def test_train_replaces_a_broken_video_and_reports_it(mixed_cfg, broken_index, reason):
    dataset = build_dataset(mixed_cfg, "train")
    sample = dataset[broken_index]
    assert sample["failures"][0][0] == dataset.video_path(broken_index)
    assert reason in sample["failures"][0][1]
    assert sample["video_index"] != broken_index
    assert sample["path"] == dataset.video_path(sample["video_index"])
    assert sample["label"] == dataset.entries[sample["video_index"]].label
    assert sample["clip"].shape == (3, 4, 48, 48)
    # every recorded failure is a broken video; the sample comes from a good one
    assert all(Path(path).name in BROKEN for path, _ in sample["failures"])
    assert Path(sample["path"]).name in GOOD


def test_train_replacement_is_reproducible_per_index_and_epoch(mixed_cfg):
    dataset = build_dataset(mixed_cfg, "train")
    first = dataset[1]
    again = dataset[1]
    assert first["video_index"] == again["video_index"] and torch.equal(first["clip"], again["clip"])
    draws = set()
    for epoch in range(6):
        dataset.set_epoch(epoch)
        draws.add(dataset[1]["video_index"])
    assert len(draws) > 1


def test_good_train_samples_report_no_failures(mixed_cfg):
    dataset = build_dataset(mixed_cfg, "train")
    for index in (0, 2, 4, 6):
        sample = dataset[index]
        assert sample["failures"] == [] and sample["video_index"] == index


def test_train_gives_up_after_the_retry_budget(tmp_path, video_root):
    _write_lists(tmp_path / "lists", ["corrupt.mp4", "empty.mp4", "missing.mp4"])
    cfg = _cfg(tmp_path / "lists", video_root)
    cfg.DATA.MAX_DECODE_RETRIES = 4
    with pytest.raises(RuntimeError, match=r"5 videos in a row failed.*check_videos"):
        build_dataset(cfg, "train")[0]


def test_train_loader_brings_failures_to_the_main_process(mixed_cfg):
    dataset = build_dataset(mixed_cfg, "train")
    loader = DataLoader(dataset, batch_size=4, num_workers=1, collate_fn=collate_clips)
    batches = list(loader)
    assert [batch["clip"].shape for batch in batches] == [(4, 3, 4, 48, 48)] * 2
    failed = sorted(Path(path).name for batch in batches for path, _ in batch["failures"])
    assert set(failed) == set(BROKEN)
    assert all(batch["label"].dtype == torch.long for batch in batches)


# ---------------------------------------------------------------------------- test: never substitute

def test_test_split_reports_broken_views_and_never_substitutes(mixed_cfg):
    dataset = build_dataset(mixed_cfg, "test")
    assert len(dataset) == 8 * 2
    for index in range(len(dataset)):
        sample = dataset[index]
        video_index, view_index = divmod(index, 2)
        assert (sample["video_index"], sample["view_index"]) == (video_index, view_index)
        assert sample["path"] == dataset.video_path(video_index)
        if video_index % 2:
            assert sample["clip"] is None
            assert [path for path, _ in sample["failures"]] == [sample["path"]]
        else:
            assert sample["clip"] is not None and sample["failures"] == []
    views = [_clip_frame_indices(dataset[i]["clip"]) for i in (0, 1)]
    assert views == [uniform_indices(40, 4, False, 0, 2), uniform_indices(40, 4, False, 1, 2)]


def test_collate_views_drops_failed_views_and_names_their_videos(mixed_cfg):
    dataset = build_dataset(mixed_cfg, "test")
    loader = DataLoader(dataset, batch_size=5, collate_fn=collate_views)
    scored, failed, failures = set(), set(), []
    for batch in loader:
        if batch["clip"] is not None:
            assert batch["clip"].shape[0] == len(batch["video_index"]) == len(batch["path"])
            scored.update(batch["video_index"].tolist())
        failed.update(batch["failed_video_index"].tolist())
        failures.extend(batch["failures"])
    assert scored == {0, 2, 4, 6} and failed == {1, 3, 5, 7}
    assert sorted({Path(path).name for path, _ in failures}) == sorted(BROKEN)


def test_collate_views_with_only_failures():
    batch = [{"clip": None, "label": 1, "video_index": 3, "view_index": v, "path": "x.mp4",
              "failures": [("x.mp4", "file is empty")]} for v in range(2)]
    out = collate_views(batch)
    assert out["clip"] is None and out["label"].numel() == 0
    assert out["failed_video_index"].tolist() == [3, 3] and len(out["failures"]) == 2


def test_test_split_multiple_crops_share_one_decode(tmp_path, video_root):
    _write_lists(tmp_path / "lists", ["good0.mp4"])
    cfg = _cfg(tmp_path / "lists", video_root)
    cfg.DATA.TEST_SCALE, cfg.DATA.TEST_CROP_SIZE = SIZE, 32
    cfg.TEST.NUM_TEMPORAL_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS = 2, 3
    dataset = build_dataset(cfg, "test")
    samples = [dataset[i] for i in range(6)]
    assert [s["view_index"] for s in samples] == list(range(6))
    assert all(s["clip"].shape == (3, 4, 32, 32) for s in samples)
    assert not torch.equal(samples[0]["clip"], samples[2]["clip"])  # top-left vs bottom-right


# ---------------------------------------------------------------------------- timeouts

def test_time_limit_interrupts_a_long_operation_and_restores_the_handler():
    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(DecodeTimeout, match="DECODE_TIMEOUT"):
        with time_limit(0.05):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                pass
    assert signal.getsignal(signal.SIGALRM) is before
    with time_limit(0.05):
        pass  # finishing in time raises nothing and leaves no alarm behind
    time.sleep(0.1)


def test_decode_timeout_counts_as_a_failure(tmp_path, video_root):
    _write_lists(tmp_path / "lists", ["good0.mp4", "good1.mkv"])
    cfg = _cfg(tmp_path / "lists", video_root)
    cfg.DATA.DECODE_TIMEOUT = 1e-4
    sample = build_dataset(cfg, "test")[0]
    assert sample["clip"] is None and "DecodeTimeout" in sample["failures"][0][1]


# ---------------------------------------------------------------------------- bookkeeping

def test_class_names_and_list_hash(mixed_cfg, tmp_path):
    dataset = build_dataset(mixed_cfg, "val")
    assert dataset.class_names == CLASSES
    digest = dataset.list_hash()
    assert len(digest) == 64 and digest == build_dataset(mixed_cfg, "val").list_hash()
    with open(tmp_path / "lists/val.csv", "a") as handle:
        handle.write("good0.mp4 1\n")
    assert build_dataset(mixed_cfg, "val").list_hash() != digest


def test_test_split_can_read_the_val_list(mixed_cfg):
    mixed_cfg.TEST.SPLIT = "val"
    (Path(mixed_cfg.DATA.PATH_TO_DATA_DIR) / "test.csv").unlink()
    assert Path(build_dataset(mixed_cfg, "test").source).name == "val.csv"


def test_config_errors_are_explained(mixed_cfg):
    mixed_cfg.MODEL.NUM_CLASSES = 400
    with pytest.raises(ValueError, match="has 3 classes but MODEL.NUM_CLASSES is 400"):
        build_dataset(mixed_cfg, "train")
    mixed_cfg.MODEL.NUM_CLASSES = 3
    with pytest.raises(ValueError, match="split 'training'"):
        build_dataset(mixed_cfg, "training")
    mixed_cfg.DATA.DATASET = "ucf101"
    with pytest.raises(ValueError, match="DATA.DATASET"):
        build_dataset(mixed_cfg, "train")
