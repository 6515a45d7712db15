"""Devices, mixed precision and several processes (``torchrun --nproc_per_node=K -m skel ...``).

One process per device. ``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; we then
join a process group (NCCL on CUDA, gloo on the CPU), wrap the model in DistributedDataParallel
and shard the data with a DistributedSampler. Only rank 0 logs and writes files.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistInfo:
    """Where this process runs: ``rank`` of ``world_size`` processes, on ``device``."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(choice: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cuda`` without a GPU is an error."""
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda was asked for but torch sees no CUDA device "
                               f"(torch {torch.__version__}, built with CUDA {torch.version.cuda})")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def setup(device_choice: str) -> DistInfo:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1); pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_choice, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def cleanup(info: DistInfo) -> None:
    """Wait for every rank, then leave the process group."""
    if info.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def wrap_model(model: nn.Module, info: DistInfo, find_unused_parameters: bool = False, sync_bn: bool = False) -> nn.Module:
    """DDP-wrapped model under several processes, the model itself otherwise.

    ``find_unused_parameters`` is needed when a step leaves parameters without gradient (the VQ
    latent's codebook rows under some options). ``sync_bn`` converts BatchNorm to SyncBatchNorm
    (CUDA only: statistics over the global batch).
    """
    if not info.distributed:
        return model
    if sync_bn and info.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=find_unused_parameters)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@contextlib.contextmanager
def deterministic(enabled: bool | None, device: torch.device) -> Iterator[bool]:
    """Deterministic kernels for this process (``None``: on for the CPU, off for CUDA).

    Without them, CPU ``index_put_(accumulate=True)`` (the backward of gathering ``att0`` at the
    visible positions) sums in thread order; Adam then turns the last-bit noise in gradients that
    are zero in exact arithmetic (conv biases followed by BatchNorm) into lr-sized steps, and two
    runs of one seed drift apart. ``warn_only``: an op with no deterministic kernel warns, not fails.
    The process's previous setting is restored on exit (a notebook keeps its own).
    """
    on = device.type == "cpu" if enabled is None else bool(enabled)
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    if on and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on, warn_only=True)
    try:
        yield on
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


# ---- mixed precision ----------------------------------------------------------------------
def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """bf16 on CUDA when supported, else fp16; None (full precision) on the CPU or when disabled."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    if dtype is None:
        yield
    else:
        with torch.autocast(device_type=device.type, dtype=dtype):
            yield


def make_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A GradScaler, active only for fp16 (bf16 has fp32's range and needs none)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


# ---- collectives --------------------------------------------------------------------------
def all_reduce_sum(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Sum a dict of numbers over ranks (same keys on every rank, in the same order)."""
    if not info.distributed or not values:
        return dict(values)
    keys = list(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return dict(zip(keys, t.tolist()))


def max_weight_difference(model: nn.Module, info: DistInfo) -> float:
    """Largest absolute difference of any parameter between this rank and rank 0 (over all ranks).

    0.0 when every rank holds the same weights, which DDP should guarantee; logged so a run shows
    it. Buffers are left out: BatchNorm running statistics follow each rank's own last batch (DDP
    re-broadcasts rank 0's at the next forward; rank 0's are the ones saved).
    """
    if not info.distributed:
        return 0.0
    flat = torch.cat([p.detach().float().reshape(-1) for p in unwrap(model).parameters()])
    ref = flat.clone()
    dist.broadcast(ref, src=0)
    diff = torch.tensor([(flat - ref).abs().max().item() if flat.numel() else 0.0], dtype=torch.float64, device=info.device)
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    return float(diff.item())


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
