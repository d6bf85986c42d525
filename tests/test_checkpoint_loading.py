"""Loading official image checkpoints (every manifest, every file layout) into video models."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import videovit
from videovit.checkpoint import load_pretrained
from videovit.errors import CheckpointError
from videovit.models.temporal import fold_frames

# manifest -> (model name, overrides) of the matching video model
REGIONVIT_MANIFESTS = {
    "regionvit_tiny": ("regionvit_ti", {}),
    "regionvit_small": ("regionvit_s", {}),
    "regionvit_medium": ("regionvit_m", {}),
    "regionvit_base": ("regionvit_b", {}),
    "regionvit_small_w14": ("regionvit_s_plus", {}),
    "regionvit_small_w14_peg": ("regionvit_s_plus", {"peg": True}),
    "regionvit_base_w14": ("regionvit_b_plus", {}),
    "regionvit_base_w14_peg": ("regionvit_b_plus", {"peg": True}),
}
VOLO_MANIFESTS = {f"volo_d{i}_224": (f"volo_d{i}", {}) for i in range(1, 6)}
TINY_REGIONVIT = dict(embed_dims=[32, 64, 64, 128], depths=[1, 1, 2, 1], num_heads=[1, 2, 2, 4])
TINY_VOLO = dict(embed_dims=[64, 128, 128, 128], depths=[1, 1, 1, 1], num_heads=[2, 4, 4, 4])


def state_from_manifest(manifest: Path) -> dict[str, torch.Tensor]:
    """Random tensors of the official shapes; duplicate downsampling copies equal, as officially.

    Large tensors repeat one random row (a stride-0 view) so the 300M-parameter files stay cheap
    to write: the loader only sees names, shapes and values, never memory layout.
    """
    shapes = json.loads(manifest.read_text())
    gen = torch.Generator().manual_seed(0)
    state = {k: random_tensor(shape, gen) for k, shape in shapes.items()}
    for key in state:
        if ".proj_cls." in key:
            state[key] = state[key.replace(".proj_cls.", ".proj.")].clone()
    return state


def random_tensor(shape: list[int], gen: torch.Generator) -> torch.Tensor:
    if math.prod(shape) < 1_000_000 or len(shape) < 2:
        return torch.randn(shape, generator=gen) * 0.02
    return (torch.randn(shape[-1], generator=gen) * 0.02).expand(shape)


def write_layout(state: dict[str, torch.Tensor], layout: str, folder: Path) -> Path:
    """Save ``state`` the way a user would have it on disk."""
    if layout == "regionvit_official":
        path = folder / "RegionViT.pth"
        torch.save({"model": state, "epoch": 299}, path)
    elif layout == "ddp_prefixed":
        path = folder / "ddp.pth"
        torch.save({"model": {f"module.{k}": v for k, v in state.items()}}, path)
    elif layout == "volo_official":
        path = folder / "d1_224_84.2.pth.tar"
        torch.save(state, path)
    elif layout == "volo_train":
        path = folder / "checkpoint.pth.tar"
        torch.save({"state_dict": state, "state_dict_ema": state, "epoch": 3,
                    "args": argparse.Namespace(lr=1e-3)}, path)
    elif layout == "safetensors":
        path = folder / "model.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        raise AssertionError(layout)
    return path


def meta_model(name: str, **overrides) -> torch.nn.Module:
    """A full-size model without memory or init cost: only its key names and shapes are needed."""
    with torch.device("meta"):
        return videovit.create_model(name, num_frames=8, num_classes=400, **overrides)


def assert_clean_inflation(report, model) -> None:
    assert report.missing == [] and report.mismatched == [] and report.unused == []
    temporal_new = {k for k in model.state_dict() if ".temporal.fc." in k or k.startswith("time_embed")}
    classifier = {k for k in model.state_dict() if k.startswith(("head.", "aux_head."))}
    assert set(report.new) == temporal_new | classifier
    assert report.inflated and all(".temporal." in k for k in report.inflated)
    loaded = set(report.loaded) | set(report.inflated) | set(report.new)
    assert loaded == set(model.state_dict())


# Every manifest in its family's official layout; every other layout once, on the family's smallest
# manifest: a layout only wraps, prefixes or re-encodes the same keys, so its unwrapping needs one file, and
# one safetensors file of volo_d1 instead of all five keeps the 2.5 GB of the bigger ones off the disk.
MANIFEST_CASES = (
    [(m, "regionvit_official") for m in sorted(REGIONVIT_MANIFESTS)] + [("regionvit_tiny", "ddp_prefixed")]
    + [(m, "volo_official") for m in sorted(VOLO_MANIFESTS)]
    + [("volo_d1_224", layout) for layout in ("volo_train", "safetensors")])


@pytest.mark.slow  # full-size models
@pytest.mark.filterwarnings("ignore:.*meta parameter.*no-op")
@pytest.mark.parametrize("manifest,layout", MANIFEST_CASES)
def test_official_files_inflate_cleanly(test_data: Path, tmp_path: Path, manifest: str, layout: str):
    path = write_layout(state_from_manifest(test_data / f"checkpoints/{manifest}.json"),
                        layout, tmp_path)
    name, overrides = {**REGIONVIT_MANIFESTS, **VOLO_MANIFESTS}[manifest]
    model = meta_model(name, **overrides)
    trust = layout == "volo_train"  # its argparse Namespace needs the explicit opt-in
    report = load_pretrained(model, path, trust=trust, log=lambda _: None)
    assert report.family == model.family
    assert report.layout == {"ddp_prefixed": "regionvit_official", "safetensors": "volo_official"}.get(
        layout, layout)
    assert_clean_inflation(report, model)


def test_training_checkpoint_with_pickled_args_is_refused_by_default(tmp_path: Path):
    image = videovit.create_model("volo_d1", num_frames=1, num_classes=1000, **TINY_VOLO)
    path = write_layout(image.state_dict(), "volo_train", tmp_path)
    video = videovit.create_model("volo_d1", num_frames=2, num_classes=1000, **TINY_VOLO)
    with pytest.raises(CheckpointError, match=r"pickled Python objects.*TRAIN.TRUST_CHECKPOINT"):
        load_pretrained(video, path)


@pytest.mark.parametrize("name,tiny,layout", [
    ("regionvit_ti", TINY_REGIONVIT, "regionvit_official"),
    ("volo_d1", TINY_VOLO, "volo_official"),
])
def test_inflated_video_model_reproduces_the_image_model(tmp_path: Path, name, tiny, layout):
    image = videovit.create_model(name, num_frames=1, num_classes=1000, **tiny).eval()
    path = write_layout(image.state_dict(), layout, tmp_path)
    video = videovit.create_model(name, num_frames=3, num_classes=1000, pretrained=str(path), **tiny)
    clip = torch.randn(2, 3, 3, 64, 64)
    with torch.no_grad():
        frame_logits = image(fold_frames(clip)[:, :, None]).reshape(2, 3, -1)
        torch.testing.assert_close(video.eval()(clip), frame_logits.mean(1), atol=1e-4, rtol=1e-4)


def test_inflation_copies_host_attention_into_temporal_attention(tmp_path: Path):
    image = videovit.create_model("volo_d1", num_frames=1, num_classes=1000, **TINY_VOLO)
    path = write_layout(image.state_dict(), "volo_official", tmp_path)
    video = videovit.create_model("volo_d1", num_frames=2, num_classes=1000, **TINY_VOLO)
    load_pretrained(video, path, log=lambda _: None)
    src, dst = image.state_dict(), video.state_dict()
    outlooker, transformer = "network.0.0", "network.2.0"
    dim = src[f"{outlooker}.attn.v.weight"].shape[0]
    torch.testing.assert_close(dst[f"{outlooker}.temporal.attn.qkv.weight"][2 * dim:],
                               src[f"{outlooker}.attn.v.weight"])
    assert dst[f"{outlooker}.temporal.attn.qkv.weight"][:2 * dim].std() > 0.01
    torch.testing.assert_close(dst[f"{transformer}.temporal.attn.qkv.weight"],
                               src[f"{transformer}.attn.qkv.weight"])
    torch.testing.assert_close(dst[f"{transformer}.temporal.norm.weight"],
                               src[f"{transformer}.norm1.weight"])
    assert dst[f"{transformer}.temporal.fc.weight"].abs().max() == 0


@pytest.mark.parametrize("name,tiny", [("regionvit_ti", TINY_REGIONVIT), ("volo_d1", TINY_VOLO)])
def test_time_embedding_init_std_survives_inflation_and_zero_stays_the_default(tmp_path: Path, name, tiny):
    """MODEL.TIME_EMBED_INIT_STD: the loader leaves the time embeddings as the model drew them."""
    image = videovit.create_model(name, num_frames=1, num_classes=10, **tiny)
    path = write_layout(image.state_dict(), "safetensors", tmp_path)
    embeddings = {}
    for std in (0.0, 0.5):
        video = videovit.create_model(name, num_frames=8, num_classes=10, time_embed_init_std=std, **tiny)
        load_pretrained(video, path, log=lambda _: None)
        embeddings[std] = [p.detach() for n, p in video.named_parameters() if n.startswith("time_embed")]
    assert embeddings[0.0] and all(weight.abs().max() == 0 for weight in embeddings[0.0])
    for weight in embeddings[0.5]:
        assert 0.3 < weight.std() < 0.6 and weight.abs().max() <= 1.0  # truncated at 2 std
    with pytest.raises(ValueError, match="init_std must be >= 0"):
        videovit.create_model(name, num_frames=8, num_classes=10, time_embed_init_std=-1.0, **tiny)


def test_head_is_replaced_when_the_class_count_differs(tmp_path: Path):
    image = videovit.create_model("regionvit_ti", num_frames=1, num_classes=1000, **TINY_REGIONVIT)
    path = write_layout(image.state_dict(), "regionvit_official", tmp_path)
    video = videovit.create_model("regionvit_ti", num_frames=2, num_classes=400, **TINY_REGIONVIT)
    report = load_pretrained(video, path, log=lambda _: None)
    assert {"head.weight", "head.bias"} <= set(report.new)
    assert any("classifier re-initialised" in note for note in report.notes)
    assert video(torch.randn(1, 3, 2, 64, 64)).shape == (1, 400)


def test_window_change_resizes_rel_pos_tables_and_regional_kernel(tmp_path: Path):
    image = videovit.create_model("regionvit_ti", num_frames=1, num_classes=10, **TINY_REGIONVIT)
    path = write_layout(image.state_dict(), "regionvit_official", tmp_path)
    plus = videovit.create_model("regionvit_ti_plus", num_frames=2, num_classes=10, **TINY_REGIONVIT)
    report = load_pretrained(plus, path, log=lambda _: None)
    resized = {entry.split()[0] for entry in report.resized}
    assert "regional_embed.proj.weight" in resized
    assert sum(k.endswith("rel_pos") for k in resized) == sum(TINY_REGIONVIT["depths"])
    assert plus(torch.randn(1, 3, 2, 112, 112)).shape == (1, 10)


def test_volo_position_embedding_follows_the_resolution(tmp_path: Path):
    image = videovit.create_model("volo_d1", num_frames=1, num_classes=10, **TINY_VOLO)
    path = write_layout(image.state_dict(), "volo_official", tmp_path)
    small = videovit.create_model("volo_d1", num_frames=2, num_classes=10, img_size=160, **TINY_VOLO)
    report = load_pretrained(small, path, log=lambda _: None)
    assert any(entry.startswith("pos_embed (1, 14, 14,") for entry in report.resized)
    assert small(torch.randn(1, 3, 2, 160, 160)).shape == (1, 10)


def test_time_embedding_is_resized_when_the_frame_count_changes(tmp_path: Path):
    eight = videovit.create_model("regionvit_ti", num_frames=8, num_classes=5, **TINY_REGIONVIT)
    with torch.no_grad():
        eight.time_embed.weight.copy_(torch.linspace(0, 7, 8)[:, None].expand_as(eight.time_embed.weight))
    path = tmp_path / "video.pth"
    torch.save({"model": eight.state_dict(), "config": "MODEL:\n  NAME: regionvit_ti\n"}, path)
    sixteen = videovit.create_model("regionvit_ti", num_frames=16, num_classes=5, **TINY_REGIONVIT)
    report = load_pretrained(sixteen, path, log=lambda _: None)
    assert report.layout == "videovit" and report.inflated == []
    assert any(e.startswith("time_embed.weight (8,") for e in report.resized)
    rows = sixteen.time_embed.weight[:, 0]
    assert rows[0] == 0 and rows[-1] == 7 and torch.all(rows[1:] >= rows[:-1])


def test_wrong_family_names_the_family_found(tmp_path: Path):
    volo = videovit.create_model("volo_d1", num_frames=1, num_classes=10, **TINY_VOLO)
    path = write_layout(volo.state_dict(), "volo_official", tmp_path)
    regionvit = videovit.create_model("regionvit_ti", num_frames=2, num_classes=10, **TINY_REGIONVIT)
    with pytest.raises(CheckpointError, match=r"holds volo weights.*the model is regionvit"):
        load_pretrained(regionvit, path)


def test_missing_weights_fail_unless_partial_loading_is_allowed(tmp_path: Path):
    image = videovit.create_model("regionvit_ti", num_frames=1, num_classes=10, **TINY_REGIONVIT)
    state = {k: v for k, v in image.state_dict().items() if not k.startswith("layers.3.")}
    path = write_layout(state, "regionvit_official", tmp_path)
    video = videovit.create_model("regionvit_ti", num_frames=2, num_classes=10, **TINY_REGIONVIT)
    with pytest.raises(CheckpointError, match=r"missing.*TRAIN.ALLOW_PARTIAL_LOAD True"):
        load_pretrained(video, path)
    report = load_pretrained(video, path, allow_partial=True, log=lambda _: None)
    assert report.missing and all(k.startswith("layers.3.") for k in report.missing)


def test_mismatched_architecture_is_an_error(tmp_path: Path):
    image = videovit.create_model("regionvit_ti", num_frames=1, num_classes=10, **TINY_REGIONVIT)
    path = write_layout(image.state_dict(), "regionvit_official", tmp_path)
    wider = videovit.create_model("regionvit_ti", num_frames=2, num_classes=10,
                                  **{**TINY_REGIONVIT, "embed_dims": [32, 64, 128, 128]})
    with pytest.raises(CheckpointError, match=r"shape-mismatched.*MODEL.NAME"):
        load_pretrained(wider, path)


def test_report_is_printed_on_every_load(tmp_path: Path, capsys):
    image = videovit.create_model("regionvit_ti", num_frames=1, num_classes=10, **TINY_REGIONVIT)
    path = write_layout(image.state_dict(), "regionvit_official", tmp_path)
    video = videovit.create_model("regionvit_ti", num_frames=2, num_classes=10, **TINY_REGIONVIT)
    load_pretrained(video, path, log=print)
    out = capsys.readouterr().out
    for group in ("loaded", "inflated", "resized", "new", "unused"):
        assert f"  {group}" in out
