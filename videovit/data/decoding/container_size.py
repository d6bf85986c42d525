"""How long a video file says it is: the byte length its top-level structure declares.

RIFF (AVI), ISO base media (MP4, MOV, M4V, 3GP) and EBML (Matroska, WebM) files give the size of
every top-level element. A file shorter than the sizes it declares lost its end: a cut-off download
or copy, whatever its frame counts say. Frame counts cannot tell: an AVI stores a repeated frame as
an empty chunk that its header counts and the demuxer skips, VP8/VP9 in AVI add empty chunks after
hidden frames, an edit list hides frames an MP4 holds (docs/data.md, "Checking videos"). Ogg pages,
MPEG streams and a Matroska segment of unknown size (a live recording) declare no length.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# Top-level boxes of ISO base media files (ISO/IEC 14496-12 and QuickTime); anything else after the
# last of these is trailing bytes, not a box whose end is missing.
_BMFF_BOXES = {b"ftyp", b"styp", b"moov", b"mdat", b"moof", b"mfra", b"free", b"skip", b"wide", b"uuid",
               b"meta", b"sidx", b"ssix", b"pdin", b"pnot", b"udta", b"emsg", b"prft", b"junk"}
# Top-level chunks of RIFF files: the RIFF form itself, OpenDML's AVIX continuations, padding.
_RIFF_CHUNKS = {b"RIFF", b"JUNK"}
_EBML_HEADER = bytes.fromhex("1a45dfa3")
_EBML_SEGMENT = bytes.fromhex("18538067")


def declared_length(path: str | Path) -> int | None:
    """The byte length the file's top-level structure declares, or None when it declares none (or is
    not a RIFF, ISO base media or Matroska file)."""
    with open(path, "rb") as stream:
        head = stream.read(12)
        if head[:4] == b"RIFF":
            return _walk(stream, _riff_element)
        if head[4:8] in _BMFF_BOXES:
            return _walk(stream, _bmff_element)
        if head[:4] == _EBML_HEADER:
            return _matroska_length(stream)
    return None


def _walk(stream: BinaryIO, element: Callable[[BinaryIO, int], int | None]) -> int | None:
    """The end of the last known top-level element (``element(stream, offset)`` -> its end, None at an
    unknown one; -1 when it extends to the end of the file)."""
    size = stream.seek(0, 2)
    offset = 0
    while offset < size:
        end = element(stream, offset)
        if end is None:
            break
        if end == -1:
            return size
        if end <= offset:
            return None  # a malformed size: no length can be trusted
        offset = end
    return offset or None


def _riff_element(stream: BinaryIO, offset: int) -> int | None:
    stream.seek(offset)
    header = stream.read(8)
    if header[:4] not in _RIFF_CHUNKS:
        return None
    if len(header) < 8:
        return offset + 8
    size = int.from_bytes(header[4:8], "little")
    return offset + 8 + size + (size & 1)


def _bmff_element(stream: BinaryIO, offset: int) -> int | None:
    stream.seek(offset)
    header = stream.read(16)
    if header[4:8] not in _BMFF_BOXES:
        return None
    if len(header) < 8:
        return offset + 8
    size = int.from_bytes(header[:4], "big")
    if size == 0:
        return -1  # the box runs to the end of the file
    if size == 1:  # a 64-bit size follows the type
        return offset + 16 if len(header) < 16 else offset + int.from_bytes(header[8:16], "big")
    return offset + size if size >= 8 else offset


def _ebml_number(stream: BinaryIO) -> tuple[int, bool] | None:
    """An EBML variable-length size at the stream's position: (value, unknown size?)."""
    first = stream.read(1)
    if not first or first[0] == 0:
        return None
    length = 8 - first[0].bit_length() + 1
    rest = stream.read(length - 1)
    if len(rest) < length - 1:
        return None
    value = first[0] & (0xFF >> length)
    for byte in rest:
        value = (value << 8) | byte
    return value, value == (1 << (7 * length)) - 1


def _matroska_length(stream: BinaryIO) -> int | None:
    """End of the Segment after the EBML header (None for a segment of unknown size)."""
    stream.seek(4)
    header = _ebml_number(stream)
    if header is None:
        return None
    stream.seek(header[0], 1)
    if stream.read(4) != _EBML_SEGMENT:
        return None
    segment = _ebml_number(stream)
    if segment is None or segment[1]:
        return None
    return stream.tell() + segment[0]


__all__ = ["declared_length"]
