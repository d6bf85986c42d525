"""Building the project's list files from the official annotations (see docs/data.md).

Builders turn the official annotations (Kinetics-400 CSVs, Something-Something V2 JSONs) or an
existing PySlowFast-style list into ``<out>/{train,val,test}.csv`` + ``classes.txt``, keep only
the videos found on disk, and write the missing ones to ``missing.txt`` and a summary to
``report.txt``.
"""
from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from videovit.data.lists import (
    SPLITS,
    VIDEO_EXTENSIONS,
    ListEntry,
    read_classes,
    read_list,
    read_text,
    write_classes,
    write_list,
    write_text,
)
from videovit.errors import InputPathError, ListFileError

_K400_COLUMNS = ("label", "youtube_id", "time_start", "time_end")


@dataclass
class SplitReport:
    """What a builder found for one split: listed videos, videos kept, missing names."""

    listed: int
    kept: int
    missing: list[str]
    source: str


@dataclass
class BuildReport:
    """Everything a builder did; ``summary()`` is the text printed and saved as report.txt."""

    dataset: str
    out_dir: Path
    video_root: Path
    num_classes: int
    splits: dict[str, SplitReport] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """Human-readable report: per-split counts, where the lists came from, and notes."""
        lines = [f"dataset {self.dataset}: {self.num_classes} classes; lists written to {self.out_dir}",
                 f"list paths are relative to {self.video_root.resolve()}: set DATA.PATH_PREFIX to it"]
        for split, rep in self.splits.items():
            lines.append(f"  {split:5s}: {rep.kept} of {rep.listed} listed videos found, "
                         f"{len(rep.missing)} missing (from {rep.source})")
        lines.extend(f"note: {note}" for note in self.notes)
        if any(rep.missing for rep in self.splits.values()):
            lines.append(f"missing videos are listed in {self.out_dir / 'missing.txt'}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------- finding videos

def index_videos(video_root: str | Path) -> dict[str, str]:
    """Map every video file's stem under ``video_root`` (recursively) to its relative path.

    Several files with one stem (e.g. .mp4 and .webm): the first in sorted path order wins.
    """
    root = Path(video_root)
    if not root.is_dir():
        raise InputPathError(f"video root {root} is not a directory; pass the folder holding the videos")
    found: dict[str, str] = {}
    for folder, subdirs, files in os.walk(root):
        subdirs.sort()
        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if ext.lower() in VIDEO_EXTENSIONS:
                found.setdefault(stem, os.path.relpath(os.path.join(folder, name), root))
    return found


def _keep_found(expected: list[tuple[str, int]], videos: dict[str, str],
                source: str) -> tuple[list[ListEntry], SplitReport]:
    """Entries whose expected stem exists in ``videos``; the rest go to the report as missing."""
    entries, missing = [], []
    for stem, label in expected:
        if stem in videos:
            entries.append(ListEntry(videos[stem], label))
        else:
            missing.append(stem)
    return entries, SplitReport(listed=len(expected), kept=len(entries), missing=missing, source=source)


def _write_outputs(report: BuildReport, lists: dict[str, list[ListEntry]], class_names: list[str],
                   separator: str) -> BuildReport:
    """Write the split lists, classes.txt, missing.txt and report.txt; refuse empty splits."""
    for split, entries in lists.items():
        if not entries:
            raise ListFileError(f"no video of the {split} split was found under {report.video_root}; "
                             f"check the video root and the file naming")
    out = report.out_dir
    for split, entries in lists.items():
        write_list(out / f"{split}.csv", entries, separator)
    write_classes(out / "classes.txt", class_names)
    missing_lines = [f"{split}\t{stem}\n" for split, rep in report.splits.items() for stem in rep.missing]
    write_text(out / "missing.txt", "".join(missing_lines))
    write_text(out / "report.txt", report.summary() + "\n")
    return report


# ---------------------------------------------------------------------------- Kinetics-400

def k400_clip_stem(youtube_id: str, time_start: int, time_end: int) -> str:
    """The conventional clip name ``{youtube_id}_{start:06d}_{end:06d}`` (without extension)."""
    return f"{youtube_id}_{time_start:06d}_{time_end:06d}"


def read_k400_csv(path: str | Path, class_index: dict[str, int]) -> list[tuple[str, int]]:
    """``(clip stem, label)`` rows of a labelled official K400 CSV.

    Unknown class names, missing columns and non-integer times raise ListFileError with the file
    and line.
    """
    path = Path(path)
    rows = []
    with open(_existing(path), newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        absent = [col for col in _K400_COLUMNS if col not in (reader.fieldnames or [])]
        if absent:
            raise ListFileError(f"{path}:1: header lacks column(s) {absent}; expected the official "
                             f"'label,youtube_id,time_start,time_end,split' header")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            stem = k400_clip_stem(row["youtube_id"], _whole_seconds(row["time_start"], where),
                                  _whole_seconds(row["time_end"], where))
            name = row["label"]
            if name not in class_index:
                raise ListFileError(f"{where}: class {name!r} is not among the {len(class_index)} classes "
                                 f"of the training CSV; fix the label or use a CSV of the same release")
            rows.append((stem, class_index[name]))
    return rows


def k400_class_names(train_csv: str | Path) -> list[str]:
    """Class names of K400 in index order: the sorted distinct labels of the training CSV."""
    path = Path(train_csv)
    with open(_existing(path), newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if "label" not in (reader.fieldnames or []):
            raise ListFileError(f"{path}:1: no 'label' column; pass the official train.csv")
        names = sorted({row["label"] for row in reader})
    if not names:
        raise ListFileError(f"{path}: no rows; pass the official train.csv")
    return names


def build_k400_lists(annotation_dir: str | Path, video_root: str | Path, out_dir: str | Path,
                     separator: str = " ", labelled_test_csv: str | Path | None = None) -> BuildReport:
    """Build K400 lists from ``train.csv`` and ``validate.csv`` in ``annotation_dir``.

    The official test.csv carries no labels and papers report on the validation split, so
    ``test.csv`` is written from the validation split unless ``labelled_test_csv`` is given.
    """
    annotations = Path(annotation_dir)
    train_csv, val_csv = annotations / "train.csv", annotations / "validate.csv"
    class_names = k400_class_names(train_csv)
    class_index = {name: i for i, name in enumerate(class_names)}
    test_csv = Path(labelled_test_csv) if labelled_test_csv else val_csv
    sources = {"train": train_csv, "val": val_csv, "test": test_csv}
    report = BuildReport("k400", Path(out_dir), Path(video_root), len(class_names))
    if labelled_test_csv is None:
        report.notes.append("test.csv is the validation split (the official test.csv has no labels; "
                            "papers report on validation); pass a labelled test CSV to change this")
    lists = _find_listed_videos(sources, lambda src: read_k400_csv(src, class_index), video_root,
                                report)
    return _write_outputs(report, lists, class_names, separator)


def _find_listed_videos(sources: dict[str, Path], read: Callable[[Path], list],
                        video_root: str | Path, report: BuildReport) -> dict[str, list]:
    """Per split, the annotated videos found under ``video_root``; the missing go into ``report``."""
    videos = index_videos(video_root)
    lists = {}
    for split, source in sources.items():
        lists[split], report.splits[split] = _keep_found(read(source), videos, str(source))
    return lists


def _whole_seconds(text: str, where: str) -> int:
    """A CSV time field as whole seconds (``12`` or ``12.0``)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ListFileError(f"{where}: time {text!r} is not a number") from None
    if not value.is_integer() or value < 0:
        raise ListFileError(f"{where}: time {text!r} is not a whole non-negative number of seconds, "
                         f"so no clip name '<id>_<start:06d>_<end:06d>' matches it")
    return int(value)


# ---------------------------------------------------------------------------- Something-Something V2

@dataclass(frozen=True)
class Ssv2Classes:
    """The classes of an SSV2 labels JSON: list label i is ``names[i]``, official id ``official_ids[i]``.

    Labels follow the official ids in ascending order; for the full set the two are equal, for a
    subset (official ids with gaps) ``class_map.csv`` records the official id of every label.
    """

    names: list[str]
    official_ids: list[int]

    @property
    def label_of_template(self) -> dict[str, int]:
        """Template text (brackets removed) -> list label."""
        return {name: label for label, name in enumerate(self.names)}

    @property
    def is_subset(self) -> bool:
        """Whether the official ids have gaps (a subset of the 174 classes)."""
        return self.official_ids != list(range(len(self.names)))


def ssv2_class_names(labels_json: str | Path) -> Ssv2Classes:
    """The classes of the official labels JSON (template -> id string), in official-id order."""
    path = Path(labels_json)
    table = _load_json(path)
    if not isinstance(table, dict) or not table:
        raise ListFileError(f"{path}: expected a non-empty JSON object mapping template to class id")
    try:
        ids = {template: int(class_id) for template, class_id in table.items()}
    except (TypeError, ValueError):
        raise ListFileError(f"{path}: class ids must be integer strings like \"0\"..\"173\"") from None
    repeated = sorted(i for i, count in Counter(ids.values()).items() if count > 1)
    if repeated or min(ids.values()) < 0:
        raise ListFileError(f"{path}: class ids must be distinct and non-negative (repeated: {repeated}); "
                         f"is this the official labels file?")
    names = sorted(ids, key=ids.__getitem__)
    return Ssv2Classes(names, [ids[name] for name in names])


def read_ssv2_json(path: str | Path, class_index: dict[str, int],
                   outside: list[str] | None = None) -> list[tuple[str, int]]:
    """``(video id, label)`` pairs of an official SSV2 train/validation JSON.

    Label = ``class_index[template without '[' and ']']``. An unknown template raises ListFileError
    naming the file and entry, unless ``outside`` is a list: then the video id is appended to it
    (a class outside a subset) and the entry skipped.
    """
    path = Path(path)
    records = _load_json(path)
    if not isinstance(records, list):
        raise ListFileError(f"{path}: expected a JSON list of {{id, label, template, placeholders}} objects")
    rows = []
    for number, record in enumerate(records, start=1):
        where = f"{path}: entry {number}"
        if not isinstance(record, dict) or "id" not in record or "template" not in record:
            raise ListFileError(f"{where}: needs 'id' and 'template' fields (the test JSON has no labels; "
                             f"use the validation JSON)")
        template = record["template"].replace("[", "").replace("]", "")
        if template not in class_index:
            if outside is not None:
                outside.append(str(record["id"]))
                continue
            raise ListFileError(f"{where} (id {record['id']}): template {template!r} is not in the labels "
                             f"JSON; use the labels file of the same release")
        rows.append((str(record["id"]), class_index[template]))
    return rows


_LEFT_RIGHT = re.compile(r"\b(left|right|Left|Right)\b")
_MIRROR_WORD = {"left": "right", "right": "left", "Left": "Right", "Right": "Left"}


def ssv2_flip_swap_pairs(names: list[str]) -> list[tuple[int, int]]:
    """Pairs of labels whose names differ only by left <-> right: a flipped clip of one is the other.

    ListFileError when a class mentions left or right but its mirror class is not among ``names``
    (flipping its clips would give them a label that does not exist).
    """
    label_of = {name: label for label, name in enumerate(names)}
    pairs = []
    for label, name in enumerate(names):
        mirror = _LEFT_RIGHT.sub(lambda match: _MIRROR_WORD[match.group(0)], name)
        if mirror == name:
            continue
        if mirror not in label_of:
            raise ListFileError(f"class {name!r} has no mirror class {mirror!r} in the labels, so flipped clips "
                             f"of it have no label; train without flips (DATA.RANDOM_FLIP False)")
        if label < label_of[mirror]:
            pairs.append((label, label_of[mirror]))
    return pairs


def write_class_map(path: str | Path, classes: Ssv2Classes) -> None:
    """Write ``label,official_id,name`` rows: which official SSV2 id every list label stands for."""
    rows = [["label", "official_id", "name"]]
    rows.extend([str(label), str(official), name]
                for label, (official, name) in enumerate(zip(classes.official_ids, classes.names, strict=True)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


def build_ssv2_lists(annotation_dir: str | Path, video_root: str | Path, out_dir: str | Path,
                     separator: str = " ", flip_swap: bool = False) -> BuildReport:
    """Build SSV2 lists from the official JSONs in ``annotation_dir``; videos are ``{id}.webm``.

    ``classes.txt`` holds the template names in official-id order and ``class_map.csv`` the
    official id of every label (labels are 0..K-1 even for a subset with gaps in its ids). With a
    subset, videos of other classes are left out and counted. ``flip_swap`` also writes
    ``flip_class_swap.txt``, the left/right label pairs for DATA.FLIP_CLASS_SWAP. The official test
    JSON has no labels, so ``test.csv`` is the validation split.
    """
    annotations = Path(annotation_dir)
    classes = ssv2_class_names(annotations / "something-something-v2-labels.json")
    pairs = ssv2_flip_swap_pairs(classes.names) if flip_swap else []
    sources = {"train": annotations / "something-something-v2-train.json",
               "val": annotations / "something-something-v2-validation.json"}
    sources["test"] = sources["val"]
    report = BuildReport("ssv2", Path(out_dir), Path(video_root), len(classes.names))
    report.notes.append("test.csv is the validation split (the official test JSON has no labels)")
    outside: dict[str, list[str]] = {}

    def read(source: Path) -> list[tuple[str, int]]:
        skipped = outside.setdefault(str(source), []) if classes.is_subset else None
        return read_ssv2_json(source, classes.label_of_template, skipped)

    lists = _find_listed_videos(sources, read, video_root, report)
    if classes.is_subset:
        report.notes.append(f"a subset of {len(classes.names)} classes (official ids {classes.official_ids[0]}.."
                            f"{classes.official_ids[-1]} with gaps): labels are 0..{len(classes.names) - 1} in "
                            f"official-id order, class_map.csv gives the official id of each")
        for source, ids in outside.items():
            if ids:
                report.notes.append(f"{len(ids)} video(s) of {source} belong to classes outside the subset; left out")
    swap_file = report.out_dir / "flip_class_swap.txt"
    if flip_swap:
        report.notes.append(f"{swap_file}: {len(pairs)} left/right class pairs; set DATA.FLIP_CLASS_SWAP to it "
                            f"to train with DATA.RANDOM_FLIP True")
    _write_outputs(report, lists, classes.names, separator)
    write_class_map(report.out_dir / "class_map.csv", classes)
    if flip_swap:
        write_text(swap_file, "".join(f"{a} {b}\n" for a, b in pairs))
    return report


def _load_json(path: Path) -> object:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise ListFileError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise InputPathError(f"{path} does not exist; pass the folder with the official annotation files")
    return path


# ---------------------------------------------------------------------------- existing PySlowFast lists

def import_lists(list_dir: str | Path, classes_file: str | Path, video_root: str | Path,
                 out_dir: str | Path, dataset: str, separator: str = " ") -> BuildReport:
    """Validate existing PySlowFast-style ``{train,val,test}.csv`` lists and copy them to ``out_dir``.

    Paths are relative to ``video_root``; listed videos that do not exist are dropped and reported.
    A missing ``test.csv`` is taken from ``val.csv``.
    """
    source_dir = Path(list_dir)
    class_names = read_classes(classes_file)
    root = Path(video_root)
    report = BuildReport(dataset, Path(out_dir), root, len(class_names))
    lists = {}
    for split in SPLITS:
        source = source_dir / f"{split}.csv"
        if split == "test" and not source.is_file():
            source = source_dir / "val.csv"
            report.notes.append(f"no test.csv in {source_dir}: test.csv is the validation list")
        entries = read_list(source, separator, num_classes=len(class_names))
        found = [entry for entry in entries if (root / entry.path).is_file()]
        missing = [entry.path for entry in entries if not (root / entry.path).is_file()]
        lists[split] = found
        report.splits[split] = SplitReport(len(entries), len(found), missing, str(source))
    return _write_outputs(report, lists, class_names, separator)


__all__ = [
    "BuildReport", "SplitReport", "build_k400_lists", "build_ssv2_lists", "import_lists", "index_videos",
    "k400_class_names", "k400_clip_stem", "read_k400_csv", "read_ssv2_json", "Ssv2Classes", "ssv2_class_names",
    "ssv2_flip_swap_pairs", "write_class_map",
]
