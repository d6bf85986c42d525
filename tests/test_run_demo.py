"""tools/run_demo.py end to end at toy size: both datasets, image pretraining, inflation into the
video model, finetuning, the 3-crop test, the pair report, and reuse of data and pretraining."""
from __future__ import annotations

import runpy
from pathlib import Path

import pytest

import videovit.recipes.demo as recipe

pytestmark = pytest.mark.slow  # the end-to-end demo at toy size

REPO_ROOT = Path(__file__).resolve().parents[1]
TOY_PRETRAINING = """
TRAIN:
  EPOCHS: 1
  BATCH_SIZE: 6
  EVAL_PERIOD: 1
  CHECKPOINT_PERIOD: 1
"""


@pytest.fixture()
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """tools/run_demo.py's ``main``, run in ``tmp_path`` with 2-3 clips per class and a one-epoch pretraining."""
    overlay = tmp_path / "toy_pretraining.yaml"
    overlay.write_text(TOY_PRETRAINING)
    sizes = {task: dict(size, num_train_per_class=2, num_val_per_class=1, num_test_per_class=1)
             for task, size in recipe.DATA_SIZES.items()}
    monkeypatch.setattr(recipe, "DATA_SIZES", sizes)
    monkeypatch.setattr(recipe, "PRETRAIN_CONFIGS", (*recipe.PRETRAIN_CONFIGS, overlay))
    monkeypatch.chdir(tmp_path)
    return {"main": runpy.run_path(str(REPO_ROOT / "tools" / "run_demo.py"))["main"]}


def test_demo_pretrains_an_image_model_then_finetunes_the_inflated_video_model(demo, capsys) -> None:
    toy = ["TRAIN.EPOCHS", "1", "TRAIN.BATCH_SIZE", "4", "OUTPUT_DIR", "output/toy"]
    assert demo["main"](toy) == 0
    out = capsys.readouterr().out
    pretrained = Path("output/demo_pretrain/checkpoints/checkpoint_latest.pyth")
    assert pretrained.is_file()
    assert "writing the synthetic position dataset" in out and "writing the synthetic motion dataset" in out
    log = Path("output/toy/log.txt").read_text()
    assert f"finetuning from {pretrained}" in log
    assert "inflated      30" in log
    assert "classifier re-initialised ((9, 256) in file, (8, 256) in model)" in log
    assert "1 temporal x 3 spatial views" in log
    assert "videos scored       8 of 8" in out
    assert out.count("%\n", out.index("per-pair accuracy")) == 4

    assert demo["main"](["MODEL.TEMPORAL", "False", "TRAIN.EPOCHS", "1", "TRAIN.BATCH_SIZE", "4"]) == 0
    out = capsys.readouterr().out
    assert "using the synthetic position dataset" in out and "using the synthetic motion dataset" in out
    assert "WITHOUT temporal layers" in out
    control = Path("output/demo/MODEL.TEMPORAL=False_TRAIN.EPOCHS=1_TRAIN.BATCH_SIZE=4")
    assert f"finetuning from {pretrained}" in (control / "log.txt").read_text()


def test_a_given_initial_checkpoint_skips_the_pretraining(demo, capsys) -> None:
    toy = ["TRAIN.CHECKPOINT_FILE_PATH", "", "TRAIN.EPOCHS", "1", "TRAIN.BATCH_SIZE", "4",
           "TEST.ENABLE", "False"]
    assert demo["main"](toy) == 0
    assert not Path("output/demo_pretrain").exists()
    assert "synthetic position dataset" not in capsys.readouterr().out
