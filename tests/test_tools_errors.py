"""Every command-line tool answers a missing input with one ``error:`` line on stderr and status 2.

Parametrised over the ``tools/*.py`` files present, so a tool added later fails here until it has a
case in ``MISSING_INPUT`` (its command line naming a file that does not exist).
"""
from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TOOLS = sorted(path.name for path in (REPO_ROOT / "tools").glob("*.py"))
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


@pytest.mark.slow
@pytest.mark.parametrize("tool", TOOLS)
def test_a_missing_input_is_one_error_line_and_status_2(tool: str, tmp_path: Path) -> None:
    assert tool in MISSING_INPUT, f"tools/{tool} has no missing-input case: add one to MISSING_INPUT"
    (tmp_path / "plain.txt").write_text("not a folder\n")
    args = [arg.format(missing=tmp_path / "missing", file=tmp_path / "plain.txt") for arg in MISSING_INPUT[tool]]
    done = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / tool), *args], cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.returncode == 2, f"status {done.returncode}:\n{done.stderr[-2000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert len(errors) == 1 and str(tmp_path) in errors[0], done.stderr[-2000:]
    print(f"{tool}: {errors[0]}")


# A binary file given where each tool reads text: the error names the file (no UnicodeDecodeError traceback).
BINARY_INPUT: dict[str, list[str]] = {
    "run_net.py": ["--cfg", "{binary}"],
    "model_info.py": ["--cfg", "{binary}"],
    "plot.py": ["curves", "--stats", "{binary}", "--out", "{folder}/curves.png"],
    "check_videos.py": ["--list", "{binary}"],
    "predict.py": ["--checkpoint", "{binary}", "--list", "{binary}", "--out", "{folder}/predictions.csv"],
}


@pytest.mark.parametrize("tool", sorted(BINARY_INPUT))
def test_a_binary_file_given_as_text_is_one_error_line_naming_it(tool: str, tmp_path: Path, capsys) -> None:
    binary = tmp_path / "input.bin"
    binary.write_bytes(bytes(range(128, 256)) * 20)
    args = [arg.format(binary=binary, folder=tmp_path) for arg in BINARY_INPUT[tool]]
    status = runpy.run_path(str(REPO_ROOT / "tools" / tool))["main"](args)
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("error: ") and str(binary) in err.strip().splitlines()[-1], err
