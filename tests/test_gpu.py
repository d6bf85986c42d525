"""On a CUDA GPU: the official parity references, bf16 against fp32, the fused attention kernels, the training
step as the engine configures it there, and GPU decoding's exactness. Skipped without a GPU; tools/gpu_check.sh
runs this file first, then the throughput figures (docs/performance.md)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from videos import decoded_indices, make_indexed_video

from videovit.checkpoint.loading import load_pretrained
from videovit.config import load_config
from videovit.data.decoding import DecodeDeviceWarning, backend_unavailable, read_frames
from videovit.engine.preflight import check_run_config
from videovit.models import build_variant

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (tools/gpu_check.sh)")
REFERENCE = Path(__file__).resolve().parent / "data" / "reference"
REPO_ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def _exact_fp32() -> None:
    """Parity needs true fp32 matrix products (no TF32)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def _reference(name: str) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """(our model with the official reference weights, the stored input, the official logits) on the GPU."""
    arch = json.loads((REFERENCE / f"{name}.json").read_text())
    if name.startswith("regionvit"):
        model = build_variant(
            "regionvit_s", num_frames=1, num_classes=arch["num_classes"], stem=arch["patch_conv_type"],
            embed_dims=arch["embed_dim"][1:], depths=arch["depth"], num_heads=arch["num_heads"],
            window_size=arch["kernel_sizes"][0], peg=arch["peg"])
        checkpoint, io = REFERENCE / f"{name}.pth", torch.load(REFERENCE / f"{name}_io.pt", weights_only=True)["x224"]
    else:
        model = build_variant("timesformer_b", num_frames=arch["num_frames"], num_classes=arch["num_classes"],
                              embed_dims=[arch["dim"]], depths=[arch["depth"]], num_heads=[arch["heads"]],
                              patch_size=arch["patch"], img_size=arch["img"], mlp_ratio=arch["mlp_ratio"],
                              qkv_bias=arch["qkv_bias"])
        checkpoint, io = REFERENCE / f"{name}.pyth", torch.load(REFERENCE / f"{name}_io.pt", weights_only=True)["clip4"]
    load_pretrained(model, checkpoint, log=lambda _: None)
    clip = io["input"] if io["input"].dim() == 5 else io["input"][:, :, None]
    return model.to(CUDA).eval(), clip.to(CUDA), io["logits"].to(CUDA)


@pytest.mark.parametrize("name", ["regionvit_mini_w7", "timesformer_mini"])
def test_official_references_hold_on_the_gpu(name: str) -> None:
    model, clip, expected = _reference(name)
    with torch.no_grad():
        torch.testing.assert_close(model(clip), expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["timesformer_b", "regionvit_s", "volo_d1"])
def test_bf16_autocast_agrees_with_fp32(name: str) -> None:
    torch.manual_seed(0)
    model = build_variant(name, num_frames=8, num_classes=400).to(CUDA).eval()
    clip = torch.randn(2, 3, 8, 224, 224, device=CUDA)
    with torch.no_grad():
        fp32 = model(clip)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            bf16 = model(clip).float()
    assert (bf16 - fp32).abs().max() <= 0.05 * fp32.abs().max() + 1e-3
    assert torch.equal(bf16.argmax(-1), fp32.argmax(-1)) or (bf16 - fp32).abs().max() < 1e-2


def test_plain_attention_runs_on_the_flash_kernel_and_r2l_on_the_memory_efficient_one() -> None:
    """TimeSformer's attention has no mask (flash-eligible in bf16); R2L adds its relative-position bias as
    an additive mask, which the memory-efficient kernel takes. Each model runs with only that kernel allowed."""
    clip = torch.randn(1, 3, 8, 224, 224, device=CUDA)
    kernels = (("timesformer_b", SDPBackend.FLASH_ATTENTION), ("regionvit_s", SDPBackend.EFFICIENT_ATTENTION))
    for name, kernel in kernels:
        model = build_variant(name, num_frames=8, num_classes=400).to(CUDA).eval()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16), sdpa_kernel(kernel):
            assert torch.isfinite(model(clip)).all(), name


def test_the_configured_training_step_runs_fused_and_compiled_on_the_gpu() -> None:
    from videovit.bench.training import measure_throughput
    from videovit.runtime.distributed import init_distributed

    cfg = check_run_config(load_config([REPO_ROOT / "configs" / "K400" / "regionvit_ti.yaml"],
                                       ["DEVICE", "cuda", "MODEL.COMPILE", "True"]))
    assert cfg.AMP.ENABLE and cfg.AMP.DTYPE == "bf16"
    row = measure_throughput(cfg, init_distributed("cuda"), batch=2, warmup=2, iters=2)
    assert row.train_clips_per_s > 0 and row.mfu is not None and 0 < row.mfu < 1


@pytest.mark.skipif(backend_unavailable("torchcodec") is not None, reason="needs torchcodec")
def test_gpu_decoding_returns_exactly_the_frames_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    make_indexed_video(path, 60, size=(128, 96), fps=25, gop=12)
    wanted = [0, 7, 31, 59, 7]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DecodeDeviceWarning)  # the GPU decoder must really have run
        frames = read_frames(path, wanted, "torchcodec", device="cuda")
    assert decoded_indices(frames) == wanted
