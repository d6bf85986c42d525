"""Safe checkpoint reading, layout detection and geometry resizing (no model needed)."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from videovit.checkpoint import read_checkpoint
from videovit.checkpoint.reading import detect_layout, extract_state_dict
from videovit.errors import CheckpointError
from videovit.models.regionvit import _cyclic_index, resize_conv_kernel, resize_rel_pos_table
from videovit.models.registry import families_that_can_load

WEIGHTS = {"cls_token.proj.weight": torch.randn(2, 3, 4, 4), "head.weight": torch.randn(3, 2)}


def test_pickled_objects_are_refused_unless_trusted(tmp_path: Path):
    path = tmp_path / "train_ckpt.pth.tar"
    torch.save({"state_dict": WEIGHTS, "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(CheckpointError, match=r"pickled Python objects.*TRAIN.TRUST_CHECKPOINT True"):
        read_checkpoint(path)
    loaded = read_checkpoint(path, trust=True)
    assert loaded["args"].lr == 0.1


def test_missing_and_garbage_files_name_the_problem(tmp_path: Path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="garbage.pth"):
        read_checkpoint(garbage)


@pytest.mark.parametrize("wrap,layout", [
    (lambda sd: {"model": sd, "optimizer": {}, "epoch": 3}, "regionvit_official"),
    (lambda sd: {"state_dict": sd, "state_dict_ema": sd}, "volo_train"),
    (lambda sd: {f"module.{k}": v for k, v in sd.items()}, "timm"),
    (lambda sd: {"model": sd, "config": "MODEL:\n  NAME: x\n"}, "videovit"),
])
def test_layouts_are_detected_and_module_prefix_stripped(tmp_path: Path, wrap, layout: str):
    path = tmp_path / "ckpt.pth"
    torch.save(wrap(WEIGHTS), path)
    obj = read_checkpoint(path)
    assert detect_layout(obj, path) == layout
    state = extract_state_dict(obj, layout, path)
    assert set(state) == set(WEIGHTS)
    assert families_that_can_load(state) == ["regionvit"]


def test_safetensors_and_flat_volo_layout(tmp_path: Path):
    volo = {"network.0.0.attn.v.weight": torch.randn(4, 4), "pos_embed": torch.randn(1, 2, 2, 4),
            "post_network.0.norm1.weight": torch.randn(4)}
    path = tmp_path / "model.safetensors"
    save_file(volo, str(path))
    obj = read_checkpoint(path)
    assert detect_layout(obj, path) == "volo_official"
    assert families_that_can_load(extract_state_dict(obj, "volo_official", path)) == ["volo"]


def test_wrong_type_names_the_expected_key(tmp_path: Path):
    path = tmp_path / "flat.pth"
    torch.save(WEIGHTS, path)
    with pytest.raises(CheckpointError, match=r"holds no 'state_dict'.*CHECKPOINT_TYPE"):
        extract_state_dict(read_checkpoint(path), "volo_train", path)


def test_rel_pos_resize_keeps_the_offsets_in_place():
    """A table whose entry is a function of (dy, dx) stays that function after resizing."""
    def table_for(window: int) -> torch.Tensor:
        side = 2 * window - 1
        offsets = torch.arange(side) - (window - 1)
        rows = (offsets + window // 2) % side
        table = torch.empty(side, side)
        dy, dx = torch.meshgrid(offsets.float(), offsets.float(), indexing="ij")
        table[rows[:, None], rows[None, :]] = 0.3 * dy - 0.2 * dx  # linear: bicubic keeps it
        return table.reshape(1, side * side)

    small, large = table_for(7), table_for(14)
    stretched = resize_rel_pos_table(small, 14)
    assert stretched.shape == large.shape
    # offsets -6..6 are stretched over -13..13, so values scale by 6/13 (bicubic with a=-0.75 is
    # near-linear: a wrong cyclic shift would be off by whole units, not by a few hundredths)
    torch.testing.assert_close(stretched, large * 6 / 13, atol=0.05, rtol=0)
    grid = stretched.reshape(27, 27)[_cyclic_index(27, 14)][:, _cyclic_index(27, 14)]
    assert grid[13, 13].abs() < 1e-5  # offset (0, 0) stays at zero
    assert resize_rel_pos_table(small, 7) is small


def test_conv_kernel_resize_keeps_the_response_to_a_flat_input():
    kernel = torch.ones(2, 3, 28, 28)
    resized = resize_conv_kernel(kernel, (56, 56))
    assert resized.shape == (2, 3, 56, 56)
    torch.testing.assert_close(resized.sum(dim=(2, 3)), kernel.sum(dim=(2, 3)))
