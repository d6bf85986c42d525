"""Every command-line tool answers a missing input with one ``error:`` line, the last thing on stderr,
and status 2.

Parametrised over the ``tools/*.py`` files present, so a tool added later fails here until it has a
case in ``MISSING_INPUT`` (its command line naming a file that does not exist). The tools run
in-process through their ``main(argv)`` (tests/tool_calls.py); one case runs the real command line
in a subprocess, to show that the interpreter's exit status and stderr are the same.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tool_calls import TOOLS, call_tool

TOOL_NAMES = sorted(path.name for path in TOOLS.glob("*.py"))
# Arguments per tool; {missing} is a folder that does not exist, {file} an existing plain file.
MISSING_INPUT: dict[str, list[str]] = {
    "benchmark.py": ["--cfg", "{missing}/model.yaml", "--no-attention"],
    "benchmark_compare.py": ["--models", "regionvit_ti", "--regionvit-repo", "{missing}/RegionViT"],
    "benchmark_data.py": ["--list", "{missing}/val.csv"],
    "benchmark_training.py": ["--cfg", "{missing}/demo.yaml", "--data", "{missing}/data"],
    "build_data_lists.py": ["k400", "--annotations", "{missing}", "--videos", "{missing}/videos", "--out",
                            "{missing}/lists"],
    "check_videos.py": ["--list", "{missing}/train.csv"],
    "benchmark_deploy.py": ["onnx", "--models", "{missing}"],
    "demo.py": ["--checkpoint", "{missing}/checkpoint_latest.pyth", "--video", "{missing}/clip.mp4"],
    "export.py": ["{missing}/checkpoint_latest.pyth", "{missing}/exported"],
    "make_synthetic_data.py": ["--root", "{file}/synthetic", "--train-per-class", "1", "--workers", "1"],
    "model_info.py": ["--cfg", "{missing}/model.yaml"],
    "model_table.py": ["{missing}/model.yaml"],
    "plot.py": ["curves", "--stats", "{missing}/stats.jsonl", "--out", "{missing}/curves.png"],
    "predict.py": ["--checkpoint", "{missing}/checkpoint_latest.pyth", "--list", "{missing}/videos.txt", "--out",
                   "{missing}/predictions.csv"],
    "prepare_videos.py": ["--src", "{missing}/videos", "--out", "{missing}/prepared"],
    "run_demo.py": ["--cfg", "{missing}/demo.yaml"],
    "run_net.py": ["--cfg", "{missing}/run.yaml"],
}


def missing_input_args(tool: str, tmp_path: Path) -> list[str]:
    """``MISSING_INPUT[tool]`` with its placeholders filled in under ``tmp_path``."""
    (tmp_path / "plain.txt").write_text("not a folder\n")
    return [arg.format(missing=tmp_path / "missing", file=tmp_path / "plain.txt") for arg in MISSING_INPUT[tool]]


@pytest.mark.parametrize("tool", TOOL_NAMES)
def test_a_missing_input_is_one_error_line_and_status_2(tool: str, tmp_path: Path, monkeypatch) -> None:
    assert tool in MISSING_INPUT, f"tools/{tool} has no missing-input case: add one to MISSING_INPUT"
    monkeypatch.chdir(tmp_path)
    done = call_tool(tool, missing_input_args(tool, tmp_path))
    assert done.status == 2, f"status {done.status}:\n{done.err[-2000:]}"
    assert "Traceback" not in done.err, done.err[-2000:]
    assert len(done.errors) == 1 and str(tmp_path) in done.errors[0], done.err[-2000:]
    assert done.err.splitlines()[-1] == done.errors[0], "the error is the last line printed"


@pytest.mark.slow  # a subprocess: the real command line
def test_the_real_command_line_exits_2_with_the_same_one_error_line(tmp_path: Path) -> None:
    args = missing_input_args("run_net.py", tmp_path)
    done = subprocess.run([sys.executable, str(TOOLS / "run_net.py"), *args], cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.returncode == 2, f"status {done.returncode}:\n{done.stderr[-2000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert len(errors) == 1 and str(tmp_path) in errors[0] and done.stderr.splitlines()[-1] == errors[0]


# A binary file given where each tool reads text: the error names the file (no UnicodeDecodeError traceback).
BINARY_INPUT: dict[str, list[str]] = {
    "run_net.py": ["--cfg", "{binary}"],
    "model_info.py": ["--cfg", "{binary}"],
    "plot.py": ["curves", "--stats", "{binary}", "--out", "{folder}/curves.png"],
    "check_videos.py": ["--list", "{binary}"],
    "predict.py": ["--checkpoint", "{binary}", "--list", "{binary}", "--out", "{folder}/predictions.csv"],
}


@pytest.mark.parametrize("tool", sorted(BINARY_INPUT))
def test_a_binary_file_given_as_text_is_one_error_line_naming_it(tool: str, tmp_path: Path) -> None:
    binary = tmp_path / "input.bin"
    binary.write_bytes(bytes(range(128, 256)) * 20)
    done = call_tool(tool, [arg.format(binary=binary, folder=tmp_path) for arg in BINARY_INPUT[tool]])
    assert done.status == 2 and "Traceback" not in done.err, done.err
    assert len(done.errors) == 1 and str(binary) in done.errors[0], done.err
    assert done.err.splitlines()[-1] == done.errors[0], "the error is the last line printed"
