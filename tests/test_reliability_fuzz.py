"""Bad video bytes never take a run down: mutated clips through every decoding backend.

Four real clips (H.264 in MP4 and MKV, VP9 in WebM, MPEG-4 Part 2 in AVI) are mutated 24 ways each,
deterministically (seeded): bit flips (1 and 64 bits), a zeroed 4 KB chunk, truncation, a damaged
header (the first bytes zeroed or randomised) and two chunks swapped; 96 mutants. Each available
backend (pyav, torchcodec, decord, auto) probes every mutant and reads its first, middle and last
frames in a child process, so that a crash (a signal in native code) or a hang is seen as such and
named. The only exception allowed is the project's DecodeError.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from videos import make_indexed_video

from videovit.data.decoding import available_backends

pytestmark = pytest.mark.slow  # child processes decoding 96 files per backend

CLIPS = [("h264", "mp4"), ("h264", "mkv"), ("vp9", "webm"), ("mpeg4", "avi")]
MUTATIONS = ("flip_bit", "flip_bits", "zero_chunk", "truncate", "damage_header", "swap_chunks")
MUTANTS_PER_CLIP = 24
CHILD_TIMEOUT = 300  # seconds for one backend's 96 mutants; measured about 5 here (no mutant hangs)

# Runs in the child: probe and read every mutant, write one JSON line per mutant as it ends (so a crash
# or hang is pinned on the mutant that started last without ending).
CHILD = """
import json, sys, traceback
from videovit.data.decoding import probe_video, read_frames
from videovit.errors import DecodeError
backend, progress, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(progress, "a", encoding="utf-8") as out:
    for path in paths:
        out.write(json.dumps({"start": path}) + "\\n"); out.flush()
        outcome = "decoded"
        try:
            frames = probe_video(path, backend).num_frames
            read_frames(path, sorted({0, frames // 2, frames - 1}), backend)
        except DecodeError:
            outcome = "DecodeError"
        except Exception as error:
            outcome = f"{type(error).__name__}: {error}"
        out.write(json.dumps({"end": path, "outcome": outcome}) + "\\n"); out.flush()
"""


def mutate(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    """``data`` damaged the ``kind`` way (see MUTATIONS), at places drawn from ``rng``."""
    out = bytearray(data)
    if kind in ("flip_bit", "flip_bits"):
        for bit in rng.choice(len(out) * 8, size=1 if kind == "flip_bit" else 64, replace=False):
            out[bit // 8] ^= 1 << (bit % 8)
    elif kind == "zero_chunk":
        start = int(rng.integers(0, max(1, len(out) - 4096)))
        out[start:start + 4096] = bytes(len(out[start:start + 4096]))
    elif kind == "truncate":
        del out[int(rng.integers(1, len(out))):]
    elif kind == "damage_header":
        size = int(rng.integers(8, 512))
        out[:size] = bytes(size) if rng.integers(2) else rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    elif kind == "swap_chunks":
        size = int(rng.integers(64, 2048))
        first, second = sorted(int(x) for x in rng.choice(len(out) - size, size=2, replace=False))
        if second - first >= size:
            out[first:first + size], out[second:second + size] = out[second:second + size], out[first:first + size]
    else:
        raise ValueError(kind)
    return bytes(out)


@pytest.fixture(scope="module")
def mutants(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("mutants")
    paths = []
    for c, (codec, container) in enumerate(CLIPS):
        clip = make_indexed_video(folder / f"clip_{codec}.{container}", 24, codec, size=(64, 48), gop=6)
        original = clip.read_bytes()
        for m in range(MUTANTS_PER_CLIP):
            kind = MUTATIONS[m % len(MUTATIONS)]
            path = folder / f"{codec}_{container}_{m:02d}_{kind}.{container}"
            path.write_bytes(mutate(original, kind, np.random.default_rng([c, m])))
            paths.append(path)
    return paths


def test_the_mutations_are_deterministic_and_damaging(mutants) -> None:
    assert len(mutants) == len(CLIPS) * MUTANTS_PER_CLIP == 96
    rng_bytes = [mutate(b"x" * 10_000, kind, np.random.default_rng(7)) for kind in MUTATIONS]
    assert rng_bytes == [mutate(b"x" * 10_000, kind, np.random.default_rng(7)) for kind in MUTATIONS]
    originals = {p.suffix: (p.parent / f"clip_{p.name.split('_')[0]}{p.suffix}").read_bytes() for p in mutants}
    assert all(path.read_bytes() != originals[path.suffix] for path in mutants if "swap" not in path.name)


@pytest.mark.parametrize("backend", ["pyav", "torchcodec", "decord", "auto"])
def test_every_mutant_ends_in_frames_or_a_decode_error_without_crash_or_hang(backend, mutants, tmp_path) -> None:
    if backend not in available_backends():
        pytest.skip(f"the {backend} backend cannot run here")
    progress = tmp_path / "progress.jsonl"
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, backend, str(progress), *map(str, mutants)],
                              capture_output=True, text=True, timeout=CHILD_TIMEOUT)
        hung = False
    except subprocess.TimeoutExpired:
        done, hung = None, True
    records = [json.loads(line) for line in progress.read_text().splitlines()] if progress.is_file() else []
    ended = {record["end"]: record["outcome"] for record in records if "end" in record}
    unfinished = [record["start"] for record in records if "start" in record and record["start"] not in ended]
    assert not hung, f"{backend} hung on {unfinished[-1:] or 'start-up'} (no answer in {CHILD_TIMEOUT} s)"
    assert done.returncode == 0, (f"{backend} crashed (status {done.returncode}) on {unfinished[-1:]}:\n"
                                  f"{done.stderr[-2000:]}")
    others = {path: outcome for path, outcome in ended.items() if outcome not in ("decoded", "DecodeError")}
    assert not others, f"{backend}: exceptions other than DecodeError: {others}"
    assert len(ended) == len(mutants)
    counts = {outcome: list(ended.values()).count(outcome) for outcome in ("decoded", "DecodeError")}
    print(f"{backend}: {len(mutants)} mutants, 0 crashes, 0 hangs; {counts['decoded']} decoded, "
          f"{counts['DecodeError']} DecodeError")
