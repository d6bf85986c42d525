"""The project's list files (see docs/data.md): reading and writing them.

A list file has one video per line: ``<path><sep><integer label>``. The label is read after the
**last** separator, so a path may contain the separator; PySlowFast splits on every separator, so
for lists shared with it pick a separator that no path contains (e.g. ``,`` or a tab when paths
hold spaces, as per-class Kinetics folders like ``playing guitar/`` do). Paths are relative to
DATA.PATH_PREFIX. ``classes.txt`` holds the class names, line i = class i. The builders that make
these files from the official annotations are in ``videovit.prep.annotations``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from videovit.errors import InputPathError, ListFileError

SPLITS = ("train", "val", "test")
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".mpg", ".mpeg", ".ogv", ".ogg", ".m4v")
UNLABELLED = -1  # the label of a video given by path, to predict (no list file, no label)


@dataclass(frozen=True)
class ListEntry:
    """One line of a list file: a video path (relative to the prefix) and its class index."""

    path: str
    label: int


# ---------------------------------------------------------------------------- list and class files

def read_list(path: str | Path, separator: str = " ", num_classes: int | None = None) -> list[ListEntry]:
    """Read and validate a list file; labels must lie in ``[0, num_classes)`` when it is given.

    Blank lines are skipped. Any malformed line, bad label or an empty list raises ListFileError
    naming the file and line.
    """
    path = Path(path)
    if not separator:
        raise ListFileError("the path/label separator is empty; set DATA.PATH_LABEL_SEPARATOR (e.g. ' ')")
    entries = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        video, sep, label_text = line.rpartition(separator)
        where = f"{path}:{number}"
        if not sep or not video.strip():
            raise ListFileError(f"{where}: expected '<path>{separator}<label>', got {line!r}; "
                             f"check DATA.PATH_LABEL_SEPARATOR ({separator!r})")
        try:
            label = int(label_text)
        except ValueError:
            raise ListFileError(f"{where}: label {label_text!r} is not an integer; each line must be "
                             f"'<path>{separator}<integer label>'") from None
        if label < 0 or (num_classes is not None and label >= num_classes):
            bound = f"[0, {num_classes})" if num_classes is not None else "non-negative"
            raise ListFileError(f"{where}: label {label} is out of range {bound}; fix the label or "
                             f"the classes file")
        entries.append(ListEntry(video, label))
    if not entries:
        raise ListFileError(f"{path}: the list is empty; rebuild it with tools/build_data_lists.py")
    return entries


def write_list(path: str | Path, entries: list[ListEntry], separator: str = " ") -> None:
    """Write ``entries`` as a list file (one ``<path><sep><label>`` line each)."""
    lines = []
    for entry in entries:
        if "\n" in entry.path or "\r" in entry.path:
            raise ValueError(f"video path {entry.path!r} contains a line break and cannot be listed")
        lines.append(f"{entry.path}{separator}{entry.label}\n")
    write_text(Path(path), "".join(lines))


def read_classes(path: str | Path) -> list[str]:
    """Read ``classes.txt`` (line i = name of class i); blank lines and duplicates are errors."""
    path = Path(path)
    names = read_text(path).splitlines()
    if not names:
        raise ListFileError(f"{path}: the classes file is empty; it needs one class name per line")
    seen: dict[str, int] = {}
    for number, name in enumerate(names, start=1):
        if not name.strip():
            raise ListFileError(f"{path}:{number}: blank class name; remove the line or name the class")
        if name in seen:
            raise ListFileError(f"{path}:{number}: class {name!r} repeats line {seen[name]}; "
                             f"class names must be unique")
        seen[name] = number
    return names


def write_classes(path: str | Path, names: list[str]) -> None:
    """Write ``classes.txt``: one class name per line, in class-index order."""
    write_text(Path(path), "".join(f"{name}\n" for name in names))


def read_text(path: Path) -> str:
    """The UTF-8 text of ``path``, with errors that name the file."""
    if not path.exists():
        raise InputPathError(f"{path} does not exist; check the path, or build the lists with "
                                f"tools/build_data_lists.py")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ListFileError(f"{path}: not UTF-8 text ({err}); is this really a list/classes file?") from None
    except OSError as err:  # a directory, no read permission, an I/O error
        raise ListFileError(f"{path} cannot be read ({err.strerror}); it must be a readable text file") from None


def write_text(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8 to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


__all__ = ["ListEntry", "SPLITS", "UNLABELLED", "VIDEO_EXTENSIONS", "read_classes", "read_list", "read_text",
           "write_classes", "write_list", "write_text"]
