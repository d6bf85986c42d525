"""RegionViT image and video backbone: sizes, official weights, video equivalence, padding quirks."""
from __future__ import annotations

import json

import pytest
import torch

from videovit.bench.flops import count_flops, count_parameters
from videovit.models import build_variant
from videovit.models.r2l import WindowGrid, additive_padding_mask, official_rel_pos_index
from videovit.models.regionvit import R2LBlock, RegionalTokenizer, checkpoint_filter_fn

# A small configuration (the official reference's widths) keeps forward passes cheap.
TINY = dict(embed_dims=(32, 64, 128, 256), depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8))

IMAGE_PARAMS = {  # docs/models.md (RegionViT variants): 224 input, 1000 classes
    "regionvit_ti": 13_842_676, "regionvit_s": 30_586_618, "regionvit_m": 41_215_906,
    "regionvit_b": 72_747_232, "regionvit_s_plus": 31_354_714, "regionvit_b_plus": 73_825_120,
}
MANIFEST_MODELS = {  # official manifest name -> (our model, overrides)
    "tiny": ("regionvit_ti", {}), "small": ("regionvit_s", {}), "medium": ("regionvit_m", {}),
    "base": ("regionvit_b", {}), "small_w14": ("regionvit_s_plus", {}),
    "small_w14_peg": ("regionvit_s_plus", {"peg": True}), "base_w14": ("regionvit_b_plus", {}),
    "base_w14_peg": ("regionvit_b_plus", {"peg": True}),
}


def tiny_model(num_frames: int, **overrides) -> torch.nn.Module:
    """A RegionViT-S with the reference's small widths, one block per stage, 10 classes."""
    return build_variant("regionvit_s", num_frames=num_frames, num_classes=10, **{**TINY, **overrides})


def randomise_temporal(model: torch.nn.Module) -> None:
    """Give the zero-initialised temporal fc and time embedding non-zero values."""
    with torch.no_grad():
        model.time_embed.weight.normal_(std=0.5)
        for block in model.r2l_blocks():
            block.temporal.fc.weight.normal_(std=0.1)


@pytest.mark.parametrize("name", sorted(IMAGE_PARAMS))
def test_image_parameter_counts_match_the_paper(name):
    with torch.device("meta"):  # shapes only: skips the slow random init of big models
        model = build_variant(name, num_frames=1, num_classes=1000)
    assert count_parameters(model) == IMAGE_PARAMS[name]
    assert not any("temporal" in key or "time_embed" in key for key in model.state_dict())


@pytest.mark.slow  # full-size models
@pytest.mark.parametrize("name, gflops", [("regionvit_ti", 2.43), ("regionvit_s", 5.36)])
def test_image_flops_match_the_paper(name, gflops):
    model = build_variant(name, num_frames=1, num_classes=1000)
    measured = count_flops(model, torch.randn(1, 3, 224, 224)) / 1e9
    assert measured == pytest.approx(gflops, rel=0.01)


@pytest.mark.slow  # full-size video models
@pytest.mark.parametrize("name, params, gflops", [("regionvit_s", 42.4e6, 59.4),
                                                  ("regionvit_m", 57.5e6, 83.1)])
def test_video_model_cost_matches_the_paper(name, params, gflops):
    model = build_variant(name, num_frames=8, num_classes=400)
    assert count_parameters(model) == pytest.approx(params, rel=0.01)
    measured = count_flops(model, torch.randn(1, 3, 8, 224, 224), with_layernorm=False) / 1e9
    assert measured == pytest.approx(gflops, rel=0.01)


def test_official_reference_weights_reproduce_official_logits(test_data):
    reference = test_data / "reference"
    arch = json.loads((reference / "regionvit_mini_w7.json").read_text())
    assert arch["embed_dim"][0] == arch["embed_dim"][1]  # our stem width is the stage-0 width
    model = build_variant(
        "regionvit_s", num_frames=1, num_classes=arch["num_classes"], stem=arch["patch_conv_type"],
        embed_dims=arch["embed_dim"][1:], depths=arch["depth"], num_heads=arch["num_heads"],
        window_size=arch["kernel_sizes"][0], peg=arch["peg"]).eval()
    state = torch.load(reference / "regionvit_mini_w7.pth", weights_only=True)["model"]
    model.load_state_dict(checkpoint_filter_fn(state, model), strict=True)
    io = torch.load(reference / "regionvit_mini_w7_io.pt", weights_only=True)["x224"]
    with torch.no_grad():
        logits = model(io["input"])
    torch.testing.assert_close(logits, io["logits"], atol=1e-4, rtol=0)


@pytest.mark.slow  # full-size models
@pytest.mark.parametrize("manifest", sorted(MANIFEST_MODELS))
def test_official_checkpoint_layout_loads_strictly(test_data, manifest):
    manifest_file = test_data / "checkpoints" / f"regionvit_{manifest}.json"
    shapes = json.loads(manifest_file.read_text())
    state = {key: torch.randn(shape) for key, shape in shapes.items()}
    for key in state:  # the official file stores the shared downsampling twice, identical
        if ".proj_cls." in key:
            state[key] = state[key.replace(".proj_cls.", ".proj.")]
    name, overrides = MANIFEST_MODELS[manifest]
    with torch.device("meta"):  # the checkpoint's tensors replace the (skipped) random init
        model = build_variant(name, num_frames=1, num_classes=1000, **overrides)
    model.load_state_dict(checkpoint_filter_fn(state, model), strict=True, assign=True)
    loaded = model.state_dict()
    torch.testing.assert_close(loaded["regional_embed.proj.weight"], state["cls_token.proj.weight"])
    torch.testing.assert_close(loaded["layers.2.downsample.proj.0.weight"],
                               state["layers.2.block.0.proj.0.weight"].flatten())
    torch.testing.assert_close(loaded["layers.2.blocks.0.attn.rel_pos"],
                               state["layers.2.block.1.attn.rel_pos"])


def test_differing_duplicate_downsampling_is_rejected(test_data):
    shapes = json.loads((test_data / "checkpoints" / "regionvit_tiny.json").read_text())
    state = {key: torch.randn(shape) for key, shape in shapes.items()}
    model = build_variant("regionvit_ti", num_frames=1, num_classes=1000)
    with pytest.raises(ValueError, match="proj_cls"):
        checkpoint_filter_fn(state, model)


@pytest.mark.parametrize("size", [(112, 112), (96, 136)])
def test_inflated_video_model_equals_mean_of_image_logits(size):
    image_model = tiny_model(num_frames=1).eval()
    video_model = tiny_model(num_frames=4).eval()
    missing, unexpected = video_model.load_state_dict(image_model.state_dict(), strict=False)
    assert not unexpected
    assert missing and all(".temporal." in key or key == "time_embed.weight" for key in missing)
    clip = torch.randn(2, 3, 4, *size)
    with torch.no_grad():
        video_logits = video_model(clip)
        image_logits = torch.stack([image_model(clip[:, :, t]) for t in range(4)]).mean(dim=0)
    torch.testing.assert_close(video_logits, image_logits, atol=1e-5, rtol=1e-4)


def test_frame_order_matters_only_through_the_time_embedding():
    model = tiny_model(num_frames=4).eval()
    clip = torch.randn(1, 3, 4, 112, 112)
    reversed_clip = clip.flip(2)
    with torch.no_grad():
        for block in model.r2l_blocks():
            block.temporal.fc.weight.normal_(std=0.1)
        # temporal attention alone is permutation-equivariant and the head averages over time
        torch.testing.assert_close(model(clip), model(reversed_clip), atol=1e-5, rtol=1e-4)
        model.time_embed.weight.normal_(std=0.5)
        assert (model(clip) - model(reversed_clip)).abs().max() > 1e-3


@pytest.mark.parametrize("frames, size", [(1, (224, 224)), (4, (160, 256)), (8, (224, 224)),
                                          pytest.param(16, (160, 256), marks=pytest.mark.slow)])
def test_output_shape_and_temporal_gradients(frames, size):
    model = tiny_model(num_frames=frames).train()
    if frames > 1:
        randomise_temporal(model)
    logits = model(torch.randn(1, 3, frames, *size))
    assert logits.shape == (1, 10)
    logits.square().sum().backward()
    temporal = {name: param for name, param in model.named_parameters()
                if ".temporal." in name or name.startswith("time_embed.")}
    assert bool(temporal) == (frames > 1)
    for name, param in temporal.items():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("overrides", [
    dict(window_size=14, stem="1conv"),
    dict(window_size=14, peg=True, exact_padding_mask=True),
    dict(drop_path_rate=0.3, drop_rate=0.2),
])
def test_variant_switches_run_on_non_square_clips(overrides):
    model = tiny_model(num_frames=2, **overrides).train()
    logits = model(torch.randn(1, 3, 2, 160, 256))
    assert logits.shape == (1, 10) and torch.isfinite(logits).all()


def test_image_model_accepts_images_and_frame_averages_any_length():
    model = tiny_model(num_frames=1).eval()
    images = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        torch.testing.assert_close(model(images), model(images[:, :, None]))
    frame_averaged = tiny_model(num_frames=8, temporal=False)
    assert count_parameters(frame_averaged) == count_parameters(model)
    assert frame_averaged(torch.randn(1, 3, 3, 112, 112)).shape == (1, 10)


def test_video_model_rejects_a_clip_of_the_wrong_length():
    with pytest.raises(ValueError, match="num_frames=4"):
        tiny_model(num_frames=8)(torch.randn(1, 3, 4, 112, 112))


def test_activation_checkpointing_gives_the_same_gradients():
    clip = torch.randn(1, 3, 2, 112, 112)
    grads = []
    for act_checkpoint in (False, True):
        torch.manual_seed(0)
        model = tiny_model(num_frames=2, act_checkpoint=act_checkpoint)
        randomise_temporal(model)
        model(clip).sum().backward()
        grads.append(model.layers[2].blocks[0].temporal.attn.qkv.weight.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_unknown_override_names_the_valid_fields():
    with pytest.raises(TypeError, match="window_size"):
        build_variant("regionvit_s", num_frames=1, window=7)


def test_model_interface():
    model = tiny_model(num_frames=4)
    assert (model.family, model.num_frames, model.num_classes) == ("regionvit", 4, 10)
    no_decay = model.no_weight_decay()
    assert "time_embed.weight" in no_decay and "layers.0.blocks.0.attn.rel_pos" in no_decay
    assert no_decay <= dict(model.named_parameters()).keys()
    model.reset_classifier(3)
    assert model(torch.randn(1, 3, 4, 112, 112)).shape == (1, 3) and model.num_classes == 3


def test_rel_pos_index_is_the_official_cyclic_shift():
    index = official_rel_pos_index(7)      # D = 13, offset 3
    assert index[0, 0] == 3 * 13 + 3       # same position: the table centre
    assert index[0, 1] == 3 * 13 + 4       # key one column right
    assert index[6 * 7 + 6, 0] == 10 * 13 + 10  # offset -6 + 3 = -3 wraps to 10 in both axes


def test_regional_tokenizer_adds_a_full_patch_on_a_divisible_side():
    tokens = RegionalTokenizer(dim=8, patch=28)(torch.randn(1, 3, 224, 250))
    assert tokens.shape[-2:] == (9, 9)   # 224 divides by 28 but still gains a patch row
    assert RegionalTokenizer(dim=8, patch=28)(torch.randn(1, 3, 224, 224)).shape[-2:] == (8, 8)


def padded_positions(grid: WindowGrid) -> torch.Tensor:
    """Bool ``(windows, 1 + M*M)``: which window tokens are zero padding."""
    regional = torch.ones(1, 1, grid.rows, grid.cols)
    local = torch.ones(1, 1, grid.height, grid.width)
    return grid.to_windows(regional, local)[..., 0] == 0


@pytest.mark.parametrize("exact", [True, False])
def test_padding_mask_exact_versus_official(exact):
    grid = WindowGrid(rows=2, cols=2, window=4, height=6, width=7)   # bottom 2 rows, right 1 col padded
    block = R2LBlock(dim=8, num_heads=2, window=4, drop_path=0.0, num_frames=None).eval()
    tokens = torch.randn(grid.num_windows, 17, 8)
    padded = padded_positions(grid)
    assert padded.sum() == 8 * 8 - 6 * 7
    mask = additive_padding_mask(grid.attention_allowed(exact), frames=1, dtype=torch.float32)
    changed = tokens.clone()
    changed[padded] = torch.randn(int(padded.sum()), 8)
    with torch.no_grad():
        diff = (block(tokens, 4, mask, 1) - block(changed, 4, mask, 1)).abs()
    real_diff = diff.masked_fill(padded[..., None], 0).amax(dim=(1, 2))  # per window
    if exact:
        assert real_diff.max() < 1e-6
    else:  # windows: top-left, top-right (right pad), bottom-left (bottom pad), bottom-right
        assert real_diff[:3].max() < 1e-6 and real_diff[3] > 1e-3


def test_official_mask_hides_only_the_padded_corner_quadrant():
    grid = WindowGrid(rows=1, cols=1, window=14, height=7, width=7)  # stage 4 of a '+' model at 224
    position = torch.arange(14)
    padded_row = torch.cat([torch.zeros(1, dtype=torch.bool), (position >= 7).repeat_interleave(14)])
    padded_col = torch.cat([torch.zeros(1, dtype=torch.bool), (position >= 7).repeat(14)])
    real = ~padded_row & ~padded_col
    official = grid.attention_allowed(exact=False)[0]
    assert torch.equal(official[real], (~(padded_row & padded_col)).expand(int(real.sum()), -1))
    exact = grid.attention_allowed(exact=True)[0]
    assert torch.equal(exact[real], real.expand(int(real.sum()), -1))


@pytest.mark.parametrize("window, padded", [(7, False), (14, True)])
def test_exact_padding_mask_changes_outputs_only_with_padding(window, padded):
    clip = torch.randn(1, 3, 1, 224, 224)
    outputs = []
    for exact in (False, True):
        torch.manual_seed(0)
        model = tiny_model(num_frames=1, window_size=window, depths=(1, 1, 1, 2),
                           exact_padding_mask=exact).eval()
        with torch.no_grad():
            outputs.append(model(clip))
    assert ((outputs[0] - outputs[1]).abs().max() > 1e-4) == padded
