"""The one path from a trained checkpoint to a model: config reconstruction, resizing, EMA policy, classes."""
from __future__ import annotations

import json
import logging
import runpy
from pathlib import Path

import pytest
import torch
from tiny_runs import CLASSES as TINY_CLASSES
from tiny_runs import make_tiny_dataset, tiny_overrides

from videovit.checkpoint import check_class_names, config_for_checkpoint, load_trained_model
from videovit.config import load_config
from videovit.deploy.classifier import from_pretrained
from videovit.engine import run
from videovit.engine.resume import load_initial_weights
from videovit.engine.testing import load_test_model
from videovit.errors import CheckpointError
from videovit.models import build_model, build_variant

TRAINED = ["MODEL.NAME", "regionvit_ti", "MODEL.EMBED_DIMS", "[16, 32, 64, 128]", "MODEL.NUM_HEADS", "[1, 1, 2, 4]",
           "MODEL.DEPTHS", "[1, 1, 1, 1]", "MODEL.NUM_CLASSES", "3", "DATA.NUM_FRAMES", "2", "MODEL_EMA.ENABLE", "True",
           "TEST.NUM_TEMPORAL_VIEWS", "2", "TEST.NUM_SPATIAL_CROPS", "1", "DATA.TEST_SCALE", "160",
           "DATA.TEST_CROP_SIZE", "128"]
CLASSES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A training checkpoint of a tiny 2-frame RegionViT whose EMA weights differ from its plain ones."""
    cfg = load_config(overrides=TRAINED)
    model = build_variant("regionvit_ti", num_frames=2, num_classes=3, embed_dims=[16, 32, 64, 128],
                         num_heads=[1, 1, 2, 4], depths=[1, 1, 1, 1])
    with torch.no_grad():
        model.time_embed.weight.normal_()
    ema = {key: value + 0.01 for key, value in model.state_dict().items()}
    path = tmp_path_factory.mktemp("trained") / "checkpoint_epoch_0003.pyth"
    torch.save({"model": model.state_dict(), "model_ema": ema, "config": cfg.dump(), "class_names": CLASSES,
                "epoch": 3}, path)
    return path


def test_the_checkpoint_decides_what_the_user_did_not_set(checkpoint: Path) -> None:
    user = load_config(overrides=["DATA.PATH_PREFIX", "/videos", "MODEL.DROP_PATH_RATE", "0.3"])
    said: list[str] = []
    cfg = config_for_checkpoint(user, torch.load(checkpoint, weights_only=True), checkpoint, said.append)
    assert (cfg.MODEL.NAME, cfg.MODEL.DEPTHS, cfg.MODEL.NUM_CLASSES, cfg.DATA.NUM_FRAMES) == (
        "regionvit_ti", [1, 1, 1, 1], 3, 2)
    assert cfg.MODEL_EMA.ENABLE and cfg.DATA.PATH_PREFIX == "/videos"
    assert cfg.MODEL.DROP_PATH_RATE == 0.3  # set by the user: kept
    assert "from the config saved in" in said[0] and "MODEL.NAME 'regionvit_ti'" in said[0]
    assert "as configured" in said[1] and "MODEL.DROP_PATH_RATE 0.3 (checkpoint: 0.1)" in said[1]


def test_another_frame_count_is_resized_and_said(checkpoint: Path) -> None:
    user = load_config(overrides=["DATA.NUM_FRAMES", "4"])
    said: list[str] = []
    trained = load_trained_model(checkpoint, user, log=said.append)
    assert trained.model.num_frames == 4 and trained.cfg.DATA.NUM_FRAMES == 4
    assert trained.report.resized == ["time_embed.weight (2, 16)->(4, 16)"]
    assert any("DATA.NUM_FRAMES 4 (checkpoint: 2)" in line for line in said)
    assert trained.model.class_names == CLASSES and trained.model.cfg is trained.cfg
    assert trained.model.preprocessing.num_frames == 4


def test_test_and_inference_score_the_same_weights(checkpoint: Path, tmp_path: Path) -> None:
    """One EMA policy: with MODEL_EMA.ENABLE (saved in the checkpoint) both use the EMA weights."""
    state = torch.load(checkpoint, weights_only=True)
    test_cfg = load_config(overrides=["TEST.CHECKPOINT_FILE_PATH", str(checkpoint), "OUTPUT_DIR", str(tmp_path),
                                      "TRAIN.ENABLE", "False"])
    tested = load_test_model(test_cfg, logging.getLogger("t")).model
    demo = from_pretrained(checkpoint)
    for name, value in tested.state_dict().items():
        torch.testing.assert_close(value, demo.state_dict()[name].to(value.device))
    torch.testing.assert_close(tested.state_dict()["head.weight"], state["model_ema"]["head.weight"])
    plain = from_pretrained(checkpoint, overrides=["MODEL_EMA.ENABLE", "False"])
    torch.testing.assert_close(plain.state_dict()["head.weight"], state["model"]["head.weight"])


def test_test_only_runs_and_inference_score_with_the_checkpoints_views_unless_set(checkpoint: Path,
                                                                                   tmp_path: Path) -> None:
    """One views rule: the checkpoint's protocol (2 temporal x 1 spatial, 128-pixel crops) wherever the
    user's config files and overrides do not set it, for the test-only run and from_pretrained alike."""
    test_only = ["TEST.CHECKPOINT_FILE_PATH", str(checkpoint), "OUTPUT_DIR", str(tmp_path), "TRAIN.ENABLE", "False"]
    tested = load_test_model(load_config(overrides=test_only), logging.getLogger("t"))
    assert tested.cfg.MODEL_EMA.ENABLE      # the checkpoint's, like the model keys
    config_file = tmp_path / "user.yaml"
    config_file.write_text("DATA:\n  DECODING_BACKEND: pyav\n")   # a config file that sets no view
    for model in (tested.model, from_pretrained(checkpoint), from_pretrained(checkpoint, [config_file])):
        views = model.preprocessing
        assert (views.temporal_views, views.spatial_crops, views.crop_size, views.short_side) == (2, 1, 128, 160)
    said: list[str] = []
    mine = ["TEST.NUM_SPATIAL_CROPS", "3"]
    tested = load_trained_model(checkpoint, load_config(overrides=test_only + mine), log=said.append)
    assert tested.model.preprocessing.spatial_crops == 3
    assert from_pretrained(checkpoint, overrides=mine).preprocessing.spatial_crops == 3
    assert any("TEST.NUM_SPATIAL_CROPS 3 (checkpoint: 1)" in line for line in said)


def test_finetuning_from_other_classes_trains_a_new_classifier_and_says_so(checkpoint: Path, caplog) -> None:
    state = torch.load(checkpoint, weights_only=True)["model"]
    cfg = load_config(overrides=TRAINED + ["TRAIN.CHECKPOINT_FILE_PATH", str(checkpoint)])
    log = logging.getLogger("videovit.test_finetune")
    same = build_model(cfg)
    load_initial_weights(cfg, same, None, CLASSES, log)
    assert torch.equal(same.head.weight, state["head.weight"])                       # same classes: kept
    other = build_model(cfg)
    with caplog.at_level(logging.INFO, logger=log.name):
        load_initial_weights(cfg, other, None, ["a", "x", "c"], log)   # 3 classes too, but another class 1
    assert not torch.equal(other.head.weight, state["head.weight"])
    assert torch.equal(other.time_embed.weight, state["time_embed.weight"])            # the rest is loaded
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "trained on other classes" in warning and "class 1 is 'b' there, 'x' here" in warning
    assert "the file's classifier was not used" in caplog.text   # the load report says it too


def test_class_names_must_match(checkpoint: Path) -> None:
    check_class_names(CLASSES, list(CLASSES), checkpoint)
    with pytest.raises(CheckpointError, match="other classes.*3 vs 2 classes"):
        check_class_names(CLASSES, ["a", "b"], checkpoint)
    with pytest.raises(CheckpointError, match="trained on 3 classes but MODEL.NUM_CLASSES is 5"):
        load_trained_model(checkpoint, load_config(overrides=["MODEL.NUM_CLASSES", "5"]))


def _tiny_checkpoint(tmp_path: Path, broken_test_video: bool = False) -> tuple[Path, Path, Path]:
    """(checkpoint of an untrained tiny RegionViT with 32-pixel crops, list folder, video folder)."""
    lists, videos = make_tiny_dataset(tmp_path / "data", {"test": 2}, broken_in=("test",) if broken_test_video else ())
    trained_cfg = load_config(overrides=tiny_overrides(lists, videos, tmp_path / "train"))
    path = tmp_path / "trained.pyth"
    torch.save({"model": build_model(trained_cfg).state_dict(), "config": trained_cfg.dump(),
                "class_names": TINY_CLASSES}, path)
    return path, lists, videos


def test_a_test_only_run_takes_model_classes_frames_and_views_from_the_checkpoint(tmp_path: Path) -> None:
    """The user names data and weights only; the run tests the 4-frame tiny RegionViT it was trained as,
    with its 32-pixel crops."""
    path, lists, videos = _tiny_checkpoint(tmp_path)
    metrics = run(load_config(overrides=[
        "TRAIN.ENABLE", "False", "TEST.CHECKPOINT_FILE_PATH", str(path), "DATA.PATH_TO_DATA_DIR", str(lists),
        "DATA.PATH_PREFIX", str(videos), "DATA_LOADER.NUM_WORKERS", "0", "DEVICE", "cpu", "TENSORBOARD", "False",
        "OUTPUT_DIR", str(tmp_path / "test")]))
    assert metrics is not None and metrics["videos_scored"] == 6
    saved = load_config([tmp_path / "test" / "config.yaml"])
    assert (saved.MODEL.NAME, saved.MODEL.DEPTHS, saved.MODEL.NUM_CLASSES, saved.DATA.NUM_FRAMES) == (
        "regionvit_ti", [1, 1, 1, 1], 3, 4)
    assert (saved.DATA.TEST_SCALE, saved.DATA.TEST_CROP_SIZE) == (32, 32)
    assert "from the config saved in" in (tmp_path / "test" / "log.txt").read_text()


def test_a_test_that_could_not_score_enough_videos_fails_after_writing_its_results(tmp_path: Path, capsys) -> None:
    """One video of 7 cannot be decoded (14 % > TEST.MAX_FAILED_SHARE 5 %): the results are written, the
    error is the last line printed and logged, and the status is 1."""
    path, lists, videos = _tiny_checkpoint(tmp_path, broken_test_video=True)
    main = runpy.run_path(str(Path(__file__).resolve().parents[1] / "tools" / "run_net.py"))["main"]
    output_dir = tmp_path / "test"
    assert main(["TRAIN.ENABLE", "False", "TEST.CHECKPOINT_FILE_PATH", str(path), "DATA.PATH_TO_DATA_DIR",
                 str(lists), "DATA.PATH_PREFIX", str(videos), "DATA_LOADER.NUM_WORKERS", "0", "DEVICE", "cpu",
                 "TENSORBOARD", "False", "OUTPUT_DIR", str(output_dir)]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: only 6 of 7 test videos were scored: 1 (14%) failed, more than "
                           "TEST.MAX_FAILED_SHARE 0.05 allows")
    assert f"see {output_dir / 'failed_videos.csv'}" in last and "DATA.PATH_PREFIX" in last
    assert (output_dir / "log.txt").read_text().strip().splitlines()[-1].endswith(last)
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert (metrics["videos_scored"], metrics["videos_total"]) == (6, 7)
    assert (output_dir / "predictions.csv").is_file() and (output_dir / "failed_videos.csv").is_file()
