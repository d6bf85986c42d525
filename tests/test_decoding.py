"""Frame-exact decoding: every backend returns exactly the frames asked for, or refuses the file.

All videos are encoded here with frames that carry their own index (``videos.py``), so a test can
read back which frame a backend really returned.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from built_once import built_once
from videos import (
    FORMATS,
    decoded_indices,
    make_edit_list_copy,
    make_indexed_video,
    make_random_bytes_file,
    make_truncated_copy,
    make_zero_byte_file,
)

from videovit.data import VideoInfo, probe_video, read_frames
from videovit.data.decoding import (
    BACKENDS,
    DecodeDeviceWarning,
    api,
    available_backends,
    backend_unavailable,
    check_backend,
    pyav_backend,
    resolve_decode_device,
    torchcodec_backend,
)
from videovit.data.decoding.index import index_file, index_video, save_index, stored_index
from videovit.data.decoding.torchcodec_backend import torchcodec_unavailable
from videovit.errors import DecodeError

NUM_FRAMES, FPS, SIZE = 60, 25, (128, 96)
# torchcodec needs the system's FFmpeg libraries (.ci/run installs them), decord its optional package;
# where one is missing its tests skip with the reason.
needs = {name: pytest.mark.skipif(backend_unavailable(name) is not None, reason=str(backend_unavailable(name)))
         for name in ("decord", "torchcodec")}
needs_torchcodec, needs_decord = needs["torchcodec"], needs["decord"]
BACKEND_NAMES = [pytest.param(name, marks=needs[name]) if name in needs else name for name in sorted(BACKENDS)]
USABLE_BACKENDS = sorted(available_backends())
CHECKED_BACKENDS = ("decord", "torchcodec")  # backends that refuse the files they would read wrongly

# Videos keyed by name: (codec, container extension, extra make_indexed_video arguments).
SPECIAL = {
    "h264_open_gop.mp4": ("h264", "mp4", {"encoder_options": {"x264-params": "open-gop=1"}}),
    "h264_faststart.mp4": ("h264", "mp4", {"muxer_options": {"movflags": "faststart"}}),
    "h264_gop24.mp4": ("h264", "mp4", {"gop": 24, "bframes": 3}),
}
EDIT_LIST_FIRST_FRAME = 15
# Where decord / torchcodec are exact (measured by these tests); each must refuse every other video.
DECORD_EXACT = {"h264.mp4", "h264.mkv", "vp9.webm", "h264_faststart.mp4", "h264_gop24.mp4"}
TORCHCODEC_EXACT = DECORD_EXACT | {"h264_edit_list.mp4"}
EXACT = {"decord": DECORD_EXACT, "torchcodec": TORCHCODEC_EXACT}


def _refused(backend: str, name: str) -> bool:
    """Whether ``backend`` must refuse the test video ``name``."""
    return backend in EXACT and name not in EXACT[backend]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every test video, by name: one per (codec, container), special H.264 cases, an edit-list cut (encoded
    once per session, tests/built_once.py)."""
    def encode(root: Path) -> dict[str, Path]:
        made = {}
        for codec, extension in FORMATS:
            name = f"{codec}.{extension}"
            made[name] = make_indexed_video(root / name, NUM_FRAMES, codec, size=SIZE, fps=FPS)
        for name, (codec, _extension, options) in SPECIAL.items():
            made[name] = make_indexed_video(root / name, NUM_FRAMES, codec, size=SIZE, fps=FPS, **options)
        made["h264_edit_list.mp4"] = make_edit_list_copy(made["h264.mp4"], root / "edit.mp4",
                                                         EDIT_LIST_FIRST_FRAME)
        return made

    return built_once(tmp_path_factory, "indexed_videos", encode)


def _first_code(name: str) -> int:
    """Index code shown by frame 0 of a test video."""
    return EDIT_LIST_FIRST_FRAME if name == "h264_edit_list.mp4" else 0


def _index_sets(num_frames: int, seed: int) -> list[list[int]]:
    """Sorted, unsorted, repeated, first/last, dense-run and far-jump index sets."""
    rng = np.random.default_rng(seed)
    last = num_frames - 1
    return [
        sorted(rng.choice(num_frames, 8, replace=False).tolist()),
        rng.choice(num_frames, 8, replace=False).tolist(),
        [0, 0, 5, 3, 3, last, 5],
        [0, last],
        [last],
        list(range(20, 36)),
        [last, 1, last - 1, 2, num_frames // 2],
        rng.integers(0, num_frames, 12).tolist(),
    ]


ALL_VIDEOS = [f"{codec}.{extension}" for codec, extension in FORMATS] + list(SPECIAL) + ["h264_edit_list.mp4"]


@pytest.mark.parametrize("name", ALL_VIDEOS)
def test_probe_counts_frames_and_reads_rate(videos: dict[str, Path], name: str) -> None:
    info = probe_video(videos[name])
    assert isinstance(info, VideoInfo)
    expected_frames = NUM_FRAMES - _first_code(name)
    assert (info.num_frames, info.fps, info.width, info.height) == (expected_frames, FPS, *SIZE)
    assert info.codec == name.split(".")[0].split("_")[0]


@pytest.mark.parametrize("backend", BACKEND_NAMES)
@pytest.mark.parametrize("name", ALL_VIDEOS)
def test_frames_are_exact_or_refused(videos: dict[str, Path], name: str, backend: str) -> None:
    num_frames = NUM_FRAMES - _first_code(name)
    refused = _refused(backend, name)
    for seed, indices in enumerate(_index_sets(num_frames, seed=len(name))):
        if refused:
            with pytest.raises(DecodeError, match=f"{backend}|edit list|restart"):
                read_frames(videos[name], indices, backend=backend)
            continue
        frames = read_frames(videos[name], indices, backend=backend)
        assert frames.shape == (len(indices), SIZE[1], SIZE[0], 3) and frames.dtype == np.uint8
        assert decoded_indices(frames) == [i + _first_code(name) for i in indices], (seed, indices)


@needs_decord
@pytest.mark.parametrize("name", ["h264_open_gop.mp4", "hevc.mp4", "mpeg4.avi", "mpeg2video.mpg"])
def test_decord_alone_returns_wrong_frames_where_refused(videos: dict[str, Path], name: str) -> None:
    """Why decord is refused there: read directly, it silently returns other frames than asked."""
    from decord import VideoReader, cpu  # after videos.py bound PyAV's libvpx (see there)

    reader = VideoReader(str(videos[name]), ctx=cpu(0), num_threads=1)
    index_sets = [[25, 5], [0, 59, 30], [40, 41, 42], [50, 3]]
    wrong = [s for s in index_sets if decoded_indices(reader.get_batch(s).asnumpy()) != s]
    assert wrong, "decord was exact here: the refusal in decord_backend may be relaxed"


@needs_torchcodec
@pytest.mark.parametrize("name", ["mpeg4.avi", "mpeg2video.mpg"])
def test_torchcodec_alone_returns_wrong_frames_where_refused(videos: dict[str, Path], name: str) -> None:
    """Why torchcodec is refused there: read directly, it returns other frames than asked or fails."""
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(str(videos[name]), seek_mode="exact", num_ffmpeg_threads=1, dimension_order="NHWC")
    wrong = []
    for indices in ([25, 5], [0, 59, 30], [40, 41, 42], [50, 3]):
        try:
            frames = decoder.get_frames_at(indices=indices).data.numpy()
        except RuntimeError:  # "no more frames left to decode" for an index the file holds
            wrong.append(indices)
            continue
        if decoded_indices(frames) != indices:
            wrong.append(indices)
    assert wrong, "torchcodec was exact here: its refusal in torchcodec_backend may be relaxed"


@needs_torchcodec
def test_auto_reads_with_torchcodec_where_it_is_exact(videos: dict[str, Path], monkeypatch) -> None:
    """auto hands the files torchcodec reads exactly to it, and the others to PyAV."""
    used = []
    original = api.read_with_torchcodec
    monkeypatch.setattr(api, "read_with_torchcodec", lambda *args: used.append(args[0].name) or original(*args))
    for name in ("h264.mp4", "mpeg4.avi", "h264_open_gop.mp4", "h264_edit_list.mp4"):
        frames = read_frames(videos[name], [0, 30], backend="auto")
        assert decoded_indices(frames) == [_first_code(name), 30 + _first_code(name)]
    assert used == ["h264.mp4", "edit.mp4"]


def test_without_torchcodec_auto_falls_back_and_an_explicit_choice_says_what_to_install(
        videos: dict[str, Path], monkeypatch) -> None:
    reason = torchcodec_unavailable.__wrapped__()  # the real message, whatever this machine has
    if reason is None:  # torchcodec works here: pretend the FFmpeg libraries are missing
        from torchcodec._core import ops

        monkeypatch.setattr(ops, "_FFMPEG_AVAILABLE", False)
        reason = torchcodec_unavailable.__wrapped__()
    assert reason is not None and ("apt-get install libavcodec" in reason or "pip install torchcodec" in reason)
    monkeypatch.setattr(api, "torchcodec_unavailable", lambda: reason)
    monkeypatch.setattr(torchcodec_backend, "torchcodec_unavailable", lambda: reason)
    assert decoded_indices(read_frames(videos["h264.mp4"], [7], backend="auto")) == [7]
    with pytest.raises(ValueError, match="'torchcodec' is not available: torchcodec") as caught:
        check_backend("torchcodec")
    assert "\n" not in str(caught.value)
    with pytest.raises(ValueError, match="install"):
        read_frames(videos["h264.mp4"], [7], backend="torchcodec")


@pytest.mark.parametrize(("name", "gop"), [("h264_gop24.mp4", 24), ("h264.mkv", 12), ("vp9.webm", 12)])
def test_pyav_seek_path_is_used_and_exact(videos: dict[str, Path], name: str, gop: int) -> None:
    """Far indices are read after seeks to IDR / key frames, exactly and without falling back."""
    path = videos[name]
    index = index_video(path)
    assert index.restart_frames == tuple(range(0, NUM_FRAMES, gop)) and index.all_keyframes_restart
    for indices in ([30, 50, 59], [2, 27, 49], [59, 0, 26]):
        wanted = sorted(set(indices))
        runs = pyav_backend._plan_runs(wanted, index)
        assert any(run.seek_to is not None for run in runs)
        frames = pyav_backend._decode_with_seeks(path, runs, index)  # raises rather than fall back
        assert decoded_indices(np.stack([frames[i] for i in wanted])) == wanted


@pytest.mark.parametrize("backend", [name for name in BACKEND_NAMES if name != "pyav"])
def test_backends_return_identical_pixels(videos: dict[str, Path], backend: str) -> None:
    indices = [0, 17, 33, 44]
    for name in sorted(EXACT.get(backend, ALL_VIDEOS)):
        pyav = read_frames(videos[name], indices, backend="pyav")
        np.testing.assert_array_equal(pyav, read_frames(videos[name], indices, backend=backend))


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_indices_past_the_end_raise(videos: dict[str, Path], backend: str) -> None:
    for name in ["h264.mp4", "vp9.webm", "h264_gop24.mp4", "mpeg4.avi", "h264_edit_list.mp4"]:
        if _refused(backend, name):
            continue  # refused whatever the indices (test_frames_are_exact_or_refused)
        num_frames = probe_video(videos[name]).num_frames
        with pytest.raises(DecodeError, match=str(num_frames)):
            read_frames(videos[name], [0, num_frames], backend=backend)


@pytest.mark.parametrize("indices", [[], [-1], [1.0], [True]])
def test_invalid_indices_are_rejected(videos: dict[str, Path], indices: list) -> None:
    with pytest.raises(ValueError):
        read_frames(videos["h264.mp4"], indices)


@pytest.fixture(scope="module")
def broken(videos: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files no backend can open: missing, empty, random bytes, an MP4 cut before its index."""
    root = tmp_path_factory.mktemp("broken")
    return {
        "missing": root / "missing.mp4",
        "zero_bytes": make_zero_byte_file(root / "zero.mp4"),
        "random_mp4": make_random_bytes_file(root / "random.mp4"),
        "random_webm": make_random_bytes_file(root / "random.webm", seed=1),
        "truncated_mp4": make_truncated_copy(videos["h264.mp4"], root / "cut.mp4", 0.6),
    }


@pytest.mark.parametrize("backend", BACKEND_NAMES)
@pytest.mark.parametrize("kind", ["missing", "zero_bytes", "random_mp4", "random_webm", "truncated_mp4"])
def test_broken_files_raise_decode_error_naming_the_path(
    broken: dict[str, Path], kind: str, backend: str
) -> None:
    path = broken[kind]
    with pytest.raises(DecodeError, match=path.name):
        probe_video(path, backend=backend)
    with pytest.raises(DecodeError, match=path.name):
        read_frames(path, [0, 1], backend=backend)


@pytest.mark.parametrize(
    "name", ["h264_faststart.mp4", "vp9.webm", "h264.mkv", "mpeg4.avi", "mpeg2video.mpg"]
)
@pytest.mark.parametrize("keep", [0.35, 0.7])
def test_truncated_files_give_their_valid_prefix_only(
    videos: dict[str, Path], tmp_path: Path, name: str, keep: float
) -> None:
    """A cut-off file keeps a shorter count; frames past it raise, frames before it are exact."""
    path = make_truncated_copy(videos[name], tmp_path / f"cut_{name}", keep)
    num_frames = probe_video(path).num_frames
    assert 0 < num_frames < NUM_FRAMES
    prefix = list(range(num_frames // 2))
    for backend in USABLE_BACKENDS:
        with pytest.raises(DecodeError, match=path.name):
            read_frames(path, [num_frames], backend=backend)
        try:
            whole = read_frames(path, list(range(num_frames)), backend=backend)
        except DecodeError as error:  # a refusal, or a frame the decoder flags as damaged
            assert path.name in str(error)
        else:
            decoded_indices(whole)  # raises on a garbage frame
        try:
            frames = read_frames(path, prefix, backend=backend)
        except DecodeError:
            assert backend in CHECKED_BACKENDS  # refusing is allowed, wrong frames are not
            continue
        assert decoded_indices(frames) == prefix


@needs_decord
def test_the_backend_is_chosen_per_call_and_unknown_names_are_refused(videos: dict[str, Path]) -> None:
    with pytest.raises(DecodeError, match="decord"):
        read_frames(videos["mpeg4.avi"], [0], backend="decord")  # decord refuses what it cannot read exactly
    assert decoded_indices(read_frames(videos["mpeg4.avi"], [3])) == [3]  # the default, auto, reads it
    with pytest.raises(ValueError, match="unknown decoding backend 'ffmpeg'"):
        read_frames(videos["mpeg4.avi"], [3], backend="ffmpeg")
    with pytest.raises(ValueError, match="unknown decoding backend 'ffmpeg'"):
        check_backend("ffmpeg")


def test_decode_error_pickles_with_its_path_and_reason(broken: dict[str, Path]) -> None:
    """Worker processes send errors to their parent by pickling them."""
    with pytest.raises(DecodeError) as caught:
        read_frames(broken["random_mp4"], [0])
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (type(copy), str(copy), copy.path) == (DecodeError, str(caught.value), str(broken["random_mp4"]))


def test_a_stored_index_stands_in_for_the_demux_only_while_the_file_keeps_its_bytes(tmp_path: Path) -> None:
    """The exactness proof may be stored beside a video (prepare_videos does), never trusted for other bytes."""
    path = tmp_path / "clip.mp4"
    make_indexed_video(path, NUM_FRAMES, size=SIZE, fps=FPS, gop=12)
    demuxed = index_video(path)
    stored = save_index(path, demuxed)
    assert stored == index_file(path) and stored.name == "clip.mp4.index.json"
    assert stored_index(path) == demuxed
    wanted = [0, 13, 59, 13]
    assert decoded_indices(read_frames(path, wanted, "auto")) == wanted

    record = stored.read_text()
    stored.write_text(record[: len(record) // 2])  # damaged
    assert stored_index(path) is None
    stored.write_text(json.dumps({**json.loads(record), "format": "another/1"}))
    assert stored_index(path) is None
    stored.write_text(record)
    with path.open("ab") as file:
        file.write(b"\0")  # the file changed since the index was stored: it no longer counts
    assert stored_index(path) is None
    assert index_video(path).info.num_frames == NUM_FRAMES  # demuxed again


@needs["torchcodec"]
def test_gpu_decoding_falls_back_to_exact_cpu_decoding_with_one_warning(tmp_path: Path) -> None:
    """DATA.DECODE_DEVICE cuda: where the GPU decoder cannot run (here: no GPU), the frames come from the CPU
    decoder behind the same exactness checks, after one DecodeDeviceWarning (tests/test_gpu.py covers a GPU)."""
    import torch

    path = tmp_path / "clip.mp4"
    make_indexed_video(path, NUM_FRAMES, size=SIZE, fps=FPS, gop=12)
    wanted = [3, 40, 3, 59]
    if not torch.cuda.is_available():
        with pytest.warns(DecodeDeviceWarning, match="PyTorch sees no GPU; decoding on the CPU"):
            assert resolve_decode_device("cuda", "auto") == "cpu"
        with pytest.warns(DecodeDeviceWarning, match="GPU decoder failed on .*clip.mp4"):
            frames = read_frames(path, wanted, "torchcodec", device="cuda")
        assert decoded_indices(frames) == wanted
    with pytest.warns(DecodeDeviceWarning, match="the 'pyav' backend decodes on the CPU only"):
        assert resolve_decode_device("cuda", "pyav") == "cpu"
    assert resolve_decode_device("cpu", "auto") == "cpu"
    with pytest.raises(ValueError, match="decode device 'gpu'"):
        resolve_decode_device("gpu", "auto")
