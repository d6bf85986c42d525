"""Bad input fails early through the command line: exit status 2, one message naming the file and line
or the key and what to change, as the last line printed, no traceback, and no training step taken.

Each case takes a copy of a valid tiny dataset's lists (tests/tiny_runs.py's: 3 classes, train,
val and test lists of 6, 3 and 3 videos), breaks one thing, and runs ``tools/run_net.py``'s
``main(argv)`` in this process (tests/tool_calls.py; test_tools_errors.py shows the real command line
prints the same). ``{lists}`` and ``{work}`` in the expected texts stand for the case's list folder
and working folder. Value checks report every problem at once, so one case covers several conflicts.
"""
from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from tiny_runs import make_tiny_dataset, tiny_overrides
from tool_calls import call_tool

Setup = Callable[[Path, Path], tuple[list[Path], dict[str, object]]]
PER_CLASS = {"train": 2, "val": 1, "test": 1}


@dataclass(frozen=True)
class Case:
    """A broken input: ``setup(lists, work)`` breaks it and returns (--cfg files, overrides)."""

    name: str
    setup: Setup
    expected: tuple[str, ...]


def overrides(values: dict[str, object]) -> Setup:
    """A case that only changes config values."""
    return lambda lists, work: ([], values)


def file_content(relative: str, content: bytes) -> Setup:
    """A case that rewrites ``lists/relative`` with ``content``."""
    def setup(lists: Path, work: Path) -> tuple[list[Path], dict[str, object]]:
        (lists / relative).write_bytes(content)
        return [], {}
    return setup


def appended_line(relative: str, line: str) -> Setup:
    """A case that appends one line to a list file (line 7 of train.csv, line 4 of test.csv)."""
    def setup(lists: Path, work: Path) -> tuple[list[Path], dict[str, object]]:
        with (lists / relative).open("a") as stream:
            stream.write(line + "\n")
        return [], {}
    return setup


def yaml_file(text: str) -> Setup:
    """A case passing ``work/bad.yaml`` with ``text`` as --cfg."""
    def setup(lists: Path, work: Path) -> tuple[list[Path], dict[str, object]]:
        (work / "bad.yaml").write_text(text)
        return [work / "bad.yaml"], {}
    return setup


def classes_file_is_a_folder(lists: Path, work: Path) -> tuple[list[Path], dict[str, object]]:
    """classes.txt replaced by a folder of that name."""
    (lists / "classes.txt").unlink()
    (lists / "classes.txt").mkdir()
    return [], {}


def swap_file_with_unknown_class(lists: Path, work: Path) -> tuple[list[Path], dict[str, object]]:
    """DATA.FLIP_CLASS_SWAP naming class 7 of 3."""
    (work / "swap.txt").write_text("0 1\n2 7\n")
    return [], {"DATA.FLIP_CLASS_SWAP": work / "swap.txt"}


def other_classes_checkpoint(contents: dict) -> dict:
    """A videovit-layout checkpoint of a model trained on classes this dataset does not have."""
    return {"model": {"head.weight": torch.zeros(3, 128)}, "config": "MODEL:\n  NAME: regionvit_ti\n",
            "class_names": ["cat", "dog", "bird"], **contents}


def resume_from_other_classes(lists: Path, work: Path) -> tuple[list[Path], dict[str, object]]:
    """OUTPUT_DIR holds a training checkpoint of other classes, which the run would resume."""
    (work / "out" / "checkpoints").mkdir(parents=True)
    torch.save(other_classes_checkpoint({"optimizer": {}, "epoch": 1, "global_step": 3, "rng": []}),
               work / "out" / "checkpoints" / "checkpoint_latest.pyth")
    return [], {}


def weights_to_test_of_other_classes(lists: Path, work: Path) -> tuple[list[Path], dict[str, object]]:
    """Test only, with TEST.CHECKPOINT_FILE_PATH trained on other classes."""
    torch.save(other_classes_checkpoint({}), work / "other.pyth")
    return [], {"TRAIN.ENABLE": False, "TEST.CHECKPOINT_FILE_PATH": work / "other.pyth"}


def foreign_pickled_checkpoint(lists: Path, work: Path) -> tuple[list[Path], dict[str, object]]:
    """TRAIN.CHECKPOINT_FILE_PATH pickles a Python object besides its weights (a training script's args)."""
    torch.save({"state_dict": {"head.weight": torch.zeros(3, 8)}, "args": argparse.Namespace(lr=0.1)},
               work / "foreign.pth")
    return [], {"TRAIN.CHECKPOINT_FILE_PATH": work / "foreign.pth"}


CASES = [
    # list files
    Case("line_without_label", appended_line("train.csv", "train_0_0.mp4"),
         ("{lists}/train.csv:7: expected '<path> <label>', got 'train_0_0.mp4'", "DATA.PATH_LABEL_SEPARATOR")),
    Case("label_out_of_range", appended_line("train.csv", "train_0_0.mp4 3"),
         ("{lists}/train.csv:7: label 3 is out of range [0, 3); fix the label or the classes file",)),
    Case("empty_list", file_content("val.csv", b""), ("{lists}/val.csv: the list is empty",)),
    Case("broken_test_list_fails_before_training", appended_line("test.csv", "test_0_0.mp4,0"),
         ("{lists}/test.csv:4: expected '<path> <label>'",)),
    Case("videos_not_under_the_prefix", overrides({"DATA.PATH_PREFIX": "/no/such/videos"}),
         ("none of the first 6 videos of {lists}/train.csv exists (e.g. /no/such/videos/train_0_0.mp4)",
          "set DATA.PATH_PREFIX")),
    # class files and class names
    Case("classes_file_not_text", file_content("classes.txt", bytes(range(128, 256))),
         ("{lists}/classes.txt: not UTF-8 text",)),
    Case("classes_file_is_a_folder", classes_file_is_a_folder,
         ("{lists}/classes.txt cannot be read (Is a directory)",)),
    Case("class_count_differs_from_the_model", overrides({"MODEL.NUM_CLASSES": 5}),
         ("{lists}/classes.txt has 3 classes but MODEL.NUM_CLASSES is 5",)),
    Case("resume_checkpoint_of_other_classes", resume_from_other_classes,
         ("{work}/out/checkpoints/checkpoint_latest.pyth, the checkpoint to resume, was trained with other classes",)),
    Case("test_checkpoint_of_other_classes", weights_to_test_of_other_classes,
         ("{work}/other.pyth was trained with other classes", "use the same classes.txt")),
    Case("flip_swap_names_an_unknown_class", swap_file_with_unknown_class,
         ("{work}/swap.txt:2: class 7 is out of range [0, 3)",)),
    Case("fewer_videos_than_one_step", overrides({"TRAIN.BATCH_SIZE": 8}),
         ("{lists}/train.csv has 6 videos, fewer than one optimiser step takes (TRAIN.BATCH_SIZE 8 x 1 processes",
          "lower TRAIN.BATCH_SIZE")),
    # config values and files
    Case("misspelt_key", overrides({"TRAIN.BATCHSIZE": 4}),
         ("unknown config key 'TRAIN.BATCHSIZE' (command line). Did you mean TRAIN.BATCH_SIZE",)),
    Case("wrong_type", overrides({"SOLVER.BASE_LR": "fast"}), ("SOLVER.BASE_LR (command line) expects a number",)),
    Case("yaml_syntax_error", yaml_file("TRAIN: [\n"), ("{work}/bad.yaml is not valid YAML (line 2, column 1)",)),
    Case("misspelt_key_in_yaml", yaml_file("TRAIN:\n  EPOCH: 3\n"),
         ("unknown config key 'TRAIN.EPOCH' ({work}/bad.yaml). Did you mean TRAIN.EPOCHS",)),
    # impossible and conflicting values, all reported by one run
    Case("impossible_and_conflicting_values",
         overrides({"TRAIN.BATCH_SIZE": 0, "TRAIN.ENABLE": False, "TEST.ENABLE": False, "DIST_BACKEND": "nccl",
                    "DATA.TRAIN_CROP_SIZE": 64}),
         ("invalid configuration (4 problems)", "TRAIN.BATCH_SIZE = 0 must be >= 1",
          "TRAIN.ENABLE and TEST.ENABLE are both False: nothing to run",
          "DIST_BACKEND nccl needs GPUs but DEVICE is cpu",
          "DATA.TRAIN_CROP_SIZE = 64 is larger than the smallest training short side 32")),
    # checkpoints from elsewhere
    Case("foreign_pickled_checkpoint", foreign_pickled_checkpoint,
         ("{work}/foreign.pth", "set TRAIN.TRUST_CHECKPOINT True")),
]


@pytest.fixture(scope="module")
def valid_data(tmp_path_factory) -> tuple[Path, Path]:
    return make_tiny_dataset(tmp_path_factory.mktemp("valid"), PER_CLASS)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_fails_early_with_a_message_and_status_2(valid_data, tmp_path, case: Case) -> None:
    valid_lists, videos = valid_data
    lists, work = tmp_path / "lists", tmp_path
    shutil.copytree(valid_lists, lists)
    cfg_files, values = case.setup(lists, work)
    args = tiny_overrides(lists, videos, work / "out", **{"TRAIN.EPOCHS": 1, **values})
    done = call_tool("run_net.py", (["--cfg", *map(str, cfg_files)] if cfg_files else []) + args)

    assert done.status == 2, f"status {done.status}\n{done.err[-3000:]}"
    assert "Traceback" not in done.err, done.err[-3000:]
    assert done.errors and done.err.splitlines()[-1] == done.errors[-1], done.err[-3000:]
    for text in case.expected:
        assert text.format(lists=lists, work=work) in done.err, done.err
    assert "epoch 1/" not in done.out, "a training step ran before the error"
