"""Process-group set-up from torchrun's environment, rank helpers and cross-process gathering.

``torchrun`` (single node or multi-node) exports RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT; without them the run is a single process and no process group is created. Backends:
NCCL for CUDA devices, gloo on CPU (DIST_BACKEND "auto").
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from yacs.config import CfgNode

from videovit.config.validation import device_problems
from videovit.errors import ConfigError
from videovit.signals import HANDLED_SIGNALS, received_signal

_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job and which device it computes on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None  # None for a single process without a process group

    @property
    def is_main(self) -> bool:
        """True on the process that writes logs, checkpoints and results (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when a process group with more than one process is running."""
        return self.world_size > 1


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> CUDA when available else CPU; ``"cuda"`` -> this process's GPU (checked)."""
    if preference not in ("auto", "cpu", "cuda"):
        raise ValueError(f"DEVICE must be auto, cpu or cuda, got {preference!r}")
    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("DEVICE is cuda but PyTorch sees no GPU: use DEVICE cpu or auto")
    if local_rank >= torch.cuda.device_count():
        raise RuntimeError(f"LOCAL_RANK {local_rank} has no GPU: only {torch.cuda.device_count()} "
                           f"visible; launch at most that many processes per node")
    return torch.device("cuda", local_rank)


def device_config_problems(cfg: CfgNode) -> list[str]:
    """Settings ``cfg`` asks of the GPU that this machine cannot give (the config checks DEVICE cpu itself)."""
    if torch.cuda.is_available() or cfg.DEVICE == "cpu":
        return []
    if cfg.DEVICE == "cuda":
        return ["DEVICE is cuda but PyTorch sees no GPU: use DEVICE cpu or auto"]
    problems: list[str] = []
    device_problems(cfg, "DEVICE is auto and PyTorch sees no GPU", problems.append)
    return problems


def resolve_backend(preference: str, device: torch.device) -> str:
    """``"auto"`` -> ``"nccl"`` on CUDA, ``"gloo"`` on CPU; NCCL without a GPU is refused."""
    if preference == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if preference == "nccl" and device.type != "cuda":
        raise ValueError("DIST_BACKEND nccl needs CUDA devices; use gloo (or auto) on CPU")
    return preference


def init_distributed(device_preference: str = "auto", backend_preference: str = "auto") -> DistContext:
    """Join the process group described by torchrun's variables, or run as a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext(0, 1, 0, resolve_device(device_preference), None)
    missing = [name for name in _TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise RuntimeError(f"WORLD_SIZE={world_size} but {', '.join(missing)} not set: launch "
                           f"multi-process runs with torchrun (e.g. torchrun --nproc_per_node N "
                           f"tools/run_net.py ...)")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    device = resolve_device(device_preference, local_rank)
    backend = resolve_backend(backend_preference, device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", rank=rank,
                                world_size=world_size)
    return DistContext(rank, world_size, local_rank, device, backend)


def shutdown_distributed() -> None:
    """Leave the process group (no-op for a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _group_active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if _group_active() else 0


def get_world_size() -> int:
    """Number of processes in the job (1 without a process group)."""
    return dist.get_world_size() if _group_active() else 1


def barrier() -> None:
    """Wait for every process (no-op for a single process)."""
    if _group_active():
        dist.barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every process's ``obj`` (any picklable object, sizes may differ), in rank order."""
    if not _group_active():
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum of ``values`` over all processes (a new tensor; input unchanged)."""
    total = values.clone()
    if _group_active():
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total


def any_process(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is True on at least one process (every process gets the same answer)."""
    return bool(all_reduce_sum(torch.tensor([float(flag)], device=device)).item() > 0)


def signal_flags(signum: int | None) -> list[float]:
    """One slot per handled signal (SIGTERM, SIGINT): 1.0 for ``signum``, else 0.0; summed over the
    processes, ``signal_from_flags`` reads the signal some process received."""
    return [float(signum == handled) for handled in HANDLED_SIGNALS]


def signal_from_flags(flags: Sequence[float]) -> int | None:
    """The signal of the first non-zero slot of ``signal_flags`` (SIGTERM before SIGINT), or None."""
    return next((int(handled) for handled, flag in zip(HANDLED_SIGNALS, flags, strict=True) if flag > 0), None)


def signal_on_any_process(device: torch.device) -> int | None:
    """The signal some process of the job received (``videovit.signals``), or None: a collective every
    process calls at the same point (just this process's record without a process group)."""
    if not _group_active():
        return received_signal()
    flags = torch.tensor(signal_flags(received_signal()), dtype=torch.float64, device=device)
    return signal_from_flags(all_reduce_sum(flags).tolist())


__all__ = ["DistContext", "all_gather_objects", "all_reduce_sum", "any_process", "barrier",
           "get_rank", "get_world_size", "init_distributed", "resolve_backend", "resolve_device",
           "shutdown_distributed", "signal_flags", "signal_from_flags", "signal_on_any_process"]
