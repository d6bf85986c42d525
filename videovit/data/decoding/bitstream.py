"""Tell from a keyframe packet's bytes whether decoding can restart exactly there.

Containers flag "keyframes" that are not always clean restart points: an H.264 open-GOP I-frame or
a recovery-point frame is flagged like an IDR, yet frames after it may reference frames before it,
and every seek-based reader then returns wrong pixels silently (docs/data.md, "Decoding"). Only an IDR
access unit empties the H.264 reference buffers, and every frame decoded after it is also displayed
after it, so IDR packets are the only H.264 keyframes this package seeks to. A VP9 key frame
resets every reference buffer by specification; it is recognised from its uncompressed header.
"""
from __future__ import annotations

_H264_IDR_SLICE = 5


def _annex_b_nal_types(data: bytes) -> list[int]:
    """NAL unit types of an Annex B byte stream (units separated by 00 00 01 start codes)."""
    types, start = [], data.find(b"\x00\x00\x01")
    while start != -1 and start + 3 < len(data):
        types.append(data[start + 3] & 0x1F)
        start = data.find(b"\x00\x00\x01", start + 3)
    return types


def _length_prefixed_nal_types(data: bytes, length_size: int) -> list[int]:
    """NAL unit types of an ISO/IEC 14496-15 sample (units preceded by their big-endian length)."""
    types, position = [], 0
    while position + length_size < len(data):
        size = int.from_bytes(data[position:position + length_size], "big")
        if size == 0:
            break
        types.append(data[position + length_size] & 0x1F)
        position += length_size + size
    return types


def h264_nal_length_size(extradata: bytes | None) -> int | None:
    """NAL length-prefix size from an avcC record, or None when the stream is Annex B."""
    if extradata and len(extradata) > 4 and extradata[0] == 1:
        return (extradata[4] & 0x03) + 1
    return None


def is_h264_idr(data: bytes, nal_length_size: int | None) -> bool:
    """True when the H.264 access unit ``data`` contains an IDR slice (a clean restart point)."""
    if nal_length_size is None:
        types = _annex_b_nal_types(data)
    else:
        types = _length_prefixed_nal_types(data, nal_length_size)
    return _H264_IDR_SLICE in types


def is_vp9_key_frame(data: bytes) -> bool:
    """True when the VP9 frame (or superframe) ``data`` starts with a key frame."""
    if not data or data[0] >> 6 != 0b10:  # frame_marker
        return False
    first = data[0]
    profile = ((first >> 5) & 1) | (((first >> 4) & 1) << 1)
    show_existing_bit = 2 if profile == 3 else 3  # profile 3 has one reserved bit first
    if (first >> show_existing_bit) & 1:
        return False
    return (first >> (show_existing_bit - 1)) & 1 == 0  # frame_type 0 = KEY_FRAME
