"""Which card a rank drives and where the cards sit.

Every process sees the cards of its simulated server (8 by default; BIREN_VISIBLE_DEVICES selects
them), as each process on a CUDA server sees all its GPUs. A launcher's LOCAL_RANK picks the card:
the bccl backend calls torch.biren.set_device(LOCAL_RANK) when the process has not chosen one.
Ranks fill servers in order: LOCAL_WORLD_SIZE ranks per server under torchrun on several nodes,
otherwise as many as a server has cards.
"""

import os

import torch


def assign_device():
    """torch.biren.set_device(LOCAL_RANK) unless the process already picked another card; the card."""
    local = os.environ.get("LOCAL_RANK")
    current = torch.biren.current_device()
    if local is None:
        return current
    try:
        local = int(local)
    except ValueError:
        raise ValueError(f"LOCAL_RANK must be an integer, got {os.environ['LOCAL_RANK']!r}") from None
    n = torch.biren.device_count()
    if not 0 <= local < n:
        vis = os.environ.get("BIREN_VISIBLE_DEVICES")
        raise RuntimeError(
            f"bccl: LOCAL_RANK={local} but this process sees {n} biren device(s)"
            + (f" (BIREN_VISIBLE_DEVICES={vis})" if vis is not None else " (one simulated server)")
            + "; start at most that many processes per node (torchrun --nproc_per_node)"
        )
    if current == 0 and local != 0:
        torch.biren.set_device(local)
        return local
    return current


def cards_per_server(world_size):
    """Ranks per simulated server for a job of `world_size` ranks."""
    local_world = os.environ.get("LOCAL_WORLD_SIZE")
    if local_world is not None and local_world.isdigit() and 0 < int(local_world) < world_size:
        return int(local_world)
    return max(1, torch.biren.device_count())


def ranks_per_server(global_ranks, per_server):
    """How many of a group's ranks share a server (the most on any one)."""
    counts = {}
    for r in global_ranks:
        counts[r // per_server] = counts.get(r // per_server, 0) + 1
    return max(counts.values()) if counts else 1
