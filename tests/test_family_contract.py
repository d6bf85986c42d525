"""The model-family contract: a family defined here, in a test module, goes through the whole project
(config, registry, inflation, training, resume) without touching a package file; and every registered
family offers the same API, tested on the tiny variants it declares (docs/adding-a-backbone.md)."""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from tiny_runs import LATEST, load_checkpoint, make_tiny_dataset, tiny_overrides
from torch import nn

import videovit
from videovit.checkpoint import load_pretrained
from videovit.config import load_config
from videovit.engine import run
from videovit.engine.preflight import check_run_config
from videovit.errors import CheckpointError, ConfigError
from videovit.models import (
    CheckpointLayout,
    ConfigKey,
    ModelFamily,
    VideoBackbone,
    build_model,
    build_variant,
    families,
    register_family,
)
from videovit.models.family import new_classifier
from videovit.models.recompute import run_block
from videovit.models.registry import tiny_variants, unregister_family
from videovit.models.temporal import (
    INFLATION_CONFIG_KEYS,
    InflatedArchConfig,
    TemporalBlock,
    TimeEmbedding,
    fold_frames,
    inflate_from_host,
)

# ---------------------------------------------------------------------------- a family of its own, in one file

@dataclass(frozen=True)
class TinyConvConfig(InflatedArchConfig):
    """A few conv blocks, each preceded by the shared temporal block."""

    width: int = 8
    depth: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.width < 2 or self.width % 2 or self.depth < 1:
            raise ValueError(f"width must be an even number >= 2 and depth >= 1, got {self.width}, {self.depth}")


class TinyConvBlock(nn.Module):
    """Temporal sub-block, then LayerNorm + depthwise 3x3 conv over the frame map, residual."""

    def __init__(self, width: int, num_frames: int, temporal: bool) -> None:
        super().__init__()
        self.temporal = TemporalBlock(width, 2, num_frames) if temporal else None
        self.norm1 = nn.LayerNorm(width)
        self.conv = nn.Conv2d(width, width, 3, padding=1, groups=width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B*T, H, W, C)
        if self.temporal is not None:
            x = self.temporal(x)
        return x + self.conv(self.norm1(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class TinyConvNet(VideoBackbone):
    """``forward_features``: ``(B, T, C)`` normed, spatially pooled frame features."""

    family = "tinyconv"
    features_layout = "(B, T, C)"

    def __init__(self, config: TinyConvConfig, num_frames: int, num_classes: int) -> None:
        super().__init__()
        self.config, self.num_frames, self.num_classes = config, num_frames, num_classes
        self.temporal = num_frames > 1 and config.temporal is not False
        self.num_features = config.width
        self.stem = nn.Conv2d(3, config.width, 4, stride=4)
        self.time_embed = TimeEmbedding(num_frames, config.width, config.time_embed_init_std) if self.temporal else None
        self.blocks = nn.ModuleList(TinyConvBlock(config.width, num_frames, self.temporal)
                                    for _ in range(config.depth))
        self.norm = nn.LayerNorm(config.width)
        self.head = new_classifier(config.width, num_classes)
        self.grad_checkpointing = config.act_checkpoint

    def forward_features(self, clip: torch.Tensor) -> torch.Tensor:
        x = self.stem(fold_frames(clip)).permute(0, 2, 3, 1)
        if self.time_embed is not None:
            x = self.time_embed(x)
        for block in self.blocks:
            x = run_block(block, x, recompute=self.grad_checkpointing)
        return self.norm(x).mean(dim=(1, 2)).reshape(clip.shape[0], clip.shape[2], -1)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        embedding = features.mean(dim=1)
        return embedding if pre_logits else self.head(embedding)

    def reset_classifier(self, num_classes: int) -> None:
        self.head, self.num_classes = new_classifier(self.num_features, num_classes), num_classes

    def no_weight_decay(self) -> set[str]:
        return {"time_embed.weight"} if self.temporal else set()

    def layer_id(self, name: str) -> int:
        match = re.match(r"blocks\.(\d+)\.", name)
        if match:
            return 1 + int(match.group(1))
        return self.num_layers - 1 if name.startswith(("norm.", "head.")) else 0

    @property
    def num_layers(self) -> int:
        return self.config.depth + 2


def _owns(state: Mapping[str, torch.Tensor]) -> bool:
    return "stem.weight" in state and "blocks.0.conv.weight" in state


TINY_FAMILY = ModelFamily(
    name="tinyconv",
    build=lambda arch, frames, classes: TinyConvNet(arch, frames, classes),
    variants={"tinyconv_s": TinyConvConfig()},
    can_load=_owns,
    video_only=lambda key: ".temporal." in key or key.startswith("time_embed."),
    inflate_weight=inflate_from_host,
    layouts=(CheckpointLayout("tinyconv_release", weights_key="weights"),),
    config_keys=(*INFLATION_CONFIG_KEYS,
                 ConfigKey("TINY_WIDTH", 0, "width", "width of the tiny conv family (0 = the variant's)", unset=0)),
)


@pytest.fixture
def tiny_family() -> Iterator[ModelFamily]:
    """The family of this module, registered for one test only."""
    register_family(TINY_FAMILY)
    yield TINY_FAMILY
    unregister_family(TINY_FAMILY.name)


@pytest.mark.slow  # two short training runs
def test_a_family_defined_in_one_file_builds_inflates_trains_and_resumes(tiny_family, tmp_path: Path) -> None:
    image = build_variant("tinyconv_s", num_frames=1, num_classes=5, width=6)
    image_file = tmp_path / "tinyconv_image.pth"
    torch.save({"weights": image.state_dict(), "epoch": 90}, image_file)
    lists, videos = make_tiny_dataset(tmp_path / "data", {"train": 3, "val": 1, "test": 1})
    overrides = tiny_overrides(lists, videos, tmp_path / "run", **{
        "MODEL.NAME": "tinyconv_s", "MODEL.TINY_WIDTH": 6, "MODEL.EMBED_DIMS": [], "MODEL.NUM_HEADS": [],
        "MODEL.DEPTHS": [], "TRAIN.EPOCHS": 2, "TEST.ENABLE": False, "SOLVER.WARMUP_EPOCHS": 0.0,
        "TRAIN.CHECKPOINT_FILE_PATH": image_file})
    cfg = load_config([], overrides)
    model = build_model(cfg)
    assert isinstance(model, TinyConvNet) and model.config.width == 6 and model.num_frames == 4

    report = load_pretrained(model, image_file, allow_new_classifier=True)
    assert report.layout == "tinyconv_release" and report.family == "tinyconv"
    assert sorted(report.inflated) == [f"blocks.{i}.temporal.norm.{p}" for i in (0, 1) for p in ("bias", "weight")]
    assert "head.weight" in report.new and not report.missing

    run(load_config([], overrides + ["TRAIN.MAX_STEPS", "2"]))  # 9 videos, batches of 4: the two steps of epoch 1
    first = load_checkpoint(tmp_path / "run" / LATEST)
    assert (first["epoch"], first["global_step"]) == (1, 2)
    torch.testing.assert_close(first["model"]["stem.weight"].shape, torch.Size([6, 3, 4, 4]))

    run(cfg)  # the same run without the cap resumes: epoch 2's two steps
    second = load_checkpoint(tmp_path / "run" / LATEST)
    assert (second["epoch"], second["global_step"]) == (2, 4)
    assert not torch.equal(first["model"]["blocks.0.conv.weight"], second["model"]["blocks.0.conv.weight"])
    assert "resuming from" in (tmp_path / "run" / "log.txt").read_text()


def test_a_family_key_and_an_option_the_family_lacks_fail_before_any_work(tiny_family) -> None:
    with pytest.raises(ConfigError, match="MODEL.TINY_WIDTH.*does not apply to regionvit_s"):
        check_run_config(load_config(overrides=["MODEL.TINY_WIDTH", "4"]))
    with pytest.raises(ConfigError, match="MODEL.WINDOW_SIZE.*does not apply to volo_d1"):
        check_run_config(load_config(overrides=["MODEL.NAME", "volo_d1", "MODEL.WINDOW_SIZE", "7"]))
    with pytest.raises(ConfigError, match="MODEL.DEPTHS"):
        check_run_config(load_config(overrides=["MODEL.NAME", "tinyconv_s", "MODEL.DEPTHS", "[1, 1]"]))
    with pytest.raises(TypeError, match="unknown option.*window_size.*valid options are width"):
        build_variant("tinyconv_s", window_size=7)


# ---------------------------------------------------------------------------- one API for every family

TINY = {tiny.name: tiny for _, tiny in tiny_variants()}  # the families' own tiny variants


def test_every_registered_family_declares_a_tiny_variant_of_its_own() -> None:
    for family in families():
        assert family.tiny_variants, f"{family.name} declares no tiny_variants"
        assert all(tiny.name in family.variants for tiny in family.tiny_variants)


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_family_has_the_same_api(name: str) -> None:
    tiny = TINY[name]
    model = build_variant(name, num_frames=2, num_classes=7, **tiny.overrides).eval()
    clip = torch.randn(3, 3, 2, tiny.image_size, tiny.image_size)
    with torch.no_grad():
        logits = model(clip)
        features = model.forward_features(clip)
        embedding = model.forward_head(features, pre_logits=True)
    assert logits.shape == (3, 7) and features.shape[0] == 3 and embedding.shape == (3, model.num_features)
    torch.testing.assert_close(model.forward_head(features), logits)

    names = dict(model.named_parameters())
    assert model.no_weight_decay() <= set(names)
    layers = {name: model.layer_id(name) for name in names}
    assert set(layers.values()) <= set(range(model.num_layers))
    assert layers["head.weight"] == model.num_layers - 1 and min(layers.values()) == 0

    model.train()
    grads = []
    for enable in (False, True):
        model.set_grad_checkpointing(enable)
        model.zero_grad()
        torch.manual_seed(0)
        model(clip).square().sum().backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    for plain, recomputed in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(plain, recomputed)

    model.reset_classifier(0)
    with torch.no_grad():
        assert model.eval()(clip).shape == (3, model.num_features)
    model.reset_classifier(4)
    assert model(clip).shape == (3, 4) and model.num_classes == 4
    with pytest.raises(ValueError, match=r"\(B, 3, 2, H, W\)"):
        model(torch.randn(1, 3, 5, tiny.image_size, tiny.image_size))


# ---------------------------------------------------------------------------- build_variant(pretrained=...)

def _trained_checkpoint(path: Path, num_classes: int) -> Path:
    """A file in this project's training-checkpoint layout for the tiny RegionViT."""
    name, overrides = "regionvit_ti", TINY["regionvit_ti"].overrides
    model = build_variant(name, num_frames=2, num_classes=num_classes, **overrides)
    cfg = load_config(overrides=["MODEL.NAME", name, "MODEL.NUM_CLASSES", str(num_classes), "DATA.NUM_FRAMES", "2"])
    torch.save({"model": model.state_dict(), "config": cfg.dump(), "class_names": [f"c{i}" for i in range(num_classes)],
                "epoch": 3}, path)
    return path


def test_create_model_pretrained_shows_the_report_and_takes_the_class_count(tmp_path: Path, capsys,
                                                                           monkeypatch) -> None:
    videovit_log = logging.getLogger("videovit")  # as in a fresh Python session: logging not set up
    monkeypatch.setattr(videovit_log, "handlers", [])
    monkeypatch.setattr(videovit_log, "propagate", False)
    name, overrides = "regionvit_ti", TINY["regionvit_ti"].overrides
    path = _trained_checkpoint(tmp_path / "trained.pyth", num_classes=4)
    model = videovit.create_model(name, num_frames=2, pretrained=path, **overrides)
    assert model.num_classes == 4
    err = capsys.readouterr().err
    assert f"load report for {path} (layout videovit, family regionvit)" in err and "new            0" in err
    with pytest.raises(CheckpointError, match="classifier would be random.*num_classes"):
        videovit.create_model(name, num_frames=2, num_classes=400, pretrained=path, **overrides)
    finetune = videovit.create_model(name, num_frames=2, num_classes=400, pretrained=path, allow_new_classifier=True,
                                     **overrides)
    assert finetune.num_classes == 400
