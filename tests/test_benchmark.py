"""tools/benchmark.py on a tiny config, the peak-memory measure, and the R2L attention-memory numbers."""
from __future__ import annotations

import math
import re
import runpy
from pathlib import Path

import pytest
import torch
from tool_calls import tool_main
from torch import nn

from videovit.bench.compare import (
    available_pairs,
    import_official_regionvit,
    max_logit_difference,
    measure_row,
    timesformer_pair,
    volo_pair,
)
from videovit.bench.deploy import benchmark_deployment
from videovit.bench.host_syncs import SyncCounter, call_kind
from videovit.bench.models import (
    AttentionCost,
    AttentionShape,
    BenchmarkSettings,
    measure_attention,
    r2l_attention,
    reset_peak_rss,
    run_in_fresh_process,
    time_iterations,
)
from videovit.bench.training import measure_throughput, peak_tflops, throughput_table, torchrun_command
from videovit.config import load_config
from videovit.engine.preflight import check_run_config
from videovit.errors import ModelOptionError, UsageError
from videovit.models import list_models
from videovit.models.regionvit import R2LBlock, WindowGrid
from videovit.runtime.distributed import init_distributed

REPO_ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20


@pytest.mark.parametrize("side,window,tokens,regions,global_elements,r2l_elements", [
    (14, 7, 196, 4, 196**2, 4**2 + 4 * 50**2),        # the paper's N = 196 case: 38416 vs 10016
    (56, 7, 3136, 64, 3136**2, 64**2 + 64 * 50**2),   # stage 1 of a 224 input
    (16, 7, 256, 9, 256**2, 9**2 + 9 * 50**2),        # padded to 3 x 3 windows
    (14, 14, 196, 1, 196**2, 1 + 197**2),             # one window: R2L costs more than global
])
def test_attention_matrix_elements_by_hand(side, window, tokens, regions, global_elements, r2l_elements) -> None:
    cost = AttentionCost(side, side, window)
    assert (cost.tokens, cost.regions) == (tokens, regions)
    assert (cost.global_elements, cost.r2l_elements) == (global_elements, r2l_elements)
    assert cost.ratio == pytest.approx(r2l_elements / global_elements)
    assert cost.saving == pytest.approx(1 - r2l_elements / global_elements)


def test_paper_claim_of_73_percent_at_196_tokens() -> None:
    assert math.floor(100 * AttentionCost(14, 14, 7).saving) == 73   # 1 - 10016 / 38416 = 73.9%


def test_benchmarked_r2l_attention_is_the_attention_of_the_models_r2l_block() -> None:
    """With identity norms and a zero MLP, an R2L block is exactly the measured attention form."""
    torch.manual_seed(0)
    block = R2LBlock(dim=32, num_heads=2, window=7, drop_path=0.0, num_frames=None).eval()
    block.norm0 = block.norm1 = block.norm2 = nn.Identity()
    nn.init.zeros_(block.mlp.fc2.weight)
    nn.init.zeros_(block.mlp.fc2.bias)
    local, regional = torch.randn(2, 32, 16, 16), torch.randn(2, 32, 3, 3)
    grid = WindowGrid.of(regional, local, 7)
    windows = grid.to_windows(regional, local)
    with torch.no_grad():
        expected = block(windows, grid.num_windows, None, clips=2)
        measured = r2l_attention(block.attn, windows, grid.num_windows, None)
    assert torch.allclose(measured, expected, atol=1e-6)


@pytest.mark.skipif(not reset_peak_rss(), reason="peak RSS cannot be reset on this system")
def test_peak_memory_counts_a_buffer_even_when_the_allocator_could_reuse_it() -> None:
    size = 64 * MIB

    def step() -> None:
        torch.ones(size // 4, dtype=torch.float32).sum()

    timing = time_iterations(step, warmup=2, iters=2, device=torch.device("cpu"))
    assert len(timing.seconds) == 2 and all(s > 0 for s in timing.seconds)
    assert 0.95 * size <= timing.peak_bytes <= 1.5 * size


@pytest.mark.slow  # spawns a process
@pytest.mark.skipif(not reset_peak_rss(), reason="peak RSS cannot be reset on this system")
def test_a_fresh_process_does_not_inherit_the_parents_memory_peak() -> None:
    """getrusage's maxrss would report the parent's resident set at fork time; VmHWM does not."""
    held = torch.ones(256 * MIB // 4)   # touched pages the parent holds while the child measures
    settings = BenchmarkSettings(iters=1, warmup=1, threads=1)
    timing = run_in_fresh_process(measure_attention, "r2l", 56, AttentionShape(), settings)
    assert held.sum() > 0 and 0 < timing.peak_bytes < 16 * MIB


def _table_rows(out: str, first_cell: str) -> list[list[str]]:
    """Rows of the printed table whose first cell is ``first_cell``."""
    return [line.split() for line in out.splitlines() if line.split()[:1] == [first_cell]]


@pytest.mark.slow  # one fresh process per measurement
def test_benchmark_cli_prints_finite_positive_numbers(capsys) -> None:
    main = runpy.run_path(str(REPO_ROOT / "tools" / "benchmark.py"))["main"]
    assert main(["--cfg", str(REPO_ROOT / "configs" / "demo" / "synthetic_regionvit.yaml"),
                 "DATA.NUM_FRAMES", "2", "DATA.TRAIN_JITTER_SCALES", "[56, 64]", "DATA.TRAIN_CROP_SIZE", "56",
                 "DATA.TEST_SCALE", "64", "DATA.TEST_CROP_SIZE", "56",
                 "MODEL.WINDOW_SIZE", "7",  # the hand-checked attention figures below are for M = 7
                 "TRAIN.BATCH_SIZE", "2",   # the batch, as no --batch-size is given
                 "--iters", "2", "--warmup", "1", "--threads", "1", "--attention-sizes", "56"]) == 0
    out = capsys.readouterr().out
    model_rows = _table_rows(out, "forward") + _table_rows(out, "forward+backward")
    assert [row[0] for row in model_rows] == ["forward", "forward+backward"]
    for mode, shape, iters, mean_ms, median_ms, clips_per_s, peak in model_rows:
        assert shape == "2x3x2x56x56" and iters == "2"
        numbers = [float(mean_ms), float(median_ms), float(clips_per_s)] + ([float(peak)] if reset_peak_rss() else [])
        assert all(math.isfinite(x) and x > 0 for x in numbers), (mode, numbers)
    (attention_row,) = _table_rows(out, "56")
    assert attention_row[1:8] == ["14x14", "196", "4", "38,416", "10,016", "0.2607", "73.9%"]
    measured = [float(attention_row[i]) for i in (8, 9, 11, 12)]   # MiB global, R2L; ms global, R2L
    assert all(math.isfinite(x) and x > 0 for x in measured)
    assert re.search(r"dim 32, 1 heads, window 7", out)


def test_benchmark_cli_refuses_fp16_on_cpu(capsys) -> None:
    main = runpy.run_path(str(REPO_ROOT / "tools" / "benchmark.py"))["main"]
    assert main(["--cfg", str(REPO_ROOT / "configs" / "demo" / "synthetic_regionvit.yaml"), "DEVICE", "cpu",
                 "--amp", "fp16", "--no-attention"]) == 2
    assert "fp16 needs a CUDA device" in capsys.readouterr().err


def test_sync_counter_counts_host_reads_by_call_site_and_restores_the_tensor_methods() -> None:
    original = torch.Tensor.item
    value = torch.ones(2)
    with SyncCounter() as counter:
        value.sum().item()
        value.tolist()
        bool(value[0])
    assert torch.Tensor.item is original
    sites = sorted(counter.calls)
    assert [site.split(" at ")[0] for site in sites] == ["__bool__", "item", "tolist"]
    assert all("test_benchmark.py" in site for site in sites) and sum(counter.calls.values()) == 3
    assert call_kind("item at videovit/engine/trainer.py:300 (train_step)").startswith("training loop")
    assert call_kind("item at elsewhere.py:1 (f)") == "other"


def test_deployment_benchmark_refuses_an_unknown_model_before_any_work() -> None:
    with pytest.raises(ModelOptionError, match="regionvit_xl"):
        list(benchmark_deployment("compile", ["regionvit_ti", "regionvit_xl"], 8, 224, 1, 1))


@pytest.mark.slow  # imports transformers, times four tiny models
def test_side_by_side_pairs_hold_the_same_weights_and_measure_both_sides(tmp_path: Path) -> None:
    """Tiny versions of the transformers TimeSformer and timm VOLO pairs: our checkpoint loader takes
    their weights 1:1, the logits agree, and a row times both sides."""
    pytest.importorskip("transformers", reason="the transformers pairs need the bench extra")
    torch.manual_seed(0)
    timesformer = timesformer_pair(width=32, depth=2, heads=2, frames=4, size=32, classes=5)
    volo = volo_pair(depths=(1, 1, 1, 1), dims=(32, 64, 64, 64), heads=(1, 2, 2, 2), classes=5)
    for pair in (timesformer, volo):
        clip = torch.randn(2, *pair.clip)
        assert max_logit_difference(pair, clip) < 1e-5, pair.name
    row = measure_row(timesformer, "forward+backward", 2, "fp32", torch.device("cpu"), warmup=1, iters=2)
    assert (row.name, row.mode, row.batch, row.precision) == ("timesformer_b", "forward+backward", 2, "fp32")
    assert all(s > 0 for s in row.seconds) and row.ratio > 0 and row.max_diff < 1e-5
    if reset_peak_rss():
        assert all(peak is not None and peak > 0 for peak in row.peak_bytes)
    forward = measure_row(volo, "forward", 1, "bf16", torch.device("cpu"), warmup=0, iters=1)
    assert forward.peak_bytes == (None, None) and len(forward.cells()) == 11
    assert "regionvit_ti" not in available_pairs(None) and "regionvit_ti" in available_pairs(tmp_path)
    assert ("videomae_b" in available_pairs(None)) == ("videomae_b" in list_models())
    with pytest.raises(UsageError, match="not a checkout of IBM/RegionViT"):
        import_official_regionvit(tmp_path)


@pytest.mark.parametrize("name,tflops", [
    ("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H200", 989.0),
    ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA L40S", 362.0), ("NVIDIA L4", 121.0), ("NVIDIA A10", 125.0),
    ("NVIDIA GeForce GTX 1080", None),
])
def test_gpu_peaks_are_looked_up_from_the_device_name(name: str, tflops: float | None) -> None:
    assert peak_tflops(name) == tflops


def test_training_throughput_runs_the_configured_step_and_reports_mfu(tmp_path: Path) -> None:
    cfg = check_run_config(load_config([REPO_ROOT / "configs" / "demo" / "synthetic_regionvit.yaml"], [
        "DATA.NUM_FRAMES", "2", "DATA.TRAIN_JITTER_SCALES", "[32, 40]", "DATA.TRAIN_CROP_SIZE", "32",
        "DATA.TEST_SCALE", "32", "DATA.TEST_CROP_SIZE", "32", "DEVICE", "cpu"]))
    ctx = init_distributed("cpu")
    row = measure_throughput(cfg, ctx, batch=2, warmup=1, iters=2, tflops=0.001)
    assert (row.rank, row.device, row.batch) == (0, "cpu", 2)
    assert row.train_clips_per_s > 0 and row.infer_clips_per_s > 0 and row.forward_flops > 0
    assert row.mfu == pytest.approx(3 * row.forward_flops * row.train_clips_per_s / 1e9)
    assert row.peak_bytes is None or row.peak_bytes > 0
    assert measure_throughput(cfg, ctx, batch=1, warmup=0, iters=1).mfu is None  # a CPU has no known peak
    lines = throughput_table([row]).splitlines()
    assert lines[0].split()[:3] == ["rank", "device", "batch"] and lines[2].split()[-1].endswith("%")
    command = torchrun_command("tools/benchmark_training.py", ["--iters", "2", "--nproc", "2", "--nproc=2"], 2)
    assert command[-3:] == ["tools/benchmark_training.py", "--iters", "2"] and "--nproc-per-node=2" in command


@pytest.mark.slow  # torchrun with two gloo processes
def test_training_benchmark_under_torchrun_prints_one_row_per_process(monkeypatch, capfd) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # for the two processes torchrun starts
    status = tool_main("benchmark_training.py")([   # in this process: --nproc reruns it under torchrun
        "--cfg", str(REPO_ROOT / "configs" / "demo" / "synthetic_regionvit.yaml"),
        "DATA.NUM_FRAMES", "2", "DATA.TRAIN_JITTER_SCALES", "[32, 40]", "DATA.TRAIN_CROP_SIZE", "32",
        "DATA.TEST_SCALE", "32", "DATA.TEST_CROP_SIZE", "32", "TRAIN.BATCH_SIZE", "2",
        "--device", "cpu", "--iters", "1", "--warmup", "1", "--nproc", "2", "--peak-tflops", "1"])
    out, err = capfd.readouterr()   # the processes' rows reach this process's file descriptors
    assert status == 0, err[-2000:]
    assert "2 process(es) on cpu" in out
    ranks = [line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["cpu"]]
    assert ranks == ["0", "1"]
