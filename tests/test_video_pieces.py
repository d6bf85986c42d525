"""The pieces every family shares (docs/models.md, "Shared pieces"): drop path and its schedule, the
gradient-checkpointing rule, the initialisation, the temporal block, position tables of another size and
the key maps of foreign checkpoint layouts."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from videovit.models.initialisation import init_weights
from videovit.models.key_maps import KeyMap
from videovit.models.positions import resize_grid, resize_token_table
from videovit.models.recompute import run_block
from videovit.models.stochastic_depth import drop_path, drop_path_rates
from videovit.models.temporal import TemporalBlock


def test_drop_path_keeps_or_drops_whole_clips_and_keeps_the_expectation() -> None:
    torch.manual_seed(0)
    x = torch.ones(64 * 6, 5)                         # 64 clips of 6 adjacent rows (frames, sites, windows)
    out = drop_path(x, 0.5, training=True, clips=64).reshape(64, -1)
    assert set(out.unique().tolist()) == {0.0, 2.0}   # dropped, or kept and scaled by 1 / (1 - rate)
    assert (out == out[:, :1]).all()                  # one draw per clip
    assert 0 < (out[:, 0] == 0).sum() < 64
    per_row = drop_path(torch.ones(8, 3), 0.5, training=True)  # clips=None: one row per clip
    assert (per_row == per_row[:, :1]).all()
    assert drop_path(x, 0.5, training=False, clips=64) is x and drop_path(x, 0.0, training=True, clips=64) is x
    with pytest.raises(ValueError, match="cannot be split into 5 clips"):
        drop_path(torch.ones(12, 2), 0.1, training=True, clips=5)


def test_drop_path_schedule_is_linear_from_zero_to_the_last_block() -> None:
    assert drop_path_rates(0.3, 4) == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert drop_path_rates(0.3, 1) == [0.0]


@pytest.mark.parametrize("train", [True, False])
def test_blocks_recompute_whenever_autograd_records_in_training_or_eval_mode(train: bool) -> None:
    block = nn.Sequential(nn.Linear(4, 4), nn.GELU()).train(train)
    calls: list[int] = []
    block.register_forward_pre_hook(lambda *_: calls.append(1))
    x = torch.randn(3, 4, requires_grad=True)
    run_block(block, x, recompute=True).sum().backward()
    assert len(calls) == 2                       # forward, then again in the backward pass
    with torch.no_grad():
        run_block(block, x, recompute=True)
    assert len(calls) == 3                       # nothing to recompute without autograd
    run_block(block, x, recompute=False).sum().backward()
    assert len(calls) == 4


def test_init_weights_is_vit_style_with_the_temporal_output_at_zero() -> None:
    torch.manual_seed(0)
    model = nn.ModuleDict({"linear": nn.Linear(256, 256), "norm": nn.LayerNorm(256),
                           "temporal": TemporalBlock(256, 4, num_frames=2)})
    table = nn.Parameter(torch.zeros(1, 50, 256))
    with torch.no_grad():
        model["norm"].weight.fill_(3.0)
        model["temporal"].fc.weight.fill_(1.0)
    init_weights(model, tables=(table,))
    model.requires_grad_(False)
    table.requires_grad_(False)
    assert model["linear"].weight.std() == pytest.approx(0.02, rel=0.1) and not model["linear"].bias.any()
    assert table.std() == pytest.approx(0.02, rel=0.1)
    assert torch.equal(model["norm"].weight, torch.ones(256))
    assert not model["temporal"].fc.weight.any() and not model["temporal"].fc.bias.any()
    assert model["temporal"].attn.qkv.weight.std() == pytest.approx(0.02, rel=0.1)


def test_temporal_block_drops_before_its_output_layer() -> None:
    """The official TimeSformer order: ``x + fc(drop_path(attn(norm(x))))``, so a dropped clip still gets
    the fc bias and a kept one the fc of the scaled residual."""
    torch.manual_seed(0)
    block = TemporalBlock(8, 2, num_frames=3, drop_path=0.5).train()
    with torch.no_grad():
        block.fc.weight.normal_()
        block.fc.bias.normal_()
        x = torch.randn(16 * 3, 4, 8)                # 16 clips of 3 frames, 4 sites each
        added = (block(x) - x).reshape(16, -1, 8)
    dropped = torch.isclose(added, block.fc.bias.expand_as(added), atol=1e-6).all(dim=(1, 2))
    assert dropped.any() and not dropped.all()


def test_position_tables_keep_their_grid_or_resize_on_it() -> None:
    table = torch.arange(2 * 4 * 4 * 3, dtype=torch.float32).reshape(2, 4, 4, 3)
    assert resize_grid(table, (4, 4)) is table
    assert resize_grid(table, (6, 2)).shape == (2, 6, 2, 3)
    tokens = torch.randn(1, 1 + 2 * 16, 3)             # a class token, then two 4x4 grids
    resized = resize_token_table(tokens, (4, 4), (2, 3), leading=1)
    assert resized.shape == (1, 1 + 2 * 6, 3) and torch.equal(resized[:, 0], tokens[:, 0])
    second = resize_grid(tokens[:, 17:].reshape(1, 4, 4, 3), (2, 3)).reshape(1, 6, 3)
    torch.testing.assert_close(resized[:, 1 + 6:], second)
    assert torch.equal(resize_token_table(tokens, (4, 4), (4, 4), leading=1), tokens)


def test_key_maps_rename_both_ways_and_keep_block_numbers() -> None:
    names = KeyMap((("blocks.{i}.attn.proj.", "encoder.layer.{i}.attention.output.dense."),
                    ("blocks.{i}.mlp.fc2.", "encoder.layer.{i}.output.dense."),
                    ("head.", "classifier.")))
    assert names.to_theirs("blocks.11.attn.proj.weight") == "encoder.layer.11.attention.output.dense.weight"
    assert names.to_ours("encoder.layer.3.output.dense.bias") == "blocks.3.mlp.fc2.bias"
    assert names.to_ours("encoder.layer.3.attention.output.dense.bias") == "blocks.3.attn.proj.bias"
    assert names.to_ours("classifier.weight") == "head.weight" and names.to_ours("pos_embed") is None
    state = {"classifier.bias": torch.zeros(2), "dist_token": torch.zeros(1)}
    assert set(names.rename_to_ours(state)) == {"head.bias", "dist_token"}
