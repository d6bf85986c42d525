"""VOLO D1-D5 video backbone: timm parity, the inflation equivalence, counts, shapes, checkpoints."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch
from torch import nn

from videovit.checkpoint import load_pretrained
from videovit.config.defaults import get_defaults
from videovit.models import build_model, build_variant, volo
from videovit.models.temporal import TemporalBlock

TINY = dict(embed_dims=(32, 64, 64, 64), depths=(1, 1, 1, 1), num_heads=(2, 4, 4, 4), mlp_ratio=2.0)
IMAGE_PARAMS = {  # docs/models.md (VOLO variants): 224 input, 1000 classes
    "volo_d1": 26_632_040,
    "volo_d2": 58_678_336,
    "volo_d3": 86_325_072,
    "volo_d4": 192_961_520,
    "volo_d5": 295_455_584,
}


def randomise_(module: nn.Module, seed: int) -> None:
    """Perturb every float parameter and buffer deterministically so no weight is trivial."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator)
            if name.endswith("running_var"):
                tensor.copy_(0.5 + noise.abs())
            else:
                tensor.add_(0.05 * noise)


def zero_temporal_residuals_(model: volo.VideoVOLO) -> None:
    """Put temporal ``fc`` layers and time embeddings back to their zero initialisation."""
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if ".temporal.fc." in name or name.startswith("time_embed"):
                tensor.zero_()


def image_logits_per_frame(image_model: nn.Module, clip: torch.Tensor) -> torch.Tensor:
    """``(B, T, classes)``: the image model applied to each frame of ``clip`` (B, 3, T, H, W)."""
    return torch.stack([image_model(clip[:, :, t]) for t in range(clip.shape[2])], dim=1)


def image_weights(model: volo.VideoVOLO) -> dict[str, torch.Tensor]:
    """The 2-D part of a video model's state dict (temporal layers and time embeddings dropped)."""
    return {k: v for k, v in model.state_dict().items()
            if ".temporal." not in k and not k.startswith("time_embed")}


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def manifest(test_data: Path, name: str) -> dict[str, list[int]]:
    return json.loads((test_data / "checkpoints" / f"{name}_224.json").read_text())


def random_state_dict(shapes: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    """A state dict shaped like an official file (BatchNorm counters as integers)."""
    return {k: torch.tensor(0) if k.endswith("num_batches_tracked") else torch.randn(shape)
            for k, shape in shapes.items()}


@pytest.mark.slow  # full-size models
def test_image_model_matches_timm_volo_d1() -> None:
    reference = timm.create_model("volo_d1_224", pretrained=False)
    randomise_(reference, seed=1)
    reference.eval()
    model = build_variant("volo_d1", num_frames=1, num_classes=1000).eval()
    model.load_state_dict(volo.FAMILY.filter_state_dict(reference.state_dict(), model), strict=True)
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = reference(images)
        torch.testing.assert_close(model(images), expected, atol=1e-4, rtol=0)
        torch.testing.assert_close(model(images[:, :, None]), expected, atol=1e-4, rtol=0)
    assert expected.std() > 0.1  # the randomised weights give non-degenerate logits


@pytest.mark.parametrize("temporal", [True, False])
def test_video_logits_are_mean_of_frame_logits_when_temporal_residuals_are_zero(temporal: bool) -> None:
    video = build_variant("volo_d1", num_frames=3, num_classes=10, img_size=64, temporal=temporal, **TINY).eval()
    randomise_(video, seed=2)
    zero_temporal_residuals_(video)
    image = build_variant("volo_d1", num_frames=1, num_classes=10, img_size=64, **TINY).eval()
    image.load_state_dict(image_weights(video), strict=True)
    clip = torch.randn(2, 3, 3, 64, 64)
    with torch.no_grad():
        expected = image_logits_per_frame(image, clip).mean(dim=1)
        torch.testing.assert_close(video(clip), expected, atol=1e-5, rtol=1e-5)


def test_nonzero_temporal_residuals_break_the_equivalence() -> None:
    video = build_variant("volo_d1", num_frames=3, num_classes=10, img_size=64, **TINY).eval()
    randomise_(video, seed=3)
    image = build_variant("volo_d1", num_frames=1, num_classes=10, img_size=64, **TINY).eval()
    image.load_state_dict(image_weights(video), strict=True)
    clip = torch.randn(2, 3, 3, 64, 64)
    with torch.no_grad():
        difference = video(clip) - image_logits_per_frame(image, clip).mean(dim=1)
    assert difference.abs().max() > 1e-3


def test_frame_order_is_seen_only_with_temporal_layers() -> None:
    clip = torch.randn(1, 3, 4, 64, 64)
    reversed_clip = clip.flip(2)
    for temporal, order_matters in ((True, True), (False, False)):
        model = build_variant("volo_d1", num_frames=4, num_classes=10, img_size=64, temporal=temporal, **TINY).eval()
        randomise_(model, seed=4)
        with torch.no_grad():
            changed = not torch.allclose(model(clip), model(reversed_clip), atol=1e-5)
        assert changed == order_matters


@pytest.mark.slow  # full-size models
@pytest.mark.parametrize("name", sorted(IMAGE_PARAMS))
def test_image_parameter_counts_match_the_spec(name: str) -> None:
    with torch.device("meta"):
        model = build_variant(name, num_frames=1, num_classes=1000)
    assert param_count(model) == IMAGE_PARAMS[name]


@pytest.mark.slow  # full-size models
def test_video_d1_parameter_count_and_temporal_switch() -> None:
    with torch.device("meta"):
        video = build_variant("volo_d1", num_frames=8, num_classes=400)
        no_temporal = build_variant("volo_d1", num_frames=8, num_classes=400, temporal=False)
        image = build_variant("volo_d1", num_frames=1, num_classes=400)
    assert param_count(video) == pytest.approx(37.3e6, rel=0.01)
    assert param_count(no_temporal) == param_count(image)
    assert not any(isinstance(m, TemporalBlock) for m in no_temporal.modules())
    blocks = [m for m in video.modules() if isinstance(m, (volo.VideoOutlooker, volo.VideoTransformer))]
    assert len(blocks) == 4 + 14 and all(isinstance(b.temporal, TemporalBlock) for b in blocks)


@pytest.mark.parametrize("frames, size", [(1, (224, 224)), (2, (224, 224)), (4, (160, 160)),
                                          (2, (96, 128))])
def test_output_shape_for_frames_and_input_sizes(frames: int, size: tuple[int, int]) -> None:
    model = build_variant("volo_d1", num_frames=frames, num_classes=7, **TINY).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, frames, *size))
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()


def test_pos_embed_resized_on_the_fly_equals_a_model_built_for_that_size(tmp_path: Path) -> None:
    built_224 = build_variant("volo_d1", num_frames=2, num_classes=5, **TINY).eval()
    randomise_(built_224, seed=5)
    torch.save(built_224.state_dict(), tmp_path / "d1.pth")
    built_160 = build_variant("volo_d1", num_frames=2, num_classes=5, img_size=160, **TINY).eval()
    load_pretrained(built_160, tmp_path / "d1.pth", log=lambda _: None)
    assert built_160.pos_embed.shape == (1, 10, 10, 64)
    clip = torch.randn(1, 3, 2, 160, 160)
    with torch.no_grad():
        torch.testing.assert_close(built_224(clip), built_160(clip))


def test_gradients_reach_every_temporal_parameter() -> None:
    model = build_variant("volo_d1", num_frames=2, num_classes=5, img_size=64, **TINY).train()
    clip = torch.randn(2, 3, 2, 64, 64)
    model(clip).logsumexp(dim=1).sum().backward()
    fc_grads = [p.grad for n, p in model.named_parameters() if ".temporal.fc.weight" in n]
    assert all(g is not None and g.abs().sum() > 0 for g in fc_grads)  # zero init still learns

    with torch.no_grad():  # away from zero init the gradient reaches norm and attn too
        for name, param in model.named_parameters():
            if ".temporal.fc." in name:
                param.normal_(std=0.05)
    model.zero_grad()
    model(clip).logsumexp(dim=1).sum().backward()
    temporal = {n: p for n, p in model.named_parameters() if ".temporal." in n or n.startswith("time_embed")}
    suffixes = {n.split(".temporal.")[-1] for n in temporal if ".temporal." in n}
    assert suffixes == {"norm.weight", "norm.bias", "attn.qkv.weight", "attn.proj.weight",
                        "attn.proj.bias", "fc.weight", "fc.bias"}  # no qkv bias, as the host
    assert {"time_embed0.weight", "time_embed.weight"} <= set(temporal)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in temporal.values())


def test_activation_checkpointing_gives_the_same_loss_and_gradients() -> None:
    plain = build_variant("volo_d1", num_frames=2, num_classes=5, img_size=64, **TINY).train()
    randomise_(plain, seed=7)
    recomputed = build_variant("volo_d1", num_frames=2, num_classes=5, img_size=64, act_checkpoint=True, **TINY).train()
    recomputed.load_state_dict(plain.state_dict())
    clip = torch.randn(2, 3, 2, 64, 64)
    losses = []
    for model in (plain, recomputed):
        loss = model(clip).logsumexp(dim=1).sum()
        loss.backward()
        losses.append(loss.detach())
    torch.testing.assert_close(losses[0], losses[1])
    for (name, a), b in zip(plain.named_parameters(), recomputed.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_drop_path_rates_follow_timm_and_drop_whole_clips() -> None:
    model = build_variant("volo_d1", num_frames=4, num_classes=5, drop_path_rate=0.3, **TINY)
    outlooker, transformers = model.network[0][0], [stage[0] for stage in model.network[2:]]
    assert outlooker.temporal.drop_path_rate == 0.0 and outlooker.drop_path_rate == 0.0
    rates = [block.temporal.drop_path_rate for block in transformers]
    assert rates == pytest.approx([0.1, 0.2, 0.3])
    assert [block.drop_path_rate for block in transformers] == rates

    block = transformers[0].train()  # its residuals: one draw per clip of 4 folded frames
    with torch.no_grad():
        block.drop_path_rate = 0.5
        block.temporal = None
        tokens = torch.randn(16 * 4, 2, 2, 64)
        torch.manual_seed(0)
        changed = (block(tokens) - tokens).abs().flatten(1).amax(dim=1).reshape(16, 4) > 0
    assert (changed.all(dim=1) | ~changed.any(dim=1)).all()  # every frame of a clip shares the draw
    assert changed.all(dim=1).any() and (~changed.any(dim=1)).any()


def test_classifier_reset_and_no_weight_decay() -> None:
    model = build_variant("volo_d1", num_frames=2, num_classes=5, img_size=64, **TINY).eval()
    model.reset_classifier(7)
    assert model.head.out_features == model.aux_head.out_features == model.num_classes == 7
    with torch.no_grad():
        assert model(torch.randn(1, 3, 2, 64, 64)).shape == (1, 7)
    names = dict(model.named_parameters())
    assert model.no_weight_decay() == {"pos_embed", "cls_token", "time_embed0.weight", "time_embed.weight"}
    assert model.no_weight_decay() <= set(names)
    assert model.family == "volo" and model.num_frames == 2


def test_invalid_arguments_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown option.*window_size.*valid options"):
        build_variant("volo_d1", window_size=7)
    with pytest.raises(ValueError, match="embed_dims"):
        build_variant("volo_d1", embed_dims=(32, 64, 96, 64), **{k: v for k, v in TINY.items() if k != "embed_dims"})
    with pytest.raises(ValueError, match="4 positive depths"):
        build_variant("volo_d1", depths=(1, 1, 1))
    model = build_variant("volo_d1", num_frames=2, num_classes=5, img_size=64, **TINY)
    with pytest.raises(ValueError, match=r"\(B, 3, 2, H, W\)"):
        model(torch.randn(1, 3, 3, 64, 64))


def test_registered_and_built_from_config() -> None:
    cfg = get_defaults()
    cfg.merge_from_list(["MODEL.NAME", "volo_d1", "MODEL.NUM_CLASSES", 5, "DATA.NUM_FRAMES", 4,
                         "MODEL.EMBED_DIMS", list(TINY["embed_dims"]), "MODEL.DEPTHS", [1, 1, 2, 1],
                         "MODEL.NUM_HEADS", list(TINY["num_heads"]), "MODEL.DROP_PATH_RATE", 0.2,
                         "MODEL.TEMPORAL", False])
    model = build_model(cfg)
    assert isinstance(model, volo.VideoVOLO) and model.num_frames == 4 and model.num_classes == 5
    assert not model.temporal and len(model.network[3]) == 2
    assert model.network[4][0].drop_path_rate == pytest.approx(0.2)


@pytest.mark.slow  # full-size models
@pytest.mark.parametrize("name", ["volo_d1", "volo_d2"])
def test_random_official_state_dict_loads_strictly(test_data: Path, name: str) -> None:
    model = build_variant(name, num_frames=1, num_classes=1000)
    state = random_state_dict(manifest(test_data, name))
    model.load_state_dict(volo.FAMILY.filter_state_dict(state, model), strict=True)
    torch.testing.assert_close(model.pos_embed, state["pos_embed"])


@pytest.mark.slow  # full-size models
@pytest.mark.parametrize("name", sorted(IMAGE_PARAMS))
def test_manifest_keys_and_shapes_match_image_and_video_models(test_data: Path, name: str) -> None:
    shapes = {k: tuple(v) for k, v in manifest(test_data, name).items()}
    with torch.device("meta"):
        image = build_variant(name, num_frames=1, num_classes=1000)
        video = build_variant(name, num_frames=8, num_classes=1000)
    assert {k: tuple(v.shape) for k, v in image.state_dict().items()} == shapes
    video_shapes = {k: tuple(v.shape) for k, v in video.state_dict().items()}
    extra = set(video_shapes) - set(shapes)
    assert all(".temporal." in k or k.startswith("time_embed") for k in extra)
    assert {k: video_shapes[k] for k in shapes} == shapes
