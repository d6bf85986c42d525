"""What a file given as a checkpoint really is, and reading each format safely (docs/checkpoints.md,
"Reading a file safely").

The file's kind is found from its bytes before any loader runs (a zip archive written by torch.save, an
older torch.save pickle, safetensors, text, empty, or none of these), so that every refusal says what
the file is, in one line naming it. Unsafe unpickling is suggested only for a well-formed torch file
whose pickle holds Python objects: never for bytes that could not even be parsed.
"""
from __future__ import annotations

import io
import logging
import pickle
import pickletools
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from videovit.checkpoint.checksum import verify_checksum
from videovit.errors import CheckpointError

logger = logging.getLogger(__name__)

ZIP, PICKLE, SAFETENSORS, TEXT, EMPTY, UNKNOWN = "zip", "pickle", "safetensors", "text", "empty", "unknown"
TRUST_HINT = ("set TRAIN.TRUST_CHECKPOINT True (Python: trust=True) to unpickle it, "
              "but only for a file you trust: unpickling can run arbitrary code")
ADVICE = "give a checkpoint file (.pyth, .pth, .safetensors) or a folder written by tools/export.py"
_SNIFF_BYTES = 4096
_LEGACY_PICKLES = 4  # an older torch.save file starts with 4 pickles: magic number, protocol, system info, data
_MAX_SAFETENSORS_HEADER = 100 * 2**20


def file_kind(path: Path) -> str:
    """ZIP, PICKLE, SAFETENSORS, TEXT, EMPTY or UNKNOWN, from the first bytes of ``path``."""
    try:
        with path.open("rb") as stream:
            head = stream.read(_SNIFF_BYTES)
    except OSError as err:
        raise CheckpointError(f"{path} cannot be read ({err.strerror}); check its permissions") from err
    if not head:
        return EMPTY
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return ZIP
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        return PICKLE
    header_size = int.from_bytes(head[:8], "little") if len(head) > 8 else 0
    if head[8:9] == b"{" and 2 <= header_size <= _MAX_SAFETENSORS_HEADER:
        return SAFETENSORS
    return TEXT if _is_text(head) else UNKNOWN


def _is_text(head: bytes) -> bool:
    """No NUL byte, and UTF-8 throughout (a character cut by the end of the sample allowed)."""
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        return len(head) == _SNIFF_BYTES and err.start >= len(head) - 3
    return True


def not_a_checkpoint(path: Path, kind: str) -> CheckpointError:
    """The error for a file that is none of the checkpoint formats (``kind`` EMPTY, TEXT or UNKNOWN)."""
    if kind == EMPTY:
        what = "is empty (0 bytes)"
    elif kind == TEXT:
        first = path.read_bytes()[:_SNIFF_BYTES].decode("utf-8", errors="replace").strip().splitlines()
        what = f"is a text file, not a checkpoint (it begins {first[0][:60]!r})" if first else "holds only blanks"
    else:
        what = ("is not a checkpoint: its bytes are none of a checkpoint's formats (a zip archive written by "
                "torch.save, an older torch.save pickle, safetensors); it is damaged or another kind of file")
    return CheckpointError(f"{path} {what}; {ADVICE}")


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a damaged one is a CheckpointError naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except SafetensorError as err:
        raise CheckpointError(f"{path} is a damaged safetensors file ({err}): it was cut short or changed after "
                              "it was written; copy or export it again") from err


def load_torch_file(path: Path, trust: bool = False, note: Callable[[str], None] | None = None) -> Any:
    """The contents of a torch.save file, loaded with ``weights_only=True`` after its checksum is checked.

    A file without checksum loads with a note (to ``note``, default this module's logger) that it could
    not be verified. A well-formed file holding pickled Python objects is refused unless ``trust``; a
    damaged, truncated or foreign file is a CheckpointError saying which.
    """
    kind = file_kind(path)
    if kind not in (ZIP, PICKLE):
        raise not_a_checkpoint(path, kind) if kind != SAFETENSORS else CheckpointError(
            f"{path} is a safetensors file, not a torch.save checkpoint; {ADVICE}")
    verified = verify_checksum(path) if kind == ZIP else False
    try:
        contents = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        contents = _load_trusted(path, kind, err, trust)
    except (RuntimeError, EOFError, OSError, ValueError) as err:  # torch's ways of failing on a bad file
        raise CheckpointError(f"{path} {_damage(path, kind, err)}; use another copy of it") from err
    if not verified:
        (note or logger.info)(f"{path} carries no checksum (saved before videovit wrote checksums, or by another "
                              "program): its contents could not be verified")
    return contents


def _load_trusted(path: Path, kind: str, refusal: pickle.UnpicklingError, trust: bool) -> Any:
    """The safe load refused the pickle: a damaged one is an error; a well-formed one holding objects is
    loaded when ``trust``, else refused with the trust switch."""
    problem = pickle_problem(path, kind)
    if problem is not None:
        raise CheckpointError(f"{path} is damaged: {problem}; use another copy of it") from refusal
    if not trust:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(refusal))
        objects = f"Python objects ({found.group(1)})" if found else "Python objects"
        raise CheckpointError(f"{path} is a well-formed torch file that holds pickled {objects}, which a safe "
                              f"load refuses; {TRUST_HINT}") from refusal
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (ImportError, AttributeError) as err:
        raise CheckpointError(f"{path} holds pickled objects of code that is not installed here ({err}); install "
                              "the program that wrote it, or ask for a file of plain tensors") from err


def pickle_problem(path: Path, kind: str) -> str | None:
    """What is wrong with the pickle inside a torch file, parsed without running anything; None when it is
    well-formed."""
    try:
        if kind == ZIP:
            with zipfile.ZipFile(path) as archive:
                records = [name for name in archive.namelist() if name.endswith("data.pkl")]
                if not records:
                    return "the zip archive holds no data.pkl, so torch.save did not write it"
                stream = io.BytesIO(archive.read(records[0]))
            pickles = 1
        else:
            stream = io.BytesIO(path.read_bytes())
            pickles = _LEGACY_PICKLES
        for _ in range(pickles):
            for _ in pickletools.genops(stream):
                pass
    except zipfile.BadZipFile as err:
        return f"its zip archive cannot be read ({err})"
    except ValueError as err:  # pickletools' (and zipfile's CRC) complaints about malformed data
        return f"its pickled data is malformed ({err})"
    return None


def _damage(path: Path, kind: str, error: BaseException) -> str:
    """What is wrong with a torch file that torch.load could not read."""
    if kind == ZIP:
        try:
            with zipfile.ZipFile(path) as archive:
                broken = archive.testzip()
        except zipfile.BadZipFile:
            return ("is a truncated or damaged zip archive (the directory at its end is missing or unreadable): "
                    "the save or copy that made it did not finish")
        if broken is not None:
            return f"is damaged: its record {broken} fails its CRC check"
    problem = pickle_problem(path, kind)
    if problem is not None:
        return f"is damaged: {problem}"
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"is a torch.save file that cannot be read ({detail[:200]})"


__all__ = ["ADVICE", "EMPTY", "PICKLE", "SAFETENSORS", "TEXT", "TRUST_HINT", "UNKNOWN", "ZIP", "file_kind",
           "load_torch_file", "not_a_checkpoint", "pickle_problem", "read_safetensors"]
