"""TimeSformer: official parity, checkpoint files and hooks, cost, the space-only model, training switches."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from videovit.bench.flops import count_parameters, measure_flops
from videovit.checkpoint import LoadReport, load_pretrained, read_checkpoint
from videovit.checkpoint.loading import match_state_dict
from videovit.config import load_config
from videovit.models import build_model, build_variant
from videovit.models.temporal import inflate_from_host as inflate_weight
from videovit.models.timesformer import (
    CHECKPOINT_LAYOUTS,
    FAMILY,
    TimeSformer,
    can_load,
    checkpoint_filter_fn,
    resize_weight,
)

DATA = Path(__file__).resolve().parent / "data"
REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = dict(embed_dims=(32,), depths=(2,), num_heads=(2,), patch_size=8, img_size=32)
IMAGE_MANIFESTS = ("vit_base_patch16_224", "deit_base_patch16_224")
OFFICIAL_PARAMS = 121_566_352   # official TimeSformer-B, 8x224, 400 classes
# (top-level key, key prefix) of each file layout: the family's, plus flat timm / Hugging Face files
LAYOUTS = {layout.name: (layout.weights_key, layout.prefix) for layout in CHECKPOINT_LAYOUTS} | {"timm": (None, "")}


def tiny_model(num_frames: int = 4, num_classes: int = 10, **overrides) -> TimeSformer:
    """A TimeSformer with 32-wide tokens, 2 blocks, 4x4 patches of 8 px on 32x32 frames."""
    model = build_variant("timesformer_b", num_frames=num_frames, num_classes=num_classes,
                         **{**TINY, **overrides})
    assert isinstance(model, TimeSformer)
    return model


def meta_model(**kwargs) -> TimeSformer:
    """A model without memory or init cost, for key names, shapes and counts."""
    with torch.device("meta"):
        return build_variant("timesformer_b", **kwargs)


def manifest(name: str) -> dict[str, list[int]]:
    return json.loads((DATA / "checkpoints" / f"{name}.json").read_text())


def meta_state(name: str) -> dict[str, torch.Tensor]:
    """A state dict of the manifest's names and shapes, without data."""
    return {key: torch.empty(shape, device="meta") for key, shape in manifest(name).items()}


def random_state(name: str, blocks: int) -> dict[str, torch.Tensor]:
    """Random weights of the manifest's shapes for its first ``blocks`` blocks (and the rest of the
    network); LayerNorm gains near 1 so that signals pass."""
    gen = torch.Generator().manual_seed(0)
    kept = {key: shape for key, shape in manifest(name).items()
            if not key.startswith("blocks.") or int(key.split(".")[1]) < blocks}
    state = {key: torch.randn(shape, generator=gen) * 0.05 for key, shape in kept.items()}
    for key, value in state.items():
        if "norm" in key and key.endswith(".weight"):
            value.add_(1.0)
    return state


def randomise_temporal(model: TimeSformer, time_embed: bool = True) -> None:
    """Give the zero-initialised temporal_fc layers (and the time embedding) non-zero values."""
    with torch.no_grad():
        for block in model.blocks:
            block.temporal.fc.weight.normal_(std=0.1)
            block.temporal.fc.bias.normal_(std=0.1)
        if time_embed:
            model.time_embed.normal_(std=0.5)


def apply_hooks(model: TimeSformer, file_state: dict[str, torch.Tensor]) -> tuple[dict, dict[str, set[str]]]:
    """What the project's loader does with the family hooks: every model key loaded, resized, inflated or new."""
    report = LoadReport(source="test", layout="test", family="timesformer")
    tensors = match_state_dict(model, FAMILY, checkpoint_filter_fn(file_state, model), report)
    for key, value in tensors.items():
        assert value.shape == model.state_dict()[key].shape, key
    outcome = {"loaded": set(report.loaded), "resized": {entry.split()[0] for entry in report.resized},
               "inflated": set(report.inflated), "new": set(report.new)}
    assert not report.missing and not report.mismatched
    return tensors, outcome


# ---- official outputs and checkpoint layouts ----------------------------------------------------

def test_official_mini_checkpoint_reproduces_official_logits():
    arch = json.loads((DATA / "reference" / "timesformer_mini.json").read_text())
    assert arch["attention_type"] == "divided_space_time" and arch["norm_eps"] == 1e-6
    model = build_variant("timesformer_b", num_frames=arch["num_frames"], num_classes=arch["num_classes"],
                         embed_dims=[arch["dim"]], depths=[arch["depth"]], num_heads=[arch["heads"]],
                         patch_size=arch["patch"], img_size=arch["img"], mlp_ratio=arch["mlp_ratio"],
                         qkv_bias=arch["qkv_bias"]).eval()
    checkpoint = torch.load(DATA / "reference" / "timesformer_mini.pyth", weights_only=True)
    model.load_state_dict(checkpoint_filter_fn(checkpoint["model_state"], model), strict=True)
    io = torch.load(DATA / "reference" / "timesformer_mini_io.pt", weights_only=True)["clip4"]
    with torch.no_grad():
        logits = model(io["input"])
    assert (logits - io["logits"]).abs().max() <= 1e-5


def test_official_file_layout_is_described_by_checkpoint_layouts():
    checkpoint = torch.load(DATA / "reference" / "timesformer_mini.pyth", weights_only=True)
    weights_key, prefix = LAYOUTS["timesformer_official"]
    assert weights_key is not None and isinstance(checkpoint["cfg"], str)
    stripped = {key.removeprefix(prefix): value for key, value in checkpoint[weights_key].items()}
    assert all(key.startswith(prefix) for key in checkpoint[weights_key])
    assert any(".temporal_attn." in key for key in stripped)  # the official names, mapped by the family
    model = tiny_model(embed_dims=(64,), num_heads=(2,))
    assert set(checkpoint_filter_fn(stripped, model)) == set(model.state_dict())


@pytest.mark.parametrize("dataset, classes", [("k400", 400), ("ssv2", 174)])
def test_official_checkpoint_manifests_match_every_key_and_shape(dataset, classes):
    official = meta_state(f"timesformer_divst_8x224_{dataset}")
    model = meta_model(num_frames=8, num_classes=classes)
    filtered = checkpoint_filter_fn(official, model)
    assert {k: tuple(v.shape) for k, v in filtered.items()} == {
        k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_transformers_manifest_maps_every_key_and_shape_both_ways():
    """transformers' TimesformerForVideoClassification layout: all 249 keys rename 1:1 onto the model's."""
    hub = meta_state("hf_timesformer_k400")
    model = meta_model(num_frames=8, num_classes=400)
    filtered = checkpoint_filter_fn(hub, model)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in filtered.items()} == shapes
    assert can_load(hub)
    exported = FAMILY.transformers.export_state_dict(model.state_dict())
    assert {k: tuple(v.shape) for k, v in exported.items()} == {k: tuple(v.shape) for k, v in hub.items()}


@pytest.mark.parametrize("image_manifest", IMAGE_MANIFESTS)
@pytest.mark.parametrize("img_size, frames, classes", [(224, 8, 1000), (224, 8, 400), (160, 16, 174)])
def test_image_vit_files_cover_every_weight_but_the_new_temporal_ones(image_manifest, img_size, frames,
                                                                      classes):
    model = meta_model(num_frames=frames, num_classes=classes, img_size=img_size)
    _, outcome = apply_hooks(model, meta_state(image_manifest))
    new = {key for key in model.state_dict() if ".temporal.fc." in key or key == "time_embed"}
    if classes != 1000:
        new |= {"head.weight", "head.bias"}
    assert outcome["new"] == new
    assert outcome["resized"] == ({"pos_embed"} if img_size != 224 else set())
    assert outcome["inflated"] == {key for key in model.state_dict()
                                   if ".temporal.attn." in key or ".temporal.norm." in key}


def write_layout(state: dict[str, torch.Tensor], layout: str, folder: Path) -> Path:
    """``state`` saved as a file of one of ``CHECKPOINT_LAYOUTS``, the way users get it."""
    weights_key, prefix = LAYOUTS[layout]
    tensors = {prefix + key: value.contiguous() for key, value in state.items()}
    if weights_key is None:
        path = folder / "model.safetensors"
        save_file(tensors, str(path))
    else:
        path = folder / f"{layout}.pth"
        torch.save({weights_key: tensors, "epoch": 3, "cfg": "TRAIN:\n  ENABLE: True\n"}, path)
    return path


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_is_read_safely_and_inflates(tmp_path, layout):
    image = tiny_model(num_frames=1)
    path = write_layout(image.state_dict(), layout, tmp_path)
    contents = read_checkpoint(path)   # safetensors or torch.load(weights_only=True)
    weights_key, prefix = LAYOUTS[layout]
    weights = contents if weights_key is None else contents[weights_key]
    state = {key.removeprefix(prefix): value for key, value in weights.items()}
    assert can_load(weights) and can_load(state)
    video = tiny_model(num_frames=4)
    tensors, outcome = apply_hooks(video, state)
    assert outcome["new"] == {"time_embed", "blocks.0.temporal.fc.weight", "blocks.0.temporal.fc.bias",
                              "blocks.1.temporal.fc.weight", "blocks.1.temporal.fc.bias"}
    torch.testing.assert_close(tensors["blocks.1.temporal.attn.qkv.weight"], image.blocks[1].attn.qkv.weight)
    report = load_pretrained(video, path)  # the project's loader finds the same layout and does the same
    assert (report.layout, report.family) == (layout, "timesformer")
    assert set(report.new) == outcome["new"] and set(report.inflated) == outcome["inflated"]


def test_image_vit_files_load_strictly_into_the_image_model():
    model = meta_model(num_frames=1, num_classes=1000)
    vit = meta_state("vit_base_patch16_224")
    model.load_state_dict(checkpoint_filter_fn(vit, model), strict=True, assign=True)
    assert not model.temporal and model.time_embed is None


@pytest.mark.parametrize("name, owned", [
    ("timesformer_divst_8x224_k400", True), ("timesformer_divst_8x224_ssv2", True),
    ("vit_base_patch16_224", True), ("deit_base_patch16_224", True),
    ("regionvit_tiny", False), ("volo_d1_224", False)])
def test_can_load_recognises_timesformer_and_vit_files_only(name, owned):
    assert can_load(meta_state(name)) is owned


def test_can_load_the_state_dicts_it_saves():
    assert can_load(tiny_model().state_dict())
    assert can_load(tiny_model(temporal=False).state_dict())
    assert not can_load({})


# ---- the hooks one by one ---------------------------------------------------------------------

def test_position_embedding_is_resized_on_its_2d_grid_keeping_the_cls_entry():
    source = torch.zeros(1, 1 + 14 * 14, 8)
    source[0, 0] = 7.0
    source[0, 1:] = torch.arange(14.0).repeat_interleave(14)[:, None]   # value = row of the site
    target = torch.empty(1, 1 + 10 * 10, 8)
    resized = resize_weight("pos_embed", source, target)
    assert resized is not None and resized.shape == target.shape
    assert torch.equal(resized[0, 0], source[0, 0])
    grid = resized[0, 1:].reshape(10, 10, 8)
    torch.testing.assert_close(grid, grid[:, :1].expand(-1, 10, -1))    # rows stay rows
    assert (grid[1:, 0] > grid[:-1, 0]).all()                          # and keep their order
    assert resize_weight("pos_embed", source, torch.empty(1, 1 + 196, 8)) is not None
    torch.testing.assert_close(resize_weight("pos_embed", source, torch.empty(1, 197, 8)), source)


def test_time_embedding_is_resized_linearly_and_other_keys_are_not_resized():
    source = torch.arange(8.0)[None, :, None].expand(1, 8, 3)
    resized = resize_weight("time_embed", source, torch.empty(1, 16, 3))
    assert resized is not None and resized.shape == (1, 16, 3)
    assert (resized[0, 1:, 0] >= resized[0, :-1, 0]).all()
    assert resized[0, 0, 0] == 0 and resized[0, -1, 0] == 7
    patch = torch.randn(768, 3, 16, 16)
    assert resize_weight("patch_embed.proj.weight", patch, torch.empty(768, 3, 32, 32)) is None
    assert resize_weight("head.weight", torch.randn(1000, 8), torch.empty(400, 8)) is None


def test_temporal_weights_inflate_from_their_host_block():
    state = checkpoint_filter_fn(meta_state("vit_base_patch16_224"), None)
    target = torch.empty(2304, 768)
    assert inflate_weight("blocks.3.temporal.attn.qkv.weight", target, state) is state["blocks.3.attn.qkv.weight"]
    assert inflate_weight("blocks.11.temporal.attn.proj.bias", torch.empty(768),
                          state) is state["blocks.11.attn.proj.bias"]
    assert inflate_weight("blocks.0.temporal.norm.weight", torch.empty(768),
                          state) is state["blocks.0.norm1.weight"]
    assert inflate_weight("blocks.0.temporal.fc.weight", torch.empty(768, 768), state) is None
    assert inflate_weight("time_embed", torch.empty(1, 8, 768), state) is None
    assert inflate_weight("blocks.12.temporal.attn.qkv.weight", target, state) is None   # no host
    assert inflate_weight("blocks.0.temporal.attn.qkv.weight", torch.empty(192, 64), state) is None


def test_inflated_vit_b_is_blind_to_frame_order_until_the_temporal_weights_move():
    """With temporal_fc = 0 the temporal branch adds nothing; with time_embed = 0 temporal attention
    is permutation-equivariant over frames and the cls token averages them: logits ignore order."""
    # ViT-B's first 2 blocks, on 2x2 patches of 4 frames: cheap, and every kind of weight is there
    model = meta_model(num_frames=4, num_classes=10, img_size=32, depths=[2])
    tensors, outcome = apply_hooks(model, random_state("vit_base_patch16_224", blocks=2))
    assert outcome["resized"] == {"pos_embed"}
    for key in outcome["new"]:
        tensors[key] = (torch.randn(model.state_dict()[key].shape) * 0.02 if key.startswith("head.")
                        else torch.zeros(model.state_dict()[key].shape))
    model.load_state_dict(tensors, strict=True, assign=True)
    model.eval()
    clip = torch.randn(2, 3, 4, 32, 32)
    shuffled = clip[:, :, [2, 0, 3, 1]]
    with torch.no_grad():
        torch.testing.assert_close(model(clip), model(shuffled), atol=1e-5, rtol=1e-4)
        randomise_temporal(model, time_embed=False)
        torch.testing.assert_close(model(clip), model(shuffled), atol=1e-5, rtol=1e-4)
        model.time_embed.normal_(std=0.5)
        assert (model(clip) - model(shuffled)).abs().max() > 1e-3


# ---- cost --------------------------------------------------------------------------------------

def test_parameter_count_matches_the_official_model():
    assert count_parameters(meta_model(num_frames=8, num_classes=400)) == OFFICIAL_PARAMS


@pytest.mark.slow
def test_flops_match_the_official_model():
    model = meta_model(num_frames=8, num_classes=400).to_empty(device="cpu")  # values do not matter
    flops = measure_flops(model, torch.zeros(1, 3, 8, 224, 224))
    assert flops.total() / 1e9 == pytest.approx(196.05, abs=0.01)
    assert flops.total(with_layernorm=False) / 1e9 == pytest.approx(195.83, abs=0.01)


# ---- model API ---------------------------------------------------------------------------------

def test_space_only_model_is_the_mean_of_the_image_model_over_frames():
    image = tiny_model(num_frames=1).eval()
    video = tiny_model(num_frames=4, temporal=False).eval()
    video.load_state_dict(image.state_dict(), strict=True)
    clip = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        per_frame = torch.stack([image(clip[:, :, t]) for t in range(4)])
        torch.testing.assert_close(video(clip), per_frame.mean(dim=0), atol=1e-5, rtol=1e-4)
        assert video.forward_features(clip).shape == (2, 4, 1 + 16, 32)
        assert video(clip[:, :, :3]).shape == (2, 10)   # no time embedding: any frame count


def test_features_head_and_reset_classifier():
    model = tiny_model().eval()
    randomise_temporal(model)
    clip = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        features = model.forward_features(clip)
        assert features.shape == (2, 1 + 16 * 4, 32)
        torch.testing.assert_close(model.forward_head(features), model(clip))
        embedding = model.forward_head(features, pre_logits=True)
        assert embedding.shape == (2, model.num_features)
        model.reset_classifier(0)
        torch.testing.assert_close(model(clip), embedding)
        model.reset_classifier(5)
        assert model(clip).shape == (2, 5) and model.num_classes == 5


def test_clips_of_another_frame_count_are_refused_with_the_fix():
    model = tiny_model()
    with pytest.raises(ValueError, match="num_frames=2"):
        model(torch.randn(1, 3, 2, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, 3, 4, H, W\)"):
        model(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("size", [(48, 48), (40, 56)])
def test_frames_of_another_size_take_the_position_embedding_resized_as_loading_does(tmp_path, size):
    built_32 = tiny_model().eval()
    randomise_temporal(built_32)
    torch.save(built_32.state_dict(), tmp_path / "tiny.pth")
    clip = torch.randn(2, 3, 4, *size)
    with torch.no_grad():
        logits = built_32(clip)
    assert logits.shape == (2, 10)
    if size[0] == size[1]:   # a model built for that side, given the 32-pixel weights, scores the same
        built_48 = tiny_model(img_size=size[0]).eval()
        load_pretrained(built_48, tmp_path / "tiny.pth", log=lambda _: None)
        with torch.no_grad():
            torch.testing.assert_close(built_48(clip), logits)


@pytest.mark.parametrize("overrides, error, match", [
    (dict(embed_dims=[32, 64]), ValueError, "one positive value"),
    (dict(num_heads=[3]), ValueError, "not divisible by 3 heads"),
    (dict(img_size=36), ValueError, "multiple of patch_size"),
    (dict(drop_path_rate=1.0), ValueError, r"\[0, 1\)"),
    (dict(window_size=7), TypeError, "valid options are embed_dims"),
])
def test_invalid_architectures_fail_before_building(overrides, error, match):
    with pytest.raises(error, match=match):
        tiny_model(**overrides)


def test_grad_checkpointing_gives_the_same_gradients():
    model = tiny_model(drop_path_rate=0.3).train()
    randomise_temporal(model)
    clip = torch.randn(3, 3, 4, 32, 32)
    calls = []
    model.blocks[0].register_forward_pre_hook(lambda *_: calls.append(1))

    def gradients() -> dict[str, torch.Tensor]:
        model.zero_grad()
        torch.manual_seed(1)   # the same drop-path draws in both runs
        model(clip).square().sum().backward()
        return {name: param.grad.clone() for name, param in model.named_parameters()}

    plain = gradients()
    assert len(calls) == 1
    model.set_grad_checkpointing()
    checkpointed = gradients()
    assert len(calls) == 3   # forward, then recomputed in the backward pass
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, msg=name)


@pytest.mark.parametrize("branch", ["temporal", "spatial", "mlp"])
def test_drop_path_is_drawn_once_per_clip(branch):
    model = tiny_model(drop_path_rate=0.5).train()   # block 1 drops with rate 0.5
    randomise_temporal(model)
    block = model.blocks[1]
    silenced = {"temporal": [block.attn.proj, block.mlp.fc2], "spatial": [block.temporal.fc, block.mlp.fc2],
                "mlp": [block.temporal.fc, block.attn.proj]}[branch]
    with torch.no_grad():
        for layer in silenced:   # only one residual branch left
            layer.weight.zero_()
            layer.bias.zero_()
        if branch == "temporal":
            block.temporal.fc.bias.zero_()   # a dropped branch then adds exactly nothing
        tokens = torch.randn(32, 1 + 16 * 4, 32)
        changed = (block(tokens, clips=32) - tokens).abs().amax(dim=-1) > 0   # (clips, tokens)
    first = 1 if branch == "temporal" else 0   # the temporal branch leaves the cls token alone
    per_clip = changed[:, first:]
    assert (per_clip.all(dim=1) | ~per_clip.any(dim=1)).all()   # every token of a clip, or none
    assert per_clip.all(dim=1).any() and (~per_clip.any(dim=1)).any()


def test_no_weight_decay_and_layer_ids():
    model = tiny_model()
    assert model.no_weight_decay() == {"cls_token", "pos_embed", "time_embed"}
    assert tiny_model(temporal=False).no_weight_decay() == {"cls_token", "pos_embed"}
    assert model.num_layers == 2 + 2
    ids = {name: model.layer_id(name) for name, _ in model.named_parameters()}
    assert {ids[k] for k in ("cls_token", "pos_embed", "time_embed", "patch_embed.proj.weight")} == {0}
    assert ids["blocks.0.temporal.fc.weight"] == 1 and ids["blocks.1.mlp.fc2.bias"] == 2
    assert ids["norm.weight"] == ids["head.bias"] == model.num_layers - 1
    assert set(ids.values()) == set(range(model.num_layers))


def test_time_embedding_init_std():
    assert not tiny_model().time_embed.any()
    spread = tiny_model(time_embed_init_std=0.02).time_embed
    assert 0 < spread.abs().max() <= 0.04
    assert all(not block.temporal.fc.weight.any() for block in tiny_model().blocks)


@pytest.mark.parametrize("dataset, classes", [("K400", 400), ("SSV2", 174)])
def test_configs_build_timesformer_b(dataset, classes):
    cfg = load_config([REPO_ROOT / "configs" / dataset / "timesformer_b.yaml"])
    with torch.device("meta"):
        model = build_model(cfg)
    assert model.family == "timesformer" and model.num_classes == classes and model.num_frames == 8
    assert model.blocks[-1].drop_path == pytest.approx(cfg.MODEL.DROP_PATH_RATE)
    assert count_parameters(model) == OFFICIAL_PARAMS - (400 - classes) * (768 + 1)
