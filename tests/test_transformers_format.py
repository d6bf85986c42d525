"""transformers-format folders both ways, for every family with a transformers class (docs/checkpoints.md).

The transformers models are built from configs, offline; the tiny ones from each family's own tiny variant,
the full-size ones from transformers' default configs (TimeSformer-B 8x224, VideoMAE-B 16x224).
"""
from __future__ import annotations

import logging
import os
import runpy
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach a hub

import pytest
import torch
from safetensors.torch import save_file
from saved_models import CLASSES as SAVED_CLASSES
from saved_models import save_checkpoint
from transformers import AutoConfig, AutoModelForVideoClassification
from videos import make_indexed_video

import videovit
from videovit.checkpoint import load_pretrained, load_trained_model, read_checkpoint
from videovit.checkpoint.transformers_format import TRANSFORMERS_FILES, WEIGHTS_KEY, write_transformers_folder
from videovit.config import load_config
from videovit.errors import CheckpointError
from videovit.models import VideoBackbone, build_variant, families, get_family

FRAMES = 4
CLASSES = [f"action {i}" for i in range(5)]
FORMATS = [family for family in families() if family.transformers is not None]
TINY = [(family.name, family.tiny_variants[0]) for family in FORMATS]
REPO_ROOT = Path(__file__).resolve().parents[1]
FULL_SIZE_DIFF = 1e-4   # issue 22: max |logits diff| against transformers at full size


def hub_logits(model, clip: torch.Tensor) -> torch.Tensor:
    """transformers' logits for our ``(B, 3, T, H, W)`` clip (it takes ``(B, T, 3, H, W)``)."""
    with torch.no_grad():
        return model(pixel_values=clip.transpose(1, 2)).logits


def perturbed(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """``model`` with every parameter moved off its init (zero-initialised ones included), in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=gen) * 0.05)
    return model.eval()


def tiny_model(family: str, tiny) -> VideoBackbone:
    return perturbed(build_variant(tiny.name, num_frames=FRAMES, num_classes=len(CLASSES), **tiny.overrides), 0)


@pytest.fixture(params=TINY, ids=[name for name, _ in TINY])
def tiny_folders(request, tmp_path: Path):
    """(family, tiny variant, our model, its transformers folder, a transformers model of the same config with
    other weights, saved by transformers)."""
    family, tiny = request.param
    ours = tiny_model(family, tiny)
    written = write_transformers_folder(ours, CLASSES, tmp_path / "written")
    hub = perturbed(AutoModelForVideoClassification.from_config(AutoConfig.from_pretrained(written)), 1)
    hub.save_pretrained(tmp_path / "saved")
    return family, tiny, ours, written, hub, tmp_path / "saved"


def test_out_a_written_folder_is_loaded_by_transformers_with_the_same_logits_and_labels(tiny_folders) -> None:
    family, tiny, ours, written, _, _ = tiny_folders
    hub = AutoModelForVideoClassification.from_pretrained(written).eval()
    assert type(hub).__name__ == get_family(family).transformers.architecture
    assert [hub.config.id2label[i] for i in range(len(CLASSES))] == CLASSES
    clip = torch.randn(2, 3, FRAMES, tiny.image_size, tiny.image_size)
    with torch.no_grad():
        torch.testing.assert_close(hub_logits(hub, clip), ours(clip), atol=1e-5, rtol=1e-4)


def test_in_a_saved_folder_loads_through_create_model_and_the_trained_model_path(tiny_folders, capsys,
                                                                               monkeypatch) -> None:
    family, tiny, _, _, hub, saved = tiny_folders
    videovit_log = logging.getLogger("videovit")  # as in a fresh Python session: the report goes to stderr
    monkeypatch.setattr(videovit_log, "handlers", [])
    monkeypatch.setattr(videovit_log, "propagate", False)
    clip = torch.randn(2, 3, FRAMES, tiny.image_size, tiny.image_size)
    expected = hub_logits(hub, clip)
    created = videovit.create_model(tiny.name, pretrained=saved).eval()  # frames, classes, architecture: the folder's
    assert (created.num_frames, created.num_classes) == (FRAMES, len(CLASSES))
    report = capsys.readouterr().err
    assert f"(layout transformers, family {family})" in report and "new            0" in report
    assert "missing        0" in report and "unused         0" in report
    trained = load_trained_model(saved, log=lambda _: None)   # from_pretrained and a test-only run
    assert trained.model.class_names == CLASSES and trained.cfg.MODEL.NAME == tiny.name
    assert trained.cfg.DATA.NUM_FRAMES == FRAMES and trained.cfg.DATA.TEST_CROP_SIZE == tiny.image_size
    with torch.no_grad():
        torch.testing.assert_close(created(clip), expected, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(trained.model.eval()(clip), expected, atol=1e-5, rtol=1e-4)
    with pytest.raises(CheckpointError, match=f"holds a {family} model"):
        videovit.create_model(next(f for f in families() if f.name != family).tiny_variants[0].name, pretrained=saved)


def test_in_a_test_run_config_takes_the_model_keys_from_the_folder(tiny_folders) -> None:
    family, tiny, _, _, hub, saved = tiny_folders
    cfg = load_config([], ["MODEL.NAME", tiny.name, "TEST.CHECKPOINT_FILE_PATH", str(saved)])  # TEST.* as a user has it
    trained = load_trained_model(cfg.TEST.CHECKPOINT_FILE_PATH, cfg, log=lambda _: None)
    assert trained.cfg.MODEL.NUM_CLASSES == len(CLASSES) and trained.cfg.DATA.NUM_FRAMES == FRAMES
    clip = torch.randn(1, 3, FRAMES, tiny.image_size, tiny.image_size)
    with torch.no_grad():
        torch.testing.assert_close(trained.model.eval()(clip), hub_logits(hub, clip), atol=1e-5, rtol=1e-4)


def test_in_finetuning_takes_a_folder_or_its_state_dict_with_a_new_classifier(tiny_folders, tmp_path) -> None:
    family, tiny, ours, _, hub, saved = tiny_folders
    model = build_variant(tiny.name, num_frames=FRAMES, num_classes=3, **tiny.overrides)
    report = load_pretrained(model, saved, allow_new_classifier=True, log=lambda _: None)  # as finetuning does
    assert report.layout == "transformers" and set(report.new) == {"head.weight", "head.bias"}
    assert not report.missing and not report.mismatched and not report.unused
    flat = tmp_path / "state.safetensors"   # the state dict alone, as transformers' files keep it
    save_file(read_checkpoint(saved)[WEIGHTS_KEY], str(flat))
    again = build_variant(tiny.name, num_frames=FRAMES, num_classes=len(CLASSES), **tiny.overrides).eval()
    report = load_pretrained(again, flat, allow_new_classifier=False, log=lambda _: None)
    assert len(report.loaded) == len(again.state_dict()) and not report.unused
    clip = torch.randn(1, 3, FRAMES, tiny.image_size, tiny.image_size)
    with torch.no_grad():
        torch.testing.assert_close(again(clip), hub_logits(hub, clip), atol=1e-5, rtol=1e-4)


def _tool(name: str, argv: list[str]) -> int:
    return runpy.run_path(str(REPO_ROOT / "tools" / f"{name}.py"))["main"](argv)


@pytest.mark.slow  # two tools decoding a real video, in-process
def test_demo_and_predict_take_a_transformers_folder(tiny_folders, tmp_path, capsys) -> None:
    _, _, _, _, _, saved = tiny_folders
    (tmp_path / "videos").mkdir()
    video = make_indexed_video(tmp_path / "videos" / "clip.mp4", 16, size=(48, 40))
    assert _tool("demo", ["--checkpoint", str(saved), "--video", str(video), "--top-k", "2"]) == 0
    assert any(name in capsys.readouterr().out for name in CLASSES)   # named by the folder's id2label
    out = tmp_path / "predictions.csv"
    assert _tool("predict", ["--checkpoint", str(saved), "--folder", str(tmp_path / "videos"), "--out", str(out),
                             "--top-k", "2", "DATA_LOADER.NUM_WORKERS", "0"]) == 0
    assert "predicted 1 of 1 videos" in capsys.readouterr().out
    assert any(name in out.read_text() for name in CLASSES)


@pytest.mark.parametrize("family", [family.name for family in FORMATS])
def test_export_format_transformers_writes_what_transformers_loads(family: str, tmp_path, capsys) -> None:
    checkpoint, _ = save_checkpoint(tmp_path / "run", family)
    assert _tool("export", [str(checkpoint), str(tmp_path / "hub"), "--format", "transformers"]) == 0
    assert sorted(path.name for path in (tmp_path / "hub").iterdir()) == sorted(TRANSFORMERS_FILES)
    ours = videovit.from_pretrained(checkpoint)
    hub = AutoModelForVideoClassification.from_pretrained(tmp_path / "hub").eval()
    assert [hub.config.id2label[i] for i in range(len(SAVED_CLASSES))] == SAVED_CLASSES
    side = ours.preprocessing.crop_size
    clip = torch.randn(2, 3, ours.num_frames, side, side)
    with torch.no_grad():
        torch.testing.assert_close(hub_logits(hub, clip), ours(clip), atol=1e-5, rtol=1e-4)
    again = videovit.from_pretrained(tmp_path / "hub")   # and back: the same model, classes and frames
    assert again.class_names == SAVED_CLASSES
    kept = ("num_frames", "short_side", "crop_size", "mean", "std")   # a transformers folder has no test views
    assert [getattr(again.preprocessing, name) for name in kept] == [getattr(ours.preprocessing, name) for name in kept]
    with torch.no_grad():
        torch.testing.assert_close(again(clip), ours(clip), atol=1e-5, rtol=1e-4)
    capsys.readouterr()


def test_export_format_transformers_refuses_a_family_without_a_transformers_class(tmp_path, capsys) -> None:
    family = next(family for family in families() if family.transformers is None)
    checkpoint, _ = save_checkpoint(tmp_path / "run", family.name)
    assert _tool("export", [str(checkpoint), str(tmp_path / "hub"), "--format", "transformers"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "have no transformers class" in err[-1]
    assert not (tmp_path / "hub").exists()
    assert _tool("export", [str(checkpoint), str(tmp_path / "hub"), "--format", "onnx"]) == 2
    assert "unknown export format 'onnx'" in capsys.readouterr().err


def test_families_without_a_transformers_class_are_refused_with_one_line(tmp_path) -> None:
    family = next(family for family in families() if family.transformers is None)
    tiny = family.tiny_variants[0]
    model = build_variant(tiny.name, num_frames=FRAMES, num_classes=len(CLASSES), **tiny.overrides)
    with pytest.raises(CheckpointError, match=f"{family.name} models have no transformers class") as info:
        write_transformers_folder(model, CLASSES, tmp_path / "out")
    assert "\n" not in str(info.value) and not (tmp_path / "out").exists()


@pytest.mark.slow  # full-size CPU forwards (TimeSformer-B 8x224: 196 GFLOPs, VideoMAE-B 16x224: 180 GFLOPs)
@pytest.mark.parametrize("family", [family.name for family in FORMATS])
def test_full_size_logits_equal_transformers_both_ways(family: str, tmp_path: Path) -> None:
    model_type = get_family(family).transformers.model_type
    hub = AutoModelForVideoClassification.from_config(AutoConfig.for_model(model_type, num_labels=400)).eval()
    hub.save_pretrained(tmp_path / "in")
    trained = load_trained_model(tmp_path / "in", log=lambda _: None)
    frames, side = trained.cfg.DATA.NUM_FRAMES, trained.cfg.DATA.TEST_CROP_SIZE
    clip = torch.randn(1, 3, frames, side, side, generator=torch.Generator().manual_seed(0))
    expected = hub_logits(hub, clip)
    with torch.no_grad():
        ours = trained.model.eval()(clip)
    into = (ours - expected).abs().max().item()
    write_transformers_folder(trained.model, trained.model.class_names, tmp_path / "out")
    back = AutoModelForVideoClassification.from_pretrained(tmp_path / "out").eval()
    print(f"\n{family} {frames}x{side}: max |logits diff| transformers -> videovit {into:.2e} "
          f"(logits up to {expected.abs().max():.2f})")
    assert into <= FULL_SIZE_DIFF
    # The way back gives transformers the very tensors it started from, so its logits are ``expected``
    # bit for bit: ours within FULL_SIZE_DIFF both ways, without a third full-size forward.
    started, returned = hub.state_dict(), back.state_dict()
    assert started.keys() == returned.keys()
    assert [key for key in started if not torch.equal(started[key], returned[key])] == []
