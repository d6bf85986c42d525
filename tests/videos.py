"""Test videos whose frames carry their own index, and broken files (a helper module, not tests).

Each frame shows a grid of 4 x 8 big black/white blocks: the top two rows hold the frame index as
16 bits (most significant first), the bottom two rows hold the same bits inverted. Blocks survive
lossy compression; the inverted copy lets ``frame_index_of`` reject a garbage frame instead of
reading a wrong index from it. A faint moving texture keeps encoders busy with motion.

Importing decord (which loads its library with RTLD_GLOBAL) makes its bundled libvpx shadow
PyAV's, after which PyAV cannot open the VP8/VP9 encoders. Importing this module encodes a tiny
VP8 and VP9 clip first, so that PyAV's libvpx symbols are bound before any test loads decord.
"""
from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

CODE_BITS = 16
GRID_ROWS, GRID_COLS = 4, 8
_BLACK, _WHITE = 32, 224
_CLEAR_MARGIN = 48  # a block mean must be this far from mid-grey to count as a clear bit

# Short codec name -> (FFmpeg encoder, pixel format).
ENCODERS = {
    "h264": ("libx264", "yuv420p"),
    "hevc": ("libx265", "yuv420p"),
    "vp9": ("libvpx-vp9", "yuv420p"),
    "vp8": ("libvpx", "yuv420p"),
    "mpeg4": ("mpeg4", "yuv420p"),
    "mpeg2video": ("mpeg2video", "yuv420p"),
    "mjpeg": ("mjpeg", "yuvj420p"),
}

# (codec, container) pairs that the decoding tests cover; container is the file extension.
FORMATS = [
    ("h264", "mp4"),
    ("h264", "mkv"),
    ("hevc", "mp4"),
    ("vp9", "webm"),
    ("vp8", "ogg"),
    ("mpeg4", "avi"),
    ("mpeg2video", "mpg"),
    ("mjpeg", "avi"),
]


def _code_blocks(index: int) -> np.ndarray:
    """The (4, 8) block pattern of ``index``: 1 = white."""
    if not 0 <= index < 2**CODE_BITS:
        raise ValueError(f"index {index} does not fit in {CODE_BITS} bits")
    bits = np.array([(index >> (CODE_BITS - 1 - b)) & 1 for b in range(CODE_BITS)], dtype=np.uint8)
    return np.concatenate([bits, 1 - bits]).reshape(GRID_ROWS, GRID_COLS)


def _block_edges(length: int, parts: int) -> np.ndarray:
    """Pixel boundaries splitting ``length`` pixels into ``parts`` nearly equal blocks."""
    return np.linspace(0, length, parts + 1).round().astype(int)


def indexed_frame(index: int, size: tuple[int, int]) -> np.ndarray:
    """The (H, W, 3) uint8 RGB frame that encodes ``index``; ``size`` is (W, H)."""
    width, height = size
    rows, cols = _block_edges(height, GRID_ROWS), _block_edges(width, GRID_COLS)
    frame = np.empty((height, width), dtype=np.int16)
    for r, row_bits in enumerate(_code_blocks(index)):
        for c, bit in enumerate(row_bits):
            frame[rows[r]:rows[r + 1], cols[c]:cols[c + 1]] = _WHITE if bit else _BLACK
    yy, xx = np.mgrid[0:height, 0:width]
    texture = (12 * np.sin((xx + 3 * index) / 5.0) * np.cos((yy - 2 * index) / 7.0)).astype(np.int16)
    rgb = np.stack([frame + texture, frame - texture, frame + texture // 2], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def frame_index_of(frame: np.ndarray) -> int:
    """Read the index drawn by ``indexed_frame`` from a decoded (H, W, 3) frame.

    Raises ValueError when a block is not clearly black or white or when the inverted copy
    disagrees: a garbage frame never passes for a valid index.
    """
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) frame, got shape {frame.shape}")
    height, width = frame.shape[:2]
    rows, cols = _block_edges(height, GRID_ROWS), _block_edges(width, GRID_COLS)
    grey = frame.astype(np.float32).mean(axis=2)
    blocks = np.empty((GRID_ROWS, GRID_COLS), dtype=np.float32)
    for r in range(GRID_ROWS):
        for c in range(GRID_COLS):
            dy = (rows[r + 1] - rows[r]) // 4
            dx = (cols[c + 1] - cols[c]) // 4
            blocks[r, c] = grey[rows[r] + dy:rows[r + 1] - dy, cols[c] + dx:cols[c + 1] - dx].mean()
    if np.any(np.abs(blocks - 128) < _CLEAR_MARGIN):
        raise ValueError(f"frame does not carry a clear index code (block means {blocks.round()})")
    bits = (blocks > 128).astype(np.uint8).reshape(-1)
    value_bits, inverted_bits = bits[:CODE_BITS], bits[CODE_BITS:]
    if np.any(value_bits == inverted_bits):
        raise ValueError("frame index code fails its inverted-copy check")
    return int("".join(map(str, value_bits)), 2)


def make_indexed_video(
    path: Path,
    num_frames: int,
    codec: str = "h264",
    container: str | None = None,
    size: tuple[int, int] = (128, 96),
    fps: int = 25,
    bframes: int = 2,
    gop: int = 12,
    muxer_options: dict[str, str] | None = None,
    encoder_options: dict[str, str] | None = None,
) -> Path:
    """Encode ``num_frames`` indexed frames into ``path`` and return it.

    ``codec`` is a key of ``ENCODERS``; ``container`` an FFmpeg muxer name (None: from the file
    extension); ``bframes`` is the maximum number of consecutive B-frames (where the codec has
    them); ``gop`` the keyframe interval, small so that seeking has keyframes to land on;
    ``muxer_options`` go to the muxer (e.g. ``{"movflags": "faststart"}``: MP4 index first) and
    ``encoder_options`` extend the encoder's (e.g. ``{"x264-params": "open-gop=1"}``).
    """
    if codec not in ENCODERS:
        raise ValueError(f"unknown codec {codec!r}; choose one of {sorted(ENCODERS)}")
    encoder, pix_fmt = ENCODERS[codec]
    path = Path(path)
    with av.open(str(path), mode="w", format=container, options=muxer_options or {}) as output:
        stream = output.add_stream(encoder, rate=Fraction(fps))
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        stream.time_base = Fraction(1, fps)
        stream.codec_context.gop_size = gop
        if codec in {"h264", "hevc", "mpeg4", "mpeg2video"}:
            stream.codec_context.max_b_frames = bframes
        if codec == "h264":
            stream.options = {"preset": "veryfast", "crf": "18"}
        elif codec == "hevc":
            stream.options = {"preset": "ultrafast", "x265-params": f"bframes={bframes}:log-level=error"}
        elif codec in {"vp9", "vp8"}:
            stream.options = {"deadline": "realtime", "cpu-used": "8", "crf": "10", "b": "0"}
        else:
            stream.codec_context.qmin, stream.codec_context.qmax = 2, 4
        stream.options = {**stream.options, **(encoder_options or {})}
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(indexed_frame(index, size), format="rgb24")
            frame.pts = index
            output.mux(stream.encode(frame.reformat(format=pix_fmt)))
        output.mux(stream.encode(None))
    return path


def make_timed_video(path: Path, times: Sequence[float], codec: str = "h264", size: tuple[int, int] = (128, 96),
                     time_base: Fraction = Fraction(1, 90000)) -> Path:
    """Indexed frames shown at ``times`` (seconds): a variable frame rate, as phones record. The
    stream declares the rate of the median frame interval, as such files do."""
    encoder, pix_fmt = ENCODERS[codec]
    nominal = Fraction(1 / float(np.median(np.diff(times)))).limit_denominator(1001)
    with av.open(str(path), mode="w") as output:
        stream = output.add_stream(encoder, rate=nominal)
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        stream.time_base = stream.codec_context.time_base = time_base
        if codec == "h264":
            stream.options = {"preset": "veryfast", "crf": "18"}
        elif codec in {"vp9", "vp8"}:
            stream.options = {"deadline": "realtime", "cpu-used": "8", "crf": "10", "b": "0"}
        for index, seconds in enumerate(times):
            frame = av.VideoFrame.from_ndarray(indexed_frame(index, size), format="rgb24").reformat(format=pix_fmt)
            frame.pts, frame.time_base = round(seconds / time_base), time_base
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return Path(path)


def make_avi_with_repeats(path: Path, num_frames: int, codec: str = "cinepak", repeat_every: int = 3,
                          size: tuple[int, int] = (128, 96), fps: int = 25) -> Path:
    """An AVI of ``num_frames`` frame slots where only every ``repeat_every``-th slot holds a picture
    (indexed by its slot) and the others are empty chunks, the AVI way of repeating the previous frame
    (old capture and cinepak files; VP8/VP9 after hidden frames). The header counts every slot, the
    demuxer skips the empty ones: a complete file whose header "promises" more frames than decode."""
    encoder, pix_fmt = {"cinepak": ("cinepak", "rgb24"), "vp9": ("libvpx-vp9", "yuv420p")}[codec]
    with av.open(str(path), mode="w", format="avi") as output:
        stream = output.add_stream(encoder, rate=Fraction(fps))
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        if codec == "vp9":
            stream.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        for slot in range(num_frames):
            if slot % repeat_every:
                repeat = av.Packet(b"")
                repeat.stream, repeat.pts, repeat.dts, repeat.time_base = stream, slot, slot, stream.time_base
                output.mux(repeat)
                continue
            frame = av.VideoFrame.from_ndarray(indexed_frame(slot, size), format="rgb24").reformat(format=pix_fmt)
            frame.pts = slot
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return Path(path)


def make_edit_list_copy(source: Path, path: Path, first_frame: int) -> Path:
    """Remux an MP4 so that an edit list hides the frames before ``first_frame``.

    Like ``ffmpeg -ss ... -c copy``: packets are copied from the keyframe at or before the cut and
    timestamps shifted so that ``first_frame`` starts at 0; the demuxer marks the earlier packets
    for discarding, so a correct reader's frame 0 shows code ``first_frame``.
    """
    with av.open(str(source)) as source_container:
        stream = source_container.streams.video[0]
        packets = [packet for packet in source_container.demux(stream) if packet.size]
        cut_pts = sorted(packet.pts for packet in packets)[first_frame]
        start = max(i for i, packet in enumerate(packets) if packet.is_keyframe and packet.pts <= cut_pts)
        with av.open(str(path), mode="w", format="mp4") as output:
            output_stream = output.add_stream_from_template(stream)
            for packet in packets[start:]:
                packet.pts -= cut_pts
                packet.dts -= cut_pts
                packet.stream = output_stream
                output.mux(packet)
    return Path(path)


def make_truncated_copy(source: Path, path: Path, keep_fraction: float = 0.5) -> Path:
    """Write the first ``keep_fraction`` of ``source``'s bytes to ``path`` (a cut-off download)."""
    data = Path(source).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep_fraction)])
    return Path(path)


def make_zero_byte_file(path: Path) -> Path:
    """Create an empty file at ``path``."""
    Path(path).write_bytes(b"")
    return Path(path)


def make_random_bytes_file(path: Path, num_bytes: int = 50_000, seed: int = 0) -> Path:
    """Fill ``path`` with random bytes (garbage named like a video)."""
    Path(path).write_bytes(np.random.default_rng(seed).integers(0, 256, num_bytes, dtype=np.uint8).tobytes())
    return Path(path)


def decoded_indices(frames: np.ndarray) -> list[int]:
    """The index read from every frame of an (N, H, W, 3) array."""
    return [frame_index_of(frame) for frame in frames]


def _bind_pyav_libvpx() -> None:
    """Encode a tiny VP8 and VP9 clip so later encodes keep working once decord is loaded."""
    if "decord" in sys.modules:
        return
    with tempfile.TemporaryDirectory() as folder:
        make_indexed_video(Path(folder) / "vp9.webm", 2, "vp9")
        make_indexed_video(Path(folder) / "vp8.webm", 2, "vp8")


_bind_pyav_libvpx()

__all__ = [
    "ENCODERS", "FORMATS", "decoded_indices", "frame_index_of", "indexed_frame", "make_avi_with_repeats",
    "make_indexed_video", "make_timed_video",
    "make_edit_list_copy", "make_random_bytes_file", "make_truncated_copy", "make_zero_byte_file",
]
