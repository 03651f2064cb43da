"""Where a loader runs and what each rank reads: the device (``"auto"``), the shard
``(rank, world size)`` under torch.distributed, and the batch sizes of a rank's epoch."""

from __future__ import annotations

import logging
import math

log = logging.getLogger("gpuaug.loader")
_auto_told = set()


def _auto_shard():
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except ImportError:
        pass
    return 0, 1


def resolve_device(device: str) -> str:
    """``"auto"``: ``"cuda:N"`` (torch's current device) when torch sees a GPU, else
    ``"cpu"`` -- logged once per process; other values pass through."""
    if device != "auto":
        return device
    try:
        import torch

        chosen = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    except ImportError:
        chosen = "cpu"
    if chosen not in _auto_told:
        _auto_told.add(chosen)
        why = "torch sees a CUDA device" if chosen != "cpu" else "torch sees no CUDA device: a CPU DALI pipeline"
        log.warning("gpuaug loader: device='auto' -> %s (%s; pass device= to choose)", chosen, why)
    return chosen


def _device_id(device: str):
    if device == "cpu":
        return None
    if device == "cuda":
        import torch

        return torch.cuda.current_device()
    if device.startswith("cuda:"):
        return int(device.split(":", 1)[1])
    raise ValueError(f"device must be 'auto', 'cuda', 'cuda:N' or 'cpu', got {device!r}")


def batch_sizes(n_total: int, batch_size: int, shard_id: int, num_shards: int, drop_last: bool) -> list[int]:
    """The batch sizes rank ``shard_id`` yields in one epoch (see the module notes)."""
    if drop_last:
        return [batch_size] * ((n_total // num_shards) // batch_size)
    mine = (shard_id + 1) * n_total // num_shards - shard_id * n_total // num_shards
    count = math.ceil(math.ceil(n_total / num_shards) / batch_size)
    sizes = [batch_size] * (mine // batch_size) + ([mine % batch_size] if mine % batch_size else [])
    if len(sizes) < count:  # one sample short of the other ranks' batch count
        sizes = sizes[:-1] + [batch_size - 1, 1] if batch_size > 1 else sizes + [1]
    return sizes
