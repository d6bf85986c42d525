"""List files and the builders, on the official-format annotation fixtures."""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from videovit.data.lists import ListEntry, read_classes, read_list, write_list
from videovit.data.transforms import load_flip_class_swap
from videovit.prep.annotations import (
    build_k400_lists,
    build_ssv2_lists,
    import_lists,
    index_videos,
    ssv2_flip_swap_pairs,
)

K400_CLASSES = ["abseiling", "bending metal", "playing guitar", "zumba"]
ANNOTATIONS = Path(__file__).resolve().parent / "data" / "annotations"  # official-format examples
SSV2_CLASSES = ["Approaching something with your camera", "Moving something down",
                "Pushing something from left to right", "Pushing something from right to left",
                "Putting something on a surface"]


def _touch(root: Path, relative: str) -> None:
    """A file standing for a video: the builders only look at names, never at the contents."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00" * 16)


# ---------------------------------------------------------------------------- list files

def test_list_round_trip_with_spaces_in_paths_and_a_comma_separator(tmp_path):
    entries = [ListEntry("playing guitar/a b.mp4", 2), ListEntry("zumba/c.mp4", 3)]
    write_list(tmp_path / "train.csv", entries, separator=",")
    assert (tmp_path / "train.csv").read_text() == "playing guitar/a b.mp4,2\nzumba/c.mp4,3\n"
    assert read_list(tmp_path / "train.csv", separator=",", num_classes=4) == entries


def test_space_separator_takes_the_label_after_the_last_space(tmp_path):
    (tmp_path / "val.csv").write_text("videos/x.mp4 0\nplaying guitar/y.mp4 2\n\n")
    assert read_list(tmp_path / "val.csv", num_classes=4) == [ListEntry("videos/x.mp4", 0),
                                                              ListEntry("playing guitar/y.mp4", 2)]


@pytest.mark.parametrize("content, message", [
    ("a.mp4 0\nb.mp4\n", r"val.csv:2: expected '<path> <label>'"),
    ("a.mp4 0\nb.mp4 zumba\n", r"val.csv:2: label 'zumba' is not an integer"),
    ("a.mp4 4\n", r"val.csv:1: label 4 is out of range \[0, 4\)"),
    ("a.mp4 -1\n", r"val.csv:1: label -1 is out of range"),
    (" 3\n", r"val.csv:1: expected"),
    ("\n\n", r"val.csv: the list is empty"),
    ("a.mp4,1\n", r"val.csv:1: expected '<path> <label>'.*PATH_LABEL_SEPARATOR"),
])
def test_malformed_lists_fail_with_file_and_line(tmp_path, content, message):
    (tmp_path / "val.csv").write_text(content)
    with pytest.raises(ValueError, match=message):
        read_list(tmp_path / "val.csv", num_classes=4)


def test_missing_list_file_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="build_data_lists"):
        read_list(tmp_path / "train.csv")


@pytest.mark.parametrize("content, message", [
    (b"", r"classes.txt: the classes file is empty"),
    (b"a\n\nb\n", r"classes.txt:2: blank class name"),
    (b"a\nb\na\n", r"classes.txt:3: class 'a' repeats line 1"),
    (b"\xff\xfe\x00binary", r"classes.txt: not UTF-8"),
])
def test_bad_classes_files_fail_with_file_and_line(tmp_path, content, message):
    (tmp_path / "classes.txt").write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_classes(tmp_path / "classes.txt")


# ---------------------------------------------------------------------------- Kinetics-400

def _k400_videos(root: Path) -> None:
    """Every fixture clip except one train clip and one val clip; flat and per-class layouts mixed."""
    _touch(root, "abseiling/aB3dE5fG7hJ_000012_000022.mp4")
    _touch(root, "Zq9_x-Wv2Ut_000000_000010.mp4")
    _touch(root, "bending metal/Qw3rTy7uI0p_000048_000058.mp4")
    _touch(root, "playing guitar/mN8bV6cX4zA_000101_000111.mkv")
    _touch(root, "Lk2jH4gF6dS_000005_000015.mp4")
    # zumba/Po9iU7yT5rE_000030_000040 (train) is missing
    _touch(root, "Hg5fD3sA1qW_000007_000017.mp4")
    _touch(root, "bending metal/Xc4vB6nM8lK_000220_000230.mp4")
    # Rt6yU8iO0pA_000000_000010 (val) is missing
    _touch(root, "zumba/Jh1gF3dS5aZ_000064_000074.mp4")
    _touch(root, "zumba/notes.txt")


def test_k400_builder_on_official_csvs(tmp_path):
    videos, out = tmp_path / "videos", tmp_path / "lists"
    _k400_videos(videos)
    report = build_k400_lists(ANNOTATIONS / "k400", videos, out, separator=",")
    assert read_classes(out / "classes.txt") == K400_CLASSES  # sorted names, quoted labels unquoted
    assert (out / "train.csv").read_text() == (
        "abseiling/aB3dE5fG7hJ_000012_000022.mp4,0\n"
        "Zq9_x-Wv2Ut_000000_000010.mp4,0\n"
        "bending metal/Qw3rTy7uI0p_000048_000058.mp4,1\n"
        "playing guitar/mN8bV6cX4zA_000101_000111.mkv,2\n"
        "Lk2jH4gF6dS_000005_000015.mp4,2\n")
    assert (out / "val.csv").read_text() == (
        "Hg5fD3sA1qW_000007_000017.mp4,0\n"
        "bending metal/Xc4vB6nM8lK_000220_000230.mp4,1\n"
        "zumba/Jh1gF3dS5aZ_000064_000074.mp4,3\n")
    assert (out / "test.csv").read_text() == (out / "val.csv").read_text()
    assert (out / "missing.txt").read_text() == (
        "train\tPo9iU7yT5rE_000030_000040\nval\tRt6yU8iO0pA_000000_000010\n"
        "test\tRt6yU8iO0pA_000000_000010\n")
    assert (report.splits["train"].listed, report.splits["train"].kept) == (6, 5)
    assert (report.splits["val"].listed, report.splits["val"].kept) == (4, 3)
    summary = (out / "report.txt").read_text()
    assert "5 of 6 listed videos found, 1 missing" in summary
    assert "test.csv is the validation split" in summary
    assert read_list(out / "train.csv", ",", num_classes=4)[3] == \
        ListEntry("playing guitar/mN8bV6cX4zA_000101_000111.mkv", 2)


def test_k400_builder_uses_a_labelled_test_csv_when_given(tmp_path):
    videos, out = tmp_path / "videos", tmp_path / "lists"
    _k400_videos(videos)
    test_csv = tmp_path / "test_labelled.csv"
    test_csv.write_text('label,youtube_id,time_start,time_end,split\n"bending metal",Qw3rTy7uI0p,48,58,test\n')
    report = build_k400_lists(ANNOTATIONS / "k400", videos, out,
                              labelled_test_csv=test_csv)
    assert (out / "test.csv").read_text() == "bending metal/Qw3rTy7uI0p_000048_000058.mp4 1\n"
    assert not any("validation split" in note for note in report.notes)


def test_k400_unknown_class_fails_with_file_and_line(tmp_path):
    annotations = tmp_path / "annotations"
    shutil.copytree(ANNOTATIONS / "k400", annotations)
    with open(annotations / "validate.csv", "a") as handle:
        handle.write('"juggling balls",Ab1cD2eF3gH,0,10,val\n')
    _k400_videos(tmp_path / "videos")
    with pytest.raises(ValueError, match=r"validate.csv:6: class 'juggling balls' is not among the 4"):
        build_k400_lists(annotations, tmp_path / "videos", tmp_path / "lists")


def test_k400_bad_time_fails_with_file_and_line(tmp_path):
    annotations = tmp_path / "annotations"
    shutil.copytree(ANNOTATIONS / "k400", annotations)
    with open(annotations / "train.csv", "a") as handle:
        handle.write("zumba,Ab1cD2eF3gH,1.5,11.5,train\n")
    _k400_videos(tmp_path / "videos")
    with pytest.raises(ValueError, match=r"train.csv:8: time '1.5' is not a whole"):
        build_k400_lists(annotations, tmp_path / "videos", tmp_path / "lists")


def test_k400_with_no_videos_found_fails(tmp_path):
    (tmp_path / "videos").mkdir()
    with pytest.raises(ValueError, match="no video of the train split was found"):
        build_k400_lists(ANNOTATIONS / "k400", tmp_path / "videos", tmp_path / "lists")


def test_k400_unlabelled_csv_as_labelled_test_is_refused(tmp_path):
    _k400_videos(tmp_path / "videos")
    annotations = ANNOTATIONS / "k400"
    with pytest.raises(ValueError, match=r"test.csv:1: header lacks column\(s\) \['label'\]"):
        build_k400_lists(annotations, tmp_path / "videos", tmp_path / "lists",
                         labelled_test_csv=annotations / "test.csv")


# ---------------------------------------------------------------------------- Something-Something V2

def test_ssv2_builder_on_official_jsons(tmp_path):
    videos, out = tmp_path / "videos", tmp_path / "lists"
    for video_id in ["78687", "42326", "100904", "80715", "74225", "116154"]:  # 34899 is missing
        _touch(videos, f"{video_id}.webm")
    report = build_ssv2_lists(ANNOTATIONS / "ssv2", videos, out)
    assert read_classes(out / "classes.txt") == SSV2_CLASSES  # numeric id order
    assert (out / "train.csv").read_text() == "78687.webm 2\n42326.webm 3\n100904.webm 4\n80715.webm 0\n"
    assert (out / "val.csv").read_text() == "74225.webm 2\n116154.webm 1\n"
    assert (out / "test.csv").read_text() == (out / "val.csv").read_text()
    assert (out / "missing.txt").read_text() == "train\t34899\n"
    assert report.splits["train"].missing == ["34899"]


def test_ssv2_builder_writes_the_class_map_and_the_flip_swap_pairs(tmp_path):
    videos, out = tmp_path / "videos", tmp_path / "lists"
    for video_id in ["78687", "42326", "100904", "80715", "74225", "116154"]:
        _touch(videos, f"{video_id}.webm")
    report = build_ssv2_lists(ANNOTATIONS / "ssv2", videos, out, flip_swap=True)
    assert (out / "class_map.csv").read_text().splitlines() == ["label,official_id,name"] + [
        f"{i},{i},{name}" for i, name in enumerate(SSV2_CLASSES)]
    assert (out / "flip_class_swap.txt").read_text() == "2 3\n"  # pushing left to right <-> right to left
    assert load_flip_class_swap(out / "flip_class_swap.txt", len(SSV2_CLASSES)) == {2: 3, 3: 2}
    assert any("1 left/right class pairs; set DATA.FLIP_CLASS_SWAP" in note for note in report.notes)


def test_ssv2_subset_with_official_ids_keeps_them_in_the_class_map(tmp_path):
    annotations = tmp_path / "annotations"
    shutil.copytree(ANNOTATIONS / "ssv2", annotations)
    (annotations / "something-something-v2-labels.json").write_text(
        '{"Moving something down": "1", "Pushing something from left to right": "86", '
        '"Pushing something from right to left": "87", "Putting something on a surface": "140"}')
    for video_id in ["78687", "42326", "100904", "80715", "74225", "116154"]:
        _touch(tmp_path / "videos", f"{video_id}.webm")
    out = tmp_path / "lists"
    report = build_ssv2_lists(annotations, tmp_path / "videos", out, flip_swap=True)
    assert read_classes(out / "classes.txt") == SSV2_CLASSES[1:]
    assert (out / "class_map.csv").read_text().splitlines()[1:] == [
        "0,1,Moving something down", "1,86,Pushing something from left to right",
        "2,87,Pushing something from right to left", "3,140,Putting something on a surface"]
    assert (out / "train.csv").read_text() == "78687.webm 1\n42326.webm 2\n100904.webm 3\n"
    assert (out / "val.csv").read_text() == "74225.webm 1\n116154.webm 0\n"
    assert (out / "flip_class_swap.txt").read_text() == "1 2\n"
    assert any("official ids 1..140 with gaps" in note for note in report.notes)
    assert any(note.startswith("1 video(s) of") and "train.json belong to classes outside the subset" in note
               for note in report.notes)  # 80715 (approaching something with your camera)


def test_flip_swap_pairs_refuse_a_direction_class_without_its_mirror():
    assert ssv2_flip_swap_pairs(["Turning the camera left while filming something", "Moving something down",
                                 "Turning the camera right while filming something"]) == [(0, 2)]
    with pytest.raises(ValueError, match="no mirror class 'Pushing something from right to left'"):
        ssv2_flip_swap_pairs(["Pushing something from left to right", "Moving something down"])


def test_ssv2_unknown_template_fails_naming_the_entry(tmp_path):
    annotations = tmp_path / "annotations"
    shutil.copytree(ANNOTATIONS / "ssv2", annotations)
    (annotations / "something-something-v2-validation.json").write_text(
        '[{"id":"1","label":"x","template":"Spinning [something]","placeholders":["x"]}]')
    _touch(tmp_path / "videos", "1.webm")
    with pytest.raises(ValueError, match=r"validation.json: entry 1 \(id 1\): template 'Spinning something'"):
        build_ssv2_lists(annotations, tmp_path / "videos", tmp_path / "lists")


# ---------------------------------------------------------------------------- existing lists

def test_import_pyslowfast_lists_validates_and_drops_missing(tmp_path):
    source, videos = tmp_path / "pyslowfast", tmp_path / "videos"
    source.mkdir()
    for name in ["a.mp4", "b.mp4", "c.mp4"]:
        _touch(videos, name)
    (source / "train.csv").write_text("a.mp4 0\nb.mp4 1\nghost.mp4 1\n")
    (source / "val.csv").write_text("c.mp4 1\n")
    (tmp_path / "classes.txt").write_text("left\nright\n")
    report = import_lists(source, tmp_path / "classes.txt", videos, tmp_path / "out", dataset="mine")
    assert (tmp_path / "out/train.csv").read_text() == "a.mp4 0\nb.mp4 1\n"
    assert (tmp_path / "out/test.csv").read_text() == "c.mp4 1\n"
    assert report.splits["train"].missing == ["ghost.mp4"]
    assert read_classes(tmp_path / "out/classes.txt") == ["left", "right"]


def test_import_rejects_labels_beyond_the_classes(tmp_path):
    source = tmp_path / "pyslowfast"
    source.mkdir()
    (source / "train.csv").write_text("a.mp4 0\nb.mp4 2\n")
    (tmp_path / "classes.txt").write_text("left\nright\n")
    with pytest.raises(ValueError, match=r"train.csv:2: label 2 is out of range \[0, 2\)"):
        import_lists(source, tmp_path / "classes.txt", tmp_path, tmp_path / "out", dataset="mine")


def test_index_videos_finds_nested_files_and_needs_a_folder(tmp_path):
    _touch(tmp_path, "x/y/clip.webm")
    _touch(tmp_path, "readme.md")
    assert index_videos(tmp_path) == {"clip": "x/y/clip.webm"}
    with pytest.raises(FileNotFoundError, match="not a directory"):
        index_videos(tmp_path / "nope")


def test_build_data_lists_cli_prints_the_report(tmp_path, monkeypatch, capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    try:
        import build_data_lists
    finally:
        sys.path.pop(0)
    _k400_videos(tmp_path / "videos")
    monkeypatch.setattr(sys, "argv", [
        "build_data_lists.py", "k400", "--annotations", str(ANNOTATIONS / "k400"),
        "--videos", str(tmp_path / "videos"), "--out", str(tmp_path / "lists"), "--separator", "\t"])
    assert build_data_lists.main() == 0
    printed = capsys.readouterr().out
    assert "train: 5 of 6 listed videos found, 1 missing" in printed
    assert "set DATA.PATH_PREFIX to it" in printed and str((tmp_path / "videos").resolve()) in printed
    assert read_list(tmp_path / "lists/val.csv", "\t", num_classes=4)[1] == \
        ListEntry("bending metal/Xc4vB6nM8lK_000220_000230.mp4", 1)


def test_build_data_lists_cli_reports_bad_annotations_without_a_traceback(tmp_path,
                                                                           monkeypatch, capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    try:
        import build_data_lists
    finally:
        sys.path.pop(0)
    annotations = tmp_path / "annotations"
    shutil.copytree(ANNOTATIONS / "k400", annotations)
    with open(annotations / "validate.csv", "a") as handle:
        handle.write('"juggling balls",Ab1cD2eF3gH,0,10,val\n')
    _k400_videos(tmp_path / "videos")
    monkeypatch.setattr(sys, "argv", [
        "build_data_lists.py", "k400", "--annotations", str(annotations),
        "--videos", str(tmp_path / "videos"), "--out", str(tmp_path / "lists")])
    assert build_data_lists.main() == 2
    assert re.search(r"^error: .*validate.csv:6: class 'juggling balls'", capsys.readouterr().err)


def test_build_data_lists_cli_writes_the_ssv2_flip_swap_file(tmp_path, monkeypatch, capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    try:
        import build_data_lists
    finally:
        sys.path.pop(0)
    for video_id in ["78687", "42326", "100904", "80715", "74225", "116154"]:
        _touch(tmp_path / "videos", f"{video_id}.webm")
    monkeypatch.setattr(sys, "argv", [
        "build_data_lists.py", "ssv2", "--annotations", str(ANNOTATIONS / "ssv2"), "--videos",
        str(tmp_path / "videos"), "--out", str(tmp_path / "lists"), "--flip-swap"])
    assert build_data_lists.main() == 0
    assert (tmp_path / "lists" / "flip_class_swap.txt").read_text() == "2 3\n"
    assert "set DATA.FLIP_CLASS_SWAP to it" in capsys.readouterr().out
