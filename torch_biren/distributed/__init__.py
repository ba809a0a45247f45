"""Distributed training on biren: the "bccl" process-group backend (Biren's NCCL counterpart).

    torchrun --nproc_per_node 2 train.py        # in train.py:
    dist.init_process_group("bccl")             # or "cpu:gloo,biren:bccl"; LOCAL_RANK picks the card
    model = DDP(model.to("biren"))              # or fully_shard(model) on a DeviceMesh("biren", ...)

Collectives run for real (gloo over zero-copy host views of device memory) and each is charged the
BR166 cluster's time on the issuing stream (sim/collectives.py). backend.py holds the process group,
work.py its Work objects, checks.py the argument and cross-rank checks, faults.py the diagnosis of
dead or hung ranks, placement.py the rank -> card mapping, cost.py the charging.
"""

NAME = "bccl"


def register():
    """Registers "bccl" with torch.distributed (cheap: the backend module loads on first use)."""
    import torch.distributed as dist

    if not dist.is_available() or NAME in dist.Backend.backend_list:
        return
    dist.Backend.register_backend(NAME, _create, extended_api=True, devices=["biren"])


def _create(dist_opts, backend_options):
    from .backend import create

    return create(dist_opts, backend_options)
