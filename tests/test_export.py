"""Exported model folders (tools/export.py), from_pretrained, and the ONNX export of every family.

The checkpoints are tiny untrained models saved by the engine's own checkpoint code
(tests/saved_models.py); the ONNX files are run with onnxruntime against PyTorch.
"""
from __future__ import annotations

import json
import os
import runpy
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from saved_models import CLASSES, TINY_FAMILIES, save_checkpoint, tiny_config
from videos import make_indexed_video

import videovit
from videovit.checkpoint import read_checkpoint
from videovit.checkpoint.exported import CARD_FILE, CONFIG_FILE, ONNX_FILE, WEIGHTS_DIGEST_KEY, WEIGHTS_FILE
from videovit.deploy.classifier import VideoClassifier
from videovit.deploy.onnx import MAX_ABS_DIFF, check_onnx, export_onnx
from videovit.errors import CheckpointError, Interrupted
from videovit.models import build_model, get_family

REPO_ROOT = Path(__file__).resolve().parents[1]


def _export_main(argv: list[str]) -> int:
    return runpy.run_path(str(REPO_ROOT / "tools" / "export.py"))["main"](argv)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, dict, Path]:
    """(checkpoint of a run without EMA, its state dict, a video)."""
    root = tmp_path_factory.mktemp("export")
    checkpoint, state = save_checkpoint(root, "regionvit")
    video = make_indexed_video(root / "clip.mp4", 20, size=(128, 96))
    return checkpoint, state, video


@pytest.fixture(scope="module")
def exported(saved, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("exported") / "model"
    assert _export_main([str(saved[0]), str(folder)]) == 0
    return folder


def test_export_writes_a_flat_self_describing_folder(exported) -> None:
    assert sorted(p.name for p in exported.iterdir()) == sorted([WEIGHTS_FILE, CONFIG_FILE, CARD_FILE])
    config = json.loads((exported / CONFIG_FILE).read_text())
    assert config["model_name"] == "regionvit_ti" and config["num_frames"] == 4 and config["image_size"] == 56
    assert config["num_classes"] == 8 and config["id2label"] == {str(i): name for i, name in enumerate(CLASSES)}
    tiny = get_family("regionvit").tiny_variants[0]
    assert config["architecture_overrides"]["embed_dims"] == tiny.overrides["embed_dims"]
    assert config["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert config["std"] == pytest.approx([0.229, 0.224, 0.225])
    assert config["sampling"]["method"] == "uniform"
    assert config["test_views"]["temporal_views"] == 2 and config["test_views"]["spatial_crops"] == 3
    assert config["weights"] == "model"
    card = (exported / CARD_FILE).read_text()
    assert "2 temporal x 3 spatial" in card and "from_pretrained" in card and "upload_folder" in card


def test_from_pretrained_folder_gives_the_checkpoint_model(saved, exported) -> None:
    checkpoint, state, video = saved
    from_folder = videovit.from_pretrained(exported)
    from_checkpoint = videovit.from_pretrained(checkpoint)
    assert not from_folder.training and from_folder.class_names == CLASSES
    assert from_folder.preprocessing == from_checkpoint.preprocessing
    restored = from_folder.state_dict()
    assert restored.keys() == state.keys() and all(torch.equal(restored[k], state[k]) for k in state)
    assert from_folder.cfg.dump() == from_checkpoint.cfg.dump()
    assert np.array_equal(VideoClassifier(from_folder).predict([video]).scores.probs,
                          VideoClassifier(from_checkpoint).predict([video]).scores.probs)


def test_an_exported_folder_reads_as_a_checkpoint_and_takes_overrides(exported) -> None:
    read = read_checkpoint(exported)
    assert read["class_names"] == CLASSES and "head.weight" in read["model"] and "regionvit_ti" in read["config"]
    model = videovit.from_pretrained(exported, overrides=["TEST.NUM_SPATIAL_CROPS", "1"])
    assert model.cfg.TEST.NUM_SPATIAL_CROPS == 1 and model.cfg.MODEL.NAME == "regionvit_ti"


def test_export_ema_writes_the_ema_weights_and_the_run_metrics(tmp_path) -> None:
    checkpoint, state = save_checkpoint(tmp_path / "run", "regionvit", ema=True)
    assert _export_main([str(checkpoint), str(tmp_path / "default")]) == 0  # the weights the test scores: EMA
    assert json.loads((tmp_path / "default" / CONFIG_FILE).read_text())["weights"] == "model_ema"
    metrics = {"top1": 87.5, "top5": 100.0, "mean_class_acc": 86.0, "videos_scored": 7, "videos_total": 8,
               "split": "test"}
    (checkpoint.parent.parent / "metrics.json").write_text(json.dumps(metrics))
    try:
        assert _export_main([str(checkpoint), str(tmp_path / "ema"), "--ema"]) == 0
    finally:
        (checkpoint.parent.parent / "metrics.json").unlink()
    model = videovit.from_pretrained(tmp_path / "ema")
    assert torch.equal(model.state_dict()["head.bias"], torch.linspace(1, -1, len(CLASSES)))
    assert not torch.equal(model.state_dict()["head.bias"], state["head.bias"])
    assert json.loads((tmp_path / "ema" / CONFIG_FILE).read_text())["weights"] == "model_ema"
    card = (tmp_path / "ema" / CARD_FILE).read_text()
    assert "87.50" in card and "7 of 8" in card and "EMA" in card


def test_export_refuses_what_it_cannot_export(saved, tmp_path, capsys) -> None:
    _, state, _ = saved
    plain = tmp_path / "weights.pth"
    torch.save(state, plain)
    assert _export_main([str(plain), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    no_ema, _ = save_checkpoint(tmp_path / "plain", "regionvit", ema=False)
    assert _export_main([str(no_ema), str(tmp_path / "out"), "--ema"]) == 2
    assert "holds no EMA weights" in capsys.readouterr().err
    assert _export_main([str(tmp_path / "missing.pyth"), str(tmp_path / "out")]) == 2
    assert "missing.pyth does not exist" in capsys.readouterr().err


def test_exported_files_get_the_usual_permissions(saved, tmp_path) -> None:
    previous = os.umask(0o022)
    try:
        assert _export_main([str(saved[0]), str(tmp_path / "out")]) == 0
    finally:
        os.umask(previous)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755
    assert {path.name: path.stat().st_mode & 0o777 for path in (tmp_path / "out").iterdir()} == {
        WEIGHTS_FILE: 0o644, CONFIG_FILE: 0o644, CARD_FILE: 0o644}


def test_an_interrupted_export_leaves_no_folder(saved, exported, tmp_path, monkeypatch, capsys) -> None:
    """A signal during the ONNX export (the last and longest step): no folder, no partial one, status 130;
    a previous export in the folder is kept as it was."""
    def interrupted(*args, **kwargs):
        raise Interrupted(signal.SIGINT, "interrupted by SIGINT")

    monkeypatch.setattr("videovit.deploy.export.write_checked_onnx", interrupted)
    assert _export_main([str(saved[0]), str(tmp_path / "new"), "--onnx"]) == 130
    assert list(tmp_path.iterdir()) == [] and "interrupted by SIGINT" in capsys.readouterr().err
    before = {path.name: path.read_bytes() for path in exported.iterdir()}
    assert _export_main([str(saved[0]), str(exported), "--onnx"]) == 130
    assert {path.name: path.read_bytes() for path in exported.iterdir()} == before
    assert sorted(path.name for path in exported.parent.iterdir()) == [exported.name]


def test_an_export_replaces_a_previous_one_but_not_other_files(saved, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / CONFIG_FILE).write_text("{}")             # what an earlier export left
    assert _export_main([str(saved[0]), str(out)]) == 0
    assert json.loads((out / CONFIG_FILE).read_text())["format"] == "videovit-export"
    (out / "notes.txt").write_text("mine")
    assert _export_main([str(saved[0]), str(out)]) == 2
    assert "holds other files than an export (notes.txt)" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_folder_whose_weights_do_not_fit_is_refused(exported, tmp_path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    config = json.loads((exported / CONFIG_FILE).read_text())
    (broken / CONFIG_FILE).write_text(json.dumps(config))
    from safetensors.torch import save_file
    save_file({"regional_embed.proj.weight": torch.zeros(3, 3, 2, 2), "head.weight": torch.zeros(3, 3)},
              str(broken / WEIGHTS_FILE))
    with pytest.raises(CheckpointError, match=r"model.safetensors is damaged: its SHA-256 differs from the one in "
                                              r"\S+config.json"):
        videovit.from_pretrained(broken)  # the weights are not those the export wrote
    (broken / CONFIG_FILE).write_text(json.dumps({k: v for k, v in config.items() if k != WEIGHTS_DIGEST_KEY}))
    with pytest.raises(CheckpointError, match="does not cover the model"):
        videovit.from_pretrained(broken)  # no checksum (exported before they existed): the weights are judged
    (broken / CONFIG_FILE).write_text("{}")
    with pytest.raises(CheckpointError, match="not written by tools/export.py"):
        videovit.from_pretrained(broken)


@pytest.mark.slow  # regionvit's export is the command line's below (exporting takes most of the time)
@pytest.mark.parametrize("family", sorted(set(TINY_FAMILIES) - {"regionvit"}))
def test_onnx_export_matches_pytorch_with_a_dynamic_batch(family, tmp_path) -> None:
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -e '.[export]')")
    pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install -e '.[export]')")
    cfg = tiny_config(tmp_path, family)
    model = build_model(cfg).eval()
    with torch.no_grad():
        model.head.bias.copy_(torch.linspace(-1, 1, len(CLASSES)))
    shape = (3, cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE)
    path = export_onnx(model, shape, tmp_path / "model.onnx")
    check = check_onnx(path, model, shape, batch_sizes=(1, 3))   # exported with a batch of 2
    assert check.max_abs_diff <= MAX_ABS_DIFF, check


@pytest.mark.slow
def test_export_onnx_cli_checks_the_file_before_reporting_success(saved, tmp_path, capsys) -> None:
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -e '.[export]')")
    pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install -e '.[export]')")
    assert _export_main([str(saved[0]), str(tmp_path / "onnx"), "--onnx"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime matches PyTorch on batches of (1, 3)" in out and (tmp_path / "onnx" / ONNX_FILE).is_file()

