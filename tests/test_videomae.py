"""VideoMAE: cost, the official and transformers layouts, ImageNet ViT files inflated into it, its position
table and config keys, its configs (docs/models.md, "VideoMAE")."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # transformers models are built from configs, never fetched

import pytest
import torch

from videovit.bench.flops import count_parameters, measure_flops
from videovit.checkpoint import LoadReport, load_pretrained
from videovit.checkpoint.loading import match_state_dict
from videovit.config import load_config
from videovit.engine.preflight import check_run_config
from videovit.errors import ConfigError
from videovit.models import build_model, build_variant, get_family
from videovit.models.videomae import FAMILY, VideoMAE, can_load, checkpoint_filter_fn, sinusoid_table

if TYPE_CHECKING:  # transformers' VideoMAE module is imported where used: 1.3 s of every worker's collection
    from transformers import VideoMAEForVideoClassification

DATA = Path(__file__).resolve().parent / "data"
REPO_ROOT = Path(__file__).resolve().parents[1]
PARAMS_B_400 = 86_534_800   # as transformers counts VideoMAEForVideoClassification ViT-B, 400 classes
TINY = dict(embed_dims=[32], depths=[2], num_heads=[2], patch_size=8, img_size=32)


def manifest(name: str) -> dict[str, list[int]]:
    return json.loads((DATA / "checkpoints" / f"{name}.json").read_text())


def meta_state(name: str) -> dict[str, torch.Tensor]:
    return {key: torch.empty(shape, device="meta") for key, shape in manifest(name).items()}


def meta_model(**kwargs) -> VideoMAE:
    with torch.device("meta"):
        model = build_variant("videomae_b", **kwargs)
    assert isinstance(model, VideoMAE)
    return model


def hub_tiny(seed: int = 0) -> VideoMAEForVideoClassification:
    """A small transformers VideoMAE (4 frames of 32x32, width 32), weights moved off their init."""
    from transformers import VideoMAEConfig as HubConfig
    from transformers import VideoMAEForVideoClassification

    config = HubConfig(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=128, num_labels=5, layer_norm_eps=1e-6)
    model = VideoMAEForVideoClassification(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=gen) * 0.1)
    return model.eval()


def official_state(hub: VideoMAEForVideoClassification) -> dict[str, torch.Tensor]:
    """The MCG-NJU layout of ``hub``'s weights: fused qkv with q_bias / v_bias, fc_norm, head."""
    state, out = hub.state_dict(), {}
    for key, value in state.items():
        if key.startswith("videomae.encoder.layer."):
            i, rest = key.split(".")[3], ".".join(key.split(".")[4:])
            names = {"attention.output.dense": "attn.proj", "layernorm_before": "norm1", "layernorm_after": "norm2",
                     "intermediate.dense": "mlp.fc1", "output.dense": "mlp.fc2"}
            module, param = rest.rsplit(".", 1)
            if module in names:
                out[f"blocks.{i}.{names[module]}.{param}"] = value
        elif key.startswith("videomae.embeddings.patch_embeddings.projection."):
            out["patch_embed.proj." + key.rsplit(".", 1)[1]] = value
        else:
            out[key.replace("classifier.", "head.")] = value
    for i in range(hub.config.num_hidden_layers):
        attention = f"videomae.encoder.layer.{i}.attention.attention."
        out[f"blocks.{i}.attn.qkv.weight"] = torch.cat([state[attention + f"{part}.weight"]
                                                        for part in ("query", "key", "value")])
        out[f"blocks.{i}.attn.q_bias"] = state[attention + "query.bias"]
        out[f"blocks.{i}.attn.v_bias"] = state[attention + "value.bias"]
    return out


# ---- cost --------------------------------------------------------------------------------------------

def test_parameter_count_is_the_papers_vit_b():
    assert count_parameters(meta_model(num_frames=16, num_classes=400)) == PARAMS_B_400


@pytest.mark.slow  # a full-size forward through fvcore
def test_flops_are_about_180_g_a_view():
    model = meta_model(num_frames=16, num_classes=400).to_empty(device="cpu")
    flops = measure_flops(model, torch.zeros(1, 3, 16, 224, 224)).total(with_layernorm=False)
    assert flops / 1e9 == pytest.approx(180.3, abs=0.1)   # the paper: 180 GFLOPs a view


# ---- the official and transformers layouts --------------------------------------------------------------

@pytest.mark.parametrize("name", ["videomae_vit_b_k400_official", "hf_videomae_b_k400"])
def test_released_layouts_map_every_key_and_shape(name: str):
    model = meta_model(num_frames=16, num_classes=400)
    filtered = checkpoint_filter_fn(meta_state(name), model)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in filtered.items()} == shapes
    assert can_load(meta_state(name))


@pytest.mark.parametrize("container", ["model", "module"])
def test_an_official_file_reproduces_the_transformers_logits(tmp_path: Path, container: str):
    """The official layout (fused qkv, q_bias / v_bias) loads to the same weights as transformers' own."""
    hub = hub_tiny()
    path = tmp_path / "checkpoint-best.pth"
    torch.save({container: {f"module.{k}": v for k, v in official_state(hub).items()}, "epoch": 3}, path)
    model = build_variant("videomae_b", num_frames=4, num_classes=5, norm_eps=1e-6, **TINY).eval()
    report = load_pretrained(model, path, log=lambda _: None)
    assert report.layout == f"videomae_official{'_module' if container == 'module' else ''}"
    assert len(report.loaded) == len(model.state_dict()) and not report.unused
    clip = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        expected = hub(pixel_values=clip.transpose(1, 2)).logits
        torch.testing.assert_close(model(clip), expected, atol=1e-5, rtol=1e-4)


def test_the_position_table_is_the_official_sinusoid():
    from transformers.models.videomae.modeling_videomae import get_sinusoid_encoding_table

    # Every position of the 16x224 grid at a narrow width, every width at a few positions (the official
    # function loops in Python: the whole 1568 x 768 table costs 2.6 s).
    for positions, width in ((1568, 64), (16, 768)):
        torch.testing.assert_close(sinusoid_table(positions, width), get_sinusoid_encoding_table(positions, width))
    model = build_variant("videomae_b", num_frames=4, num_classes=5, **TINY)
    assert "pos_table" not in model.state_dict()     # fixed: not a weight, in no checkpoint
    assert model.pos_table.shape == (1, 2 * 4 * 4, 32)


def test_frames_of_another_size_take_the_table_resized_to_their_grid():
    model = build_variant("videomae_b", num_frames=4, num_classes=5, **TINY).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 4, 48, 40)).shape == (1, 5)
        assert model.forward_features(torch.randn(1, 3, 4, 48, 40)).shape == (1, 2 * 6 * 5, 32)
    with pytest.raises(ValueError, match="num_frames=6"):
        model(torch.randn(1, 3, 6, 32, 32))
    with pytest.raises(ValueError, match="multiple of tubelet_size 2"):
        build_variant("videomae_b", num_frames=3, **TINY)


# ---- ImageNet ViT files -------------------------------------------------------------------------------------

@pytest.mark.parametrize("image_manifest", ["vit_base_patch16_224", "deit_base_patch16_224"])
def test_imagenet_vit_files_inflate_into_videomae_b(image_manifest: str):
    model = meta_model(num_frames=16, num_classes=400)
    report = LoadReport(source=image_manifest, layout="timm", family="videomae")
    state = checkpoint_filter_fn(meta_state(image_manifest), model)
    tensors = match_state_dict(model, FAMILY, state, report)
    assert report.inflated == ["patch_embed.proj.weight (768, 3, 16, 16)->(768, 3, 2, 16, 16)"]
    assert set(report.new) == {"head.weight", "head.bias"} and not report.missing and not report.mismatched
    assert set(report.unused) == {"cls_token", "pos_embed"} | ({"dist_token"} if "dist_token" in state else set())
    assert tensors["patch_embed.proj.weight"].shape == (768, 3, 2, 16, 16)
    assert "fc_norm.weight" in tensors and "blocks.11.attn.q_bias" in tensors


def test_kernel_inflation_keeps_the_image_embedding_on_a_static_clip():
    image_kernel = torch.randn(32, 3, 8, 8)
    target = torch.empty(32, 3, 2, 8, 8)
    inflated = FAMILY.inflate_weight("patch_embed.proj.weight", target, {"patch_embed.proj.weight": image_kernel})
    assert inflated is not None and inflated.shape == target.shape
    frame = torch.randn(1, 3, 32, 32)
    static = frame[:, :, None].expand(-1, -1, 2, -1, -1)
    torch.testing.assert_close(torch.nn.functional.conv3d(static, inflated, stride=(2, 8, 8))[:, :, 0],
                               torch.nn.functional.conv2d(frame, image_kernel, stride=8))


@pytest.mark.parametrize("name, loadable", [
    ("vit_base_patch16_224", True), ("videomae_vit_b_k400_official", True),
    ("timesformer_divst_8x224_k400", False), ("hf_timesformer_k400", False), ("regionvit_tiny", False),
    ("volo_d1_224", False)])
def test_can_load_videomae_and_image_vit_files_only(name: str, loadable: bool):
    assert can_load(meta_state(name)) is loadable
    if name.startswith(("videomae", "hf_videomae")):
        assert not get_family("timesformer").can_load(meta_state(name))


# ---- configs -------------------------------------------------------------------------------------------------

def test_the_inflation_switches_do_not_apply_to_a_video_native_family():
    with pytest.raises(ConfigError, match="MODEL.TEMPORAL = False does not apply to videomae_b, a videomae model"):
        check_run_config(load_config(overrides=["MODEL.NAME", "videomae_b", "MODEL.TEMPORAL", "False"]))
    with pytest.raises(TypeError, match="unknown option.*temporal"):
        build_variant("videomae_b", temporal=False)


@pytest.mark.parametrize("dataset, classes, sampling, views", [("K400", 400, "dense", 5), ("SSV2", 174, "uniform", 2)])
def test_configs_build_videomae_b_with_the_papers_protocol(dataset, classes, sampling, views):
    cfg = load_config([REPO_ROOT / "configs" / dataset / "videomae_b.yaml"])
    with torch.device("meta"):
        model = build_model(cfg)
    assert model.family == "videomae" and model.num_classes == classes and model.num_frames == 16
    assert (cfg.DATA.SAMPLING, cfg.TEST.NUM_TEMPORAL_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS) == (sampling, views, 3)
    assert cfg.DATA.SAMPLING_RATE == 4 or sampling == "uniform"
    assert cfg.DATA.RANDOM_FLIP is (dataset == "K400")
    assert count_parameters(model) == PARAMS_B_400 - (400 - classes) * (768 + 1)
