"""Temporal sampling (see docs/data.md): exact indices on hand-computed cases, both modes and splits."""
from __future__ import annotations

import pytest
import torch

from videovit.data.sampling import dense_indices, sample_indices, uniform_indices


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------- uniform, test

@pytest.mark.parametrize("num_video_frames, view, num_views, expected", [
    # 80 frames, 8 segments of 10: centres at 5, 15, ...
    (80, 0, 1, [5, 15, 25, 35, 45, 55, 65, 75]),
    # 3 views: offsets 10*1/4, 10*2/4, 10*3/4 in each segment
    (80, 0, 3, [2, 12, 22, 32, 42, 52, 62, 72]),
    (80, 1, 3, [5, 15, 25, 35, 45, 55, 65, 75]),
    (80, 2, 3, [7, 17, 27, 37, 47, 57, 67, 77]),
    # segments of 12.5: floor(12.5 * (i + 0.5))
    (100, 0, 1, [6, 18, 31, 43, 56, 68, 81, 93]),
    # 3 frames for 8 segments: frames repeat in order, never past the end
    (3, 0, 1, [0, 0, 0, 1, 1, 2, 2, 2]),
    (1, 0, 1, [0] * 8),
])
def test_uniform_test_views_exact(num_video_frames, view, num_views, expected):
    assert uniform_indices(num_video_frames, 8, train=False, view=view, num_views=num_views) == expected


def test_uniform_test_last_view_of_many_stays_inside_the_video():
    indices = uniform_indices(16, 8, train=False, view=9, num_views=10)
    # segment 2 frames, offset 2 * 10/11 = 1.82 -> second frame of each segment
    assert indices == [1, 3, 5, 7, 9, 11, 13, 15]


# ---------------------------------------------------------------------------- uniform, train

def test_uniform_train_takes_one_frame_in_each_segment_and_reaches_all_of_them():
    seen = [set() for _ in range(4)]
    for seed in range(200):
        indices = uniform_indices(16, 4, train=True, generator=_generator(seed))
        for segment, index in enumerate(indices):
            assert 4 * segment <= index < 4 * (segment + 1)
            seen[segment].add(index)
    assert seen == [set(range(4 * s, 4 * s + 4)) for s in range(4)]


def test_uniform_train_short_video_stays_in_range_and_in_order():
    for seed in range(50):
        indices = uniform_indices(3, 8, train=True, generator=_generator(seed))
        assert indices == sorted(indices)
        assert 0 <= min(indices) and max(indices) <= 2


def test_uniform_train_is_reproducible_from_the_generator():
    first = uniform_indices(300, 8, train=True, generator=_generator(7))
    assert first == uniform_indices(300, 8, train=True, generator=_generator(7))
    assert first != uniform_indices(300, 8, train=True, generator=_generator(8))


# ---------------------------------------------------------------------------- dense, test

@pytest.mark.parametrize("num_video_frames, view, num_views, video_fps, expected", [
    # stride 8 at 30 fps on a 30 fps video: last start 99 - 24 = 75; N=1 centred at 37.5
    (100, 0, 1, 30, [37, 45, 53, 61]),
    # N=3 spans the first to the last possible start: 0, 37.5, 75
    (100, 0, 3, 30, [0, 8, 16, 24]),
    (100, 1, 3, 30, [37, 45, 53, 61]),
    (100, 2, 3, 30, [75, 83, 91, 99]),
    # a 15 fps video: stride 8 at 30 fps is 4 video frames; last start 99 - 12 = 87 -> 43.5
    (100, 0, 1, 15, [43, 47, 51, 55]),
    # a 60 fps video: 16 video frames apart; last start 99 - 48 = 51 -> 25.5
    (100, 0, 1, 60, [25, 41, 57, 73]),
    # shorter than the clip: starts at 0 and repeats the last frame
    (10, 0, 1, 30, [0, 8, 9, 9]),
    (10, 1, 2, 30, [0, 8, 9, 9]),
])
def test_dense_test_views_exact(num_video_frames, view, num_views, video_fps, expected):
    indices = dense_indices(num_video_frames, 4, stride=8, train=False, view=view, num_views=num_views,
                            video_fps=video_fps, target_fps=30)
    assert indices == expected


def test_dense_without_fps_uses_video_frames():
    assert dense_indices(100, 4, stride=8, train=False) == [37, 45, 53, 61]


# ---------------------------------------------------------------------------- dense, train

def test_dense_train_random_start_with_exact_stride():
    starts = set()
    for seed in range(200):
        indices = dense_indices(100, 4, stride=8, train=True, video_fps=30, target_fps=30,
                                generator=_generator(seed))
        assert 0 <= indices[0] <= 75
        assert [b - a for a, b in zip(indices, indices[1:], strict=False)] == [8, 8, 8]
        starts.add(indices[0])
    assert min(starts) <= 5 and max(starts) >= 70


def test_dense_train_short_video_repeats_last_frame():
    for seed in range(20):
        indices = dense_indices(5, 4, stride=2, train=True, generator=_generator(seed))
        assert indices == [0, 2, 4, 4]


# ---------------------------------------------------------------------------- dispatch and errors

def test_sample_indices_dispatches_both_methods():
    assert sample_indices("uniform", 80, 8, train=False) == [5, 15, 25, 35, 45, 55, 65, 75]
    assert sample_indices("dense", 100, 4, train=False, stride=8, video_fps=30, target_fps=30) == \
        [37, 45, 53, 61]


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="random"), "unknown sampling method"),
    (dict(num_video_frames=0), "0 frames"),
    (dict(view=3, num_views=3), "view 3 of 3"),
    (dict(method="dense", stride=0), "stride"),
])
def test_invalid_requests_raise(kwargs, message):
    args = dict(method="uniform", num_video_frames=50, num_frames=8, train=False, view=0, num_views=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        sample_indices(**args)
