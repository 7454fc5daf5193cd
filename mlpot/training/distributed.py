"""Distributed data parallel (DDP) glue for ``torchrun``.

``torchrun --nproc_per_node=N -m mlpot train CONFIG.yaml`` starts N processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` in their environment. :func:`init_distributed` turns that into a
process group: gloo on CPU, nccl on GPU (each rank on the GPU of its local rank). Every rank
builds the same global batches and trains on its share (:class:`~mlpot.training.batching.StructureBatches`);
the loss normalises by the global label counts, so the averaged gradient is that of one process
on the global batch. Rank 0 alone writes files.

The collectives the training loop needs (:func:`mean_over_ranks`, :func:`any_rank`) are identities
in a single process, so the loop has one code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

__all__ = [
    "DistInfo",
    "init_distributed",
    "resolve_device",
    "wrap_model",
    "barrier",
    "unwrap",
    "is_distributed",
    "process_rank",
    "mean_over_ranks",
    "any_rank",
]


@dataclass
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        """True on rank 0, which writes files and prints."""
        return self.rank == 0


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (the local rank's GPU when CUDA is available, else CPU)."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cuda":
        spec = f"cuda:{local_rank}"
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"trainer.device: {spec!r} requested but CUDA is not available")
    return device


def init_distributed(device_spec: str = "auto") -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment (no-op without it)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_spec, local_rank)
    if world_size <= 1:
        return DistInfo(device=device)
    initialized_here = False
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.distributed.init_process_group(backend=backend)
        initialized_here = True
    return DistInfo(
        rank=torch.distributed.get_rank(),
        world_size=torch.distributed.get_world_size(),
        local_rank=local_rank,
        device=device,
        initialized_here=initialized_here,
    )


def wrap_model(model: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """Wrap in DistributedDataParallel when running on several processes (else return ``model``)."""
    if info.world_size <= 1:
        return model
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DistributedDataParallel (or DataParallel) wrapper, else ``model``."""
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, torch.nn.Module) else model


def is_distributed() -> bool:
    """True inside an initialised process group."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def process_rank() -> int:
    """This process's rank (0 without a process group)."""
    return torch.distributed.get_rank() if is_distributed() else 0


def _communication_device() -> torch.device:
    """Where collective tensors must live: the current GPU for nccl, else the CPU."""
    if is_distributed() and torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Average a dict of floats over ranks (identity without a process group)."""
    if not is_distributed() or not values:
        return values
    keys = list(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=_communication_device())
    torch.distributed.all_reduce(t)
    t /= torch.distributed.get_world_size()
    return dict(zip(keys, t.cpu().tolist()))


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any (a signal reached one rank: all must stop)."""
    if not is_distributed():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], dtype=torch.float64, device=_communication_device())
    torch.distributed.all_reduce(t)
    return bool(t.item() > 0)
