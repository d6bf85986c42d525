"""Inference on one video and tools/demo.py: a tiny untrained RegionViT saved by the engine, a real video.

Nothing is trained: the model is a randomly initialised tiny RegionViT whose head is perturbed (so a
model that failed to load the checkpoint would score differently), saved with the engine's own
checkpoint code. The video is an H.264 clip written by ``tests/videos.py``.
"""
from __future__ import annotations

import copy
import re
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from videos import make_indexed_video

from videovit.config import load_config, save_config
from videovit.data import build_dataset, probe_video, read_frames
from videovit.data.lists import ListEntry, write_classes, write_list
from videovit.deploy.classifier import VideoClassifier, from_pretrained
from videovit.engine.checkpoint_files import CheckpointManager
from videovit.errors import CheckpointError, DecodeError
from videovit.models import build_model
from videovit.viz.annotate import caption_frame

REPO_ROOT = Path(__file__).resolve().parents[1]
CLASSES = [f"class {i}" for i in range(8)]
VIDEO_FRAMES = 20


def tiny_config(output_dir: Path):
    """A 4-frame, 56-pixel RegionViT with 2 temporal x 3 spatial test views."""
    return load_config([], [
        "MODEL.NAME", "regionvit_ti", "MODEL.NUM_CLASSES", "8", "MODEL.EMBED_DIMS", "[32, 64, 128, 256]",
        "MODEL.DEPTHS", "[1, 1, 1, 1]", "MODEL.NUM_HEADS", "[1, 2, 4, 8]", "MODEL.DROP_PATH_RATE", "0.0",
        "DATA.NUM_FRAMES", "4", "DATA.TRAIN_JITTER_SCALES", "[56, 64]", "DATA.TRAIN_CROP_SIZE", "56",
        "DATA.TEST_SCALE", "64", "DATA.TEST_CROP_SIZE", "56", "DATA.DECODING_BACKEND", "pyav",
        "DATA.PATH_TO_DATA_DIR", str(output_dir / "lists"), "DATA.PATH_PREFIX", str(output_dir),
        "TEST.NUM_TEMPORAL_VIEWS", "2", "TEST.NUM_SPATIAL_CROPS", "3", "MIXUP.ENABLE", "False",
        "DEVICE", "cpu", "TENSORBOARD", "False", "OUTPUT_DIR", str(output_dir)])


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, dict, Path]:
    """(checkpoint path, the saved model's state dict, video path)."""
    root = tmp_path_factory.mktemp("demo")
    cfg = tiny_config(root)
    model = build_model(cfg)
    with torch.no_grad():
        model.head.weight.normal_(0, 1.0)
        model.head.bias.copy_(torch.linspace(-1, 1, len(CLASSES)))
    payload = {"model": model.state_dict(), "config": cfg.dump(), "class_names": CLASSES, "epoch": 1,
               "global_step": 1, "optimizer": {}}  # the keys of a training checkpoint inference reads
    path = CheckpointManager(root, period=1, keep=1).save(payload, epoch=1)
    video = make_indexed_video(root / "clip.mp4", VIDEO_FRAMES, size=(128, 96))
    return path, {k: v.clone() for k, v in model.state_dict().items()}, video


def test_from_pretrained_returns_the_model_carrying_config_classes_and_protocol(saved, monkeypatch) -> None:
    checkpoint, state, _ = saved
    reads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: reads.append(args[0]) or real_load(*args, **kwargs))
    model = from_pretrained(checkpoint, overrides=["TEST.NUM_SPATIAL_CROPS", "1"])
    assert len(reads) == 1, "the checkpoint file is read once"
    assert isinstance(model, torch.nn.Module) and not model.training and model.eval() is model
    assert model.class_names == CLASSES
    assert model.cfg.DATA.NUM_FRAMES == 4 and model.cfg.TEST.NUM_SPATIAL_CROPS == 1
    views = model.preprocessing
    assert (views.num_frames, views.crop_size, views.short_side, views.sampling) == (4, 56, 64, "uniform")
    assert (views.temporal_views, views.spatial_crops, views.mean) == (2, 1, (0.485, 0.456, 0.406))
    restored = model.state_dict()      # the attributes are no parameters or buffers: the keys are the model's
    assert restored.keys() == state.keys()
    assert all(torch.equal(restored[key], state[key]) for key in state)
    fresh = build_model(model.cfg)
    fresh.load_state_dict(restored)
    clip = torch.randn(2, 3, 4, 56, 56)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(clip), model(clip))
    replica = copy.deepcopy(model)            # what an EMA copy does: the attributes come along
    assert replica.class_names == CLASSES and replica.preprocessing == views


def test_from_pretrained_uses_given_config_files_instead_of_the_saved_config(saved, tmp_path) -> None:
    checkpoint, state, video = saved
    cfg = tiny_config(video.parent)
    cfg.defrost()
    cfg.TEST.NUM_SPATIAL_CROPS = 1          # the saved config has 3
    config_file = save_config(cfg, tmp_path)
    model = from_pretrained(checkpoint, [config_file], ["TEST.NUM_TEMPORAL_VIEWS", "1"])
    assert model.cfg.TEST.NUM_SPATIAL_CROPS == 1 and model.cfg.TEST.NUM_TEMPORAL_VIEWS == 1
    assert torch.equal(model.state_dict()["head.bias"], state["head.bias"])


def test_the_classifier_averages_the_test_protocol_views(saved, tmp_path) -> None:
    """Same views and averaging as the multi-view test: compare with the engine's test dataset."""
    checkpoint, _, video = saved
    model = from_pretrained(checkpoint)
    cfg = tiny_config(video.parent)
    cfg.defrost()
    cfg.DATA.PATH_TO_DATA_DIR = str(tmp_path)
    write_classes(tmp_path / "classes.txt", CLASSES)
    write_list(tmp_path / "test.csv", [ListEntry(video.name, 0)])
    dataset = build_dataset(cfg, "test")
    assert len(dataset) == 6
    with torch.no_grad():
        views = torch.stack([dataset[i]["clip"] for i in range(len(dataset))])
        expected = F.softmax(model(views), dim=1).mean(dim=0)
    classifier = VideoClassifier(model)
    probs = torch.from_numpy(classifier.predict([video]).scores.probs[0])
    assert torch.allclose(probs, expected, atol=1e-6)
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)
    top = classifier.classify(video, top_k=3)
    order = torch.argsort(expected, descending=True)[:3].tolist()
    assert [name for name, _ in top] == [CLASSES[i] for i in order]
    assert [p for _, p in top] == pytest.approx(expected[order].tolist(), abs=1e-6)


def test_the_classifier_names_a_video_it_cannot_decode(saved, tmp_path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 50)
    with pytest.raises(DecodeError, match=f"cannot decode {broken}"):
        VideoClassifier(from_pretrained(saved[0])).classify(broken)


def test_a_model_built_from_scratch_cannot_be_a_classifier(saved) -> None:
    with pytest.raises(CheckpointError, match="carries no config and class names: load it with"):
        VideoClassifier(build_model(tiny_config(saved[2].parent)))


def _run_demo(argv: list[str]) -> int:
    main = runpy.run_path(str(REPO_ROOT / "tools" / "demo.py"))["main"]
    return main(argv)


def _printed_predictions(out: str) -> list[tuple[str, float]]:
    return [(m.group(1).strip(), float(m.group(2)))
            for m in re.finditer(r"^\s+\d\. (.+?)\s+(\d\.\d{6})$", out, flags=re.MULTILINE)]


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_demo_prints_top5_and_writes_an_annotated_copy(saved, tmp_path, capsys, suffix: str) -> None:
    checkpoint, _, video = saved
    output = tmp_path / f"annotated{suffix}"
    assert _run_demo(["--checkpoint", str(checkpoint), "--video", str(video), "--output", str(output)]) == 0
    predictions = _printed_predictions(capsys.readouterr().out)
    assert len(predictions) == 5 and {name for name, _ in predictions} <= set(CLASSES)
    probs = [p for _, p in predictions]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6

    # the MP4 keeps every frame; the GIF shows, every 100 ms (10 fps), the first frame of that step
    kept = list(range(VIDEO_FRAMES)) if suffix == ".mp4" else [0, 3, 5, 8, 10, 13, 15, 18]
    info = probe_video(output)
    assert info.num_frames == len(kept) and (info.width, info.height) == (128, 96)
    name, prob = VideoClassifier(from_pretrained(checkpoint)).classify(video, top_k=1)[0]
    assert predictions[0] == (name, pytest.approx(prob, abs=1e-4))
    source = read_frames(video, kept).astype(int)
    expected = np.stack([caption_frame(frame, f"{name} {100 * prob:.1f}%") for frame in source.astype(np.uint8)])
    annotated = read_frames(output, range(len(kept))).astype(int)
    band = np.any(expected != source, axis=3)
    assert band[:, :4, :4].all() and not band[:, 48:].any()
    assert np.abs(annotated - expected).mean() < 4               # lossy codec / GIF palette tolerance
    assert np.abs(annotated - expected)[band].mean() < 6
    assert np.abs(annotated - source)[band].mean() > 20           # the caption really is there


def test_demo_refuses_a_checkpoint_that_is_not_from_videovit(saved, tmp_path, capsys) -> None:
    _, state, video = saved
    plain = tmp_path / "weights.pth"
    torch.save(state, plain)
    assert _run_demo(["--checkpoint", str(plain), "--video", str(video)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a videovit training checkpoint" in err


def test_from_pretrained_refuses_a_config_with_other_classes(saved) -> None:
    checkpoint, _, _ = saved
    with pytest.raises(CheckpointError, match="trained on 8 classes but MODEL.NUM_CLASSES is 5"):
        from_pretrained(checkpoint, overrides=["MODEL.NUM_CLASSES", "5"])


def test_caption_is_drawn_in_the_top_left_corner_only() -> None:
    frame = np.full((240, 320, 3), 128, dtype=np.uint8)
    captioned = caption_frame(frame, "moving left to right 97.5%")
    changed = np.any(captioned != frame, axis=2)
    rows, cols = np.nonzero(changed)
    assert changed[:4, :4].all() and rows.max() < 240 // 6 and cols.max() < 319
    assert np.any(captioned[changed] > 200)  # white text on the black band


def test_a_long_caption_shrinks_to_fit_a_small_frame() -> None:
    frame = np.full((200, 120, 3), 128, dtype=np.uint8)   # the default 14-pixel font would need ~170 pixels
    changed = np.any(caption_frame(frame, "rotating clockwise 12.5%") != frame, axis=2)
    assert changed[:, 0].any() and not changed[:, -1].any()   # the band ends inside the frame
