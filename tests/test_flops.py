"""FLOP and parameter counting: the SDPA handle, LayerNorm in and out, the model summary tool."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from tool_calls import REPO_ROOT, call_tool
from torch import nn

from videovit.bench.flops import count_flops, count_parameters, measure_flops, model_summary
from videovit.config import load_config
from videovit.models import build_variant
from videovit.models.regionvit import LayerNorm2d

TINY_OVERRIDES = ["MODEL.NAME", "regionvit_ti", "MODEL.EMBED_DIMS", "[32, 64, 128, 256]",
                  "MODEL.DEPTHS", "[1, 1, 1, 1]", "MODEL.NUM_HEADS", "[1, 2, 4, 8]",
                  "DATA.NUM_FRAMES", "2", "DATA.TEST_CROP_SIZE", "112", "MODEL.NUM_CLASSES", "7"]


class OnlySDPA(nn.Module):
    """Nothing but one scaled_dot_product_attention call on its three inputs."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v)


class NormThenLinear(nn.Module):
    """A LayerNorm2d and a token LayerNorm around a Linear, to split norm FLOPs from the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.norm2d = LayerNorm2d(8)
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.norm2d(x).flatten(2).transpose(1, 2)
        return self.fc(self.norm(tokens))


def test_sdpa_counts_both_matrix_products():
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 4)
    # q @ k^T: 2*3 * 5*7*8 multiply-adds; attn @ v: 2*3 * 5*7*4
    assert count_flops(OnlySDPA(), (q, k, v)) == 2 * 3 * 5 * 7 * (8 + 4)


def test_layernorms_are_counted_like_fvcore_and_can_be_excluded():
    x = torch.randn(2, 8, 4, 4)
    linear = 2 * 16 * 8 * 4
    norms = 2 * (5 * x.numel())       # fvcore: 5 flops per element for an affine norm
    flops = measure_flops(NormThenLinear(), x)
    assert flops.total() == linear + norms
    assert flops.total(with_layernorm=False) == linear
    assert flops.module("norm2d") == 5 * x.numel() and flops.module("norm2d", False) == 0
    assert count_flops(NormThenLinear(), x, with_layernorm=False) == linear


def test_shared_parameters_are_counted_once():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert count_parameters(model) == 4 * 4 + 4


def test_measuring_keeps_the_training_mode():
    model = NormThenLinear().train()
    measure_flops(model, torch.randn(1, 8, 2, 2))
    assert model.training


def test_model_summary_reports_the_configured_model():
    cfg = load_config(overrides=TINY_OVERRIDES)
    text = model_summary(cfg, per_module_depth=1)
    model = build_variant("regionvit_ti", num_frames=2, num_classes=7, embed_dims=(32, 64, 128, 256),
                         depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8), drop_path_rate=0.1)
    flops = measure_flops(model, torch.randn(1, 3, 2, 112, 112))
    assert f"params: {count_parameters(model):,}" in text
    assert f"GFLOPs with LayerNorm: {flops.total() / 1e9:.2f}" in text
    assert f"GFLOPs without LayerNorm: {flops.total(False) / 1e9:.2f}" in text
    assert "layers" in text and "layers.0" not in text   # depth 1 only


def test_model_info_tool_prints_the_summary(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    done = call_tool("model_info.py", ["--cfg", "configs/K400/regionvit_s.yaml", *TINY_OVERRIDES, "--per-module", "2"])
    assert done.status == 0, done.err
    assert "model: regionvit_ti, 7 classes, input (1, 3, 2, 112, 112)" in done.out
    assert "layers.0 " in done.out and "layers.0.blocks" not in done.out
