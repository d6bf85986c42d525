"""The tiny training runs the engine, reliability and distributed tests share (a helper module, not tests).

The tiny dataset: 3 classes told apart by colour (one dominant RGB channel), 4-frame 32x32 H.264
clips, optionally a zero-byte "video" appended to a split's list. ``tiny_overrides`` configures a
tiny RegionViT on it for CPU; ``run_tiny`` runs it in this process, ``run_to_completion`` through
``tools/run_net.py``'s ``main`` in this process (the restart after a real kill needs no process of its
own); ``cli_env`` is the environment of the real command line in a subprocess (one CPU thread).
"""
from __future__ import annotations

import json
import os
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from tool_calls import call_tool

from videovit.config import load_config
from videovit.data.lists import ListEntry, write_classes, write_list
from videovit.engine import run

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN_NET = REPO_ROOT / "tools" / "run_net.py"
LATEST = Path("checkpoints") / "checkpoint_latest.pyth"
RUN_TIMEOUT = 300  # seconds; a tiny run takes about 10
CLASSES = ["red", "green", "blue"]
BROKEN = "broken.mp4"
# The reliability runs: two epochs of 6 steps, a mid-epoch checkpoint every 2 steps, every random draw on.
SETTINGS = {"TRAIN.EPOCHS": 2, "TRAIN.BATCH_SIZE": 2, "TRAIN.CHECKPOINT_EVERY_STEPS": 2, "TRAIN.EVAL_PERIOD": 0,
            "TEST.ENABLE": False, "MODEL.DROP_PATH_RATE": 0.1, "MIXUP.ENABLE": True, "SOLVER.WARMUP_EPOCHS": 0.5,
            "DETERMINISTIC": True}


def write_colour_clip(path: Path, colour: int, seed: int, frames: int = 4, size: int = 32) -> None:
    """An H.264 clip of noisy frames with one dominant RGB channel (the class)."""
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as output:
        stream = output.add_stream("libx264", rate=Fraction(8))
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18"}
        for t in range(frames):
            image = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
            image[..., colour] += 160
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = t
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))


def make_tiny_dataset(root: Path, per_class: dict[str, int], broken_in: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """Clips + list files under ``root``: ``per_class[split]`` clips per class, plus a zero-byte
    video appended to each split of ``broken_in``. Returns (list folder, video folder)."""
    videos, lists = root / "videos", root / "lists"
    videos.mkdir(parents=True, exist_ok=True)
    (videos / BROKEN).write_bytes(b"")
    for s, (split, count) in enumerate(per_class.items()):
        entries = []
        for colour in range(len(CLASSES)):
            for i in range(count):
                name = f"{split}_{colour}_{i}.mp4"
                write_colour_clip(videos / name, colour, seed=1000 * s + 10 * colour + i)
                entries.append(ListEntry(name, colour))
        if split in broken_in:
            entries.append(ListEntry(BROKEN, 0))
        write_list(lists / f"{split}.csv", entries)
    write_classes(lists / "classes.txt", CLASSES)
    return lists, videos


def tiny_overrides(lists: Path, videos: Path, output_dir: Path, **extra: object) -> list[str]:
    """KEY VALUE overrides for a tiny RegionViT on the tiny dataset (CPU, no workers, no TensorBoard)."""
    settings: dict[str, object] = {
        "MODEL.NAME": "regionvit_ti", "MODEL.EMBED_DIMS": [16, 32, 64, 128], "MODEL.NUM_HEADS": [1, 1, 2, 4],
        "MODEL.DEPTHS": [1, 1, 1, 1], "MODEL.NUM_CLASSES": len(CLASSES), "MODEL.DROP_PATH_RATE": 0.0,
        "DATA.NUM_FRAMES": 4, "DATA.PATH_TO_DATA_DIR": lists, "DATA.PATH_PREFIX": videos,
        "DATA.TRAIN_JITTER_SCALES": [32, 40], "DATA.TRAIN_CROP_SIZE": 32, "DATA.TEST_SCALE": 32,
        "DATA.TEST_CROP_SIZE": 32, "DATA.DECODING_BACKEND": "pyav", "DATA_LOADER.NUM_WORKERS": 0,
        "TRAIN.BATCH_SIZE": 4, "TRAIN.EPOCHS": 3, "SOLVER.BASE_LR": 1e-3, "SOLVER.BASE_BATCH_SIZE": 4,
        "SOLVER.WARMUP_EPOCHS": 1.0, "MIXUP.ENABLE": False, "LOG_PERIOD": 1, "TENSORBOARD": False,
        # A test split with one broken video of 7 (make_tiny_dataset's broken_in) is 14 % failed, by design.
        "TEST.MAX_FAILED_SHARE": 0.2, "DEVICE": "cpu", "OUTPUT_DIR": output_dir, **extra}
    return [token for key, value in settings.items() for token in (key, str(value))]


def run_tiny(lists: Path, videos: Path, output_dir: Path, **extra: object) -> dict | None:
    """``run`` on the tiny dataset with ``tiny_overrides``."""
    return run(load_config([], tiny_overrides(lists, videos, output_dir, **extra)))


def read_stats(output_dir: Path, kind: str) -> list[dict]:
    """The stats.jsonl records of ``kind``."""
    lines = (output_dir / "stats.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if record["kind"] == kind]


def stats_steps(output_dir: Path) -> list[tuple[str, int]]:
    """(kind, global step) of every stats.jsonl record, in file order (timings differ between runs)."""
    lines = (output_dir / "stats.jsonl").read_text().splitlines()
    return [(record["kind"], record["global_step"]) for record in map(json.loads, lines)]


def load_checkpoint(path: Path) -> dict:
    """A checkpoint as saved (it must load with weights_only=True)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_tensors(first: dict, second: dict, atol: float = 0.0) -> None:
    """Same keys, and every tensor equal (within ``atol``)."""
    assert first.keys() == second.keys()
    for key in first:
        assert torch.allclose(first[key].float(), second[key].float(), atol=atol, rtol=0), key


def cli_env(**extra: str) -> dict[str, str]:
    """Environment of a CLI subprocess: one CPU thread, so that every run compared here computes alike
    (and none oversubscribes the shared cores)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def run_to_completion(args: list[str]) -> str:
    """``tools/run_net.py args`` in this process (tests/tool_calls.py); assert success, return its console log."""
    done = call_tool("run_net.py", args)
    assert done.status == 0, f"run failed:\n{done.out[-3000:]}\n{done.err[-3000:]}"
    return done.out


def resumed_step(log: str) -> tuple[str, int, int]:
    """(checkpoint name, global step, steps into the epoch) of the restart's "resuming from" line."""
    found = re.search(r"resuming from \S*/(checkpoint_\w+\.pyth) at epoch \d+ step (\d+)"
                      r"(?:, (\d+) of \d+ steps into epoch)?", log)
    assert found, "the restart did not say where it resumed"
    return found.group(1), int(found.group(2)), int(found.group(3) or 0)


def assert_same_final_state(output_dir: Path, reference_dir: Path) -> None:
    """Final checkpoints equal: model weights, optimiser moments, step counters."""
    final, reference = load_checkpoint(output_dir / LATEST), load_checkpoint(reference_dir / LATEST)
    assert (final["epoch"], final["global_step"], final["epoch_step"]) == (2, 12, 0)
    assert_same_tensors(final["model"], reference["model"])
    for key in ("exp_avg", "exp_avg_sq"):
        assert_same_tensors({i: s[key] for i, s in final["optimizer"]["state"].items()},
                            {i: s[key] for i, s in reference["optimizer"]["state"].items()})
