"""Scaling out with ``torch.distributed`` under ``torchrun`` (data parallel; no home-made scheduler).

``torchrun --nproc_per_node=N -m engine pretrain|train ...`` starts N engine processes; each one calls
:func:`setup` (from the environment variables torchrun sets: ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``/``MASTER_PORT``), takes GPU ``LOCAL_RANK`` (NCCL) or the CPU (Gloo), and wraps its model in
``DistributedDataParallel`` so gradients are averaged across processes:

- pretraining: every process draws its own random tiles (seed + rank), so the global batch is
  ``N x batch_size`` tiles per iteration;
- supervised training: every process takes its share of each batch of the same seeded permutation, so the
  result matches a single-process run with the same batch size (up to BatchNorm statistics per process).

Only rank 0 reports progress and writes checkpoints and outputs. ``classify`` and ``assess`` run in one process
(several GPUs classify different extents in parallel as separate runs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # torch is imported lazily: `info` / `doctor` / `--help` must not load it
    import torch


@dataclass
class DistInfo:
    """rank, world size, local rank (GPU index) of this process; ``world == 1`` without torchrun."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def info() -> DistInfo:
    """This process's place in the torchrun job (from the environment; no initialisation)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return DistInfo()
    return DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def setup(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Initialise the process group when started by torchrun; returns ``(info, device for this process)``.

    CUDA devices become ``cuda:LOCAL_RANK`` with the NCCL backend; the CPU uses Gloo.
    """
    d = info()
    if not d.enabled:
        return d, device
    import torch.distributed as dist

    import torch

    if device.type == "cuda":
        device = torch.device("cuda", d.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return d, device


def wrap(model: torch.nn.Module, device: torch.device, find_unused: bool = True) -> torch.nn.Module:
    """``DistributedDataParallel(model)`` under torchrun, else the model itself.

    ``find_unused``: let DDP skip parameters a forward pass did not use (ablation switches, branch heads).
    """
    if not info().enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)


def barrier() -> None:
    import torch.distributed as dist

    if info().enabled and dist.is_initialized():
        dist.barrier()


def teardown() -> None:
    """Destroy the process group (end of a command)."""
    import torch.distributed as dist

    if info().enabled and dist.is_initialized():
        dist.destroy_process_group()
