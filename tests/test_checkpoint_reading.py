"""Safe checkpoint reading (every file diagnosed before any advice), layout detection and geometry
resizing (no model needed)."""
from __future__ import annotations

import argparse
import random
import runpy
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from saved_models import save_checkpoint, zero_four_kilobytes

from videovit.checkpoint import read_checkpoint
from videovit.checkpoint.reading import detect_layout, extract_state_dict
from videovit.errors import CheckpointError
from videovit.models.regionvit import _cyclic_index, resize_conv_kernel, resize_rel_pos_table
from videovit.models.registry import families_that_can_load

REPO_ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = {"cls_token.proj.weight": torch.randn(2, 3, 4, 4), "head.weight": torch.randn(3, 2)}
NOT_A_CHECKPOINT = ("is not a checkpoint: its bytes are none of a checkpoint's formats (a zip archive written by "
                    "torch.save, an older torch.save pickle, safetensors)")


def test_pickled_objects_are_refused_unless_trusted(tmp_path: Path):
    path = tmp_path / "train_ckpt.pth.tar"
    torch.save({"state_dict": WEIGHTS, "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(CheckpointError, match=r"is a well-formed torch file that holds pickled Python objects "
                                              r"\(argparse.Namespace\).*TRAIN.TRUST_CHECKPOINT True"):
        read_checkpoint(path)
    loaded = read_checkpoint(path, trust=True)
    assert loaded["args"].lr == 0.1


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def make_bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """The files users pass by mistake (issue 24), each with what its refusal must say."""
    folder.mkdir(parents=True, exist_ok=True)
    good, _ = save_checkpoint(folder / "run")
    whole = good.read_bytes()
    cases = {"random": (folder / "random.pth", random_bytes(200_000, seed=1)),
             "random_3k": (folder / "random3k.pth", random_bytes(3000, seed=2)),
             "text": (folder / "notes.pth", b"MODEL:\n  NAME: regionvit_s\n"),
             "empty": (folder / "empty.pyth", b""),
             "truncated": (folder / "truncated.pyth", whole[: len(whole) // 2]),
             "zeroed_4k": (folder / "zeroed.pyth", zero_four_kilobytes(whole)),
             "pickle_header_then_garbage": (folder / "garbage.pth", b"\x80\x02" + random_bytes(5000, seed=3))}
    for path, data in cases.values():
        path.write_bytes(data)
    save_file(WEIGHTS, str(folder / "whole.safetensors"))
    damaged = (folder / "whole.safetensors").read_bytes()
    (folder / "damaged.safetensors").write_bytes(damaged[: len(damaged) // 2])
    plain = folder / "plain.pth"
    torch.save({"args": argparse.Namespace(lr=0.1), "w": torch.zeros(1000)}, plain)
    broken_pickle = bytearray(plain.read_bytes())
    at = broken_pickle.index(b"data.pkl") + 40  # inside the pickle record: its CRC no longer matches
    broken_pickle[at:at + 8] = b"\xff" * 8
    (folder / "broken_pickle.pth").write_bytes(bytes(broken_pickle))
    (folder / "a_folder").mkdir()
    expected = {"random": NOT_A_CHECKPOINT, "random_3k": NOT_A_CHECKPOINT,
                "text": "is a text file, not a checkpoint (it begins 'MODEL:')", "empty": "is empty (0 bytes)",
                "truncated": "is a truncated or damaged zip archive (the directory at its end is missing or "
                             "unreadable): the save or copy that made it did not finish",
                "pickle_header_then_garbage": "is damaged: its pickled data is malformed",
                "zeroed_4k": "is damaged: its contents do not match the SHA-256 checksum saved in it"}
    named = {key: (path, expected[key]) for key, (path, _) in cases.items()}
    named["damaged_safetensors"] = (folder / "damaged.safetensors", "is a damaged safetensors file (Error while "
                                    "deserializing header: incomplete metadata, file not fully covered)")
    named["broken_pickle"] = (folder / "broken_pickle.pth", "is damaged: its record plain/data.pkl fails its CRC check")
    named["folder"] = (folder / "a_folder", "is a folder but not a model folder (it has no config.json)")
    return named


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    return make_bad_files(tmp_path_factory.mktemp("bad_files"))


@pytest.mark.parametrize("case", ["random", "random_3k", "text", "empty", "truncated", "zeroed_4k",
                                  "pickle_header_then_garbage", "damaged_safetensors", "broken_pickle", "folder"])
@pytest.mark.parametrize("trust", [False, True])
def test_a_file_that_is_no_checkpoint_is_diagnosed_and_never_gets_the_trust_advice(bad_files, case, trust) -> None:
    path, expected = bad_files[case]
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(path, trust=trust)  # trusting it changes nothing: nothing unparsable is unpickled
    message = str(caught.value)
    assert message.startswith(f"{path} {expected}"), message
    assert "TRUST_CHECKPOINT" not in message and "\n" not in message


@pytest.mark.parametrize("tool", ["run_net", "demo", "export", "predict"])
def test_every_tool_names_the_bad_checkpoint_in_one_error_line(bad_files, tool, tmp_path, capsys) -> None:
    (tmp_path / "videos.txt").write_text("clip.mp4\n")
    (tmp_path / "classes.txt").write_text("".join(f"class {i}\n" for i in range(8)))
    (tmp_path / "clip.mp4").write_bytes(b"not read: the checkpoint fails first")
    for case in ("random_3k", "text", "truncated", "zeroed_4k", "damaged_safetensors"):
        path, expected = bad_files[case]
        argv = {"run_net": ["TRAIN.ENABLE", "False", "TEST.CHECKPOINT_FILE_PATH", str(path), "DEVICE", "cpu",
                            "OUTPUT_DIR", str(tmp_path / "out"), "DATA.PATH_TO_DATA_DIR", str(tmp_path)],
                "demo": ["--checkpoint", str(path), "--video", str(tmp_path / "clip.mp4")],
                "export": [str(path), str(tmp_path / "exported")],
                "predict": ["--checkpoint", str(path), "--list", str(tmp_path / "videos.txt"), "--prefix",
                            str(tmp_path), "--out", str(tmp_path / "predictions.csv")]}[tool]
        status = runpy.run_path(str(REPO_ROOT / "tools" / f"{tool}.py"))["main"](argv)
        err = capsys.readouterr().err
        assert status == 2 and "Traceback" not in err, err
        assert err.strip().splitlines()[-1].startswith(f"error: {path} {expected}"), err


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
