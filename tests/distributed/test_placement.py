"""LOCAL_RANK picks the card; BIREN_VISIBLE_DEVICES limits what a process sees; "bccl" registers at
import, cheaply, and both backend strings work."""

import torch
import torch.distributed as dist

from subprocess_run import run_python

INIT = """
import datetime, torch, torch.distributed as dist
store = dist.HashStore()
dist.init_process_group({backend!r}, store=store, rank=0, world_size=1, timeout=datetime.timedelta(seconds=5))
print("DEVICE", torch.biren.current_device(), type(dist.group.WORLD).__name__, dist.get_backend())
t = torch.ones(3, device="biren")
dist.all_reduce(t)
print("SUM", t.sum().item())
"""


def test_bccl_is_registered_lazily():
    assert "bccl" in dist.Backend.backend_list
    assert dist.Backend.default_device_backend_map["biren"] == "bccl"
    p = run_python("import sys, torch; print('torch_biren.distributed.backend' in sys.modules)")
    assert p.stdout.strip() == "False", p.stderr


def test_local_rank_picks_the_card_and_both_backend_strings_work():
    p = run_python(INIT.format(backend="cpu:gloo,biren:bccl"), env={"LOCAL_RANK": "5"})
    assert "DEVICE 5 ProcessGroupBCCL bccl" in p.stdout or "DEVICE 5 ProcessGroupBCCL" in p.stdout, p.stderr[-3000:]
    assert "SUM 3.0" in p.stdout


def test_local_rank_beyond_visible_cards_is_a_clear_error():
    p = run_python(INIT.format(backend="bccl"), env={"LOCAL_RANK": "2", "BIREN_VISIBLE_DEVICES": "0,1"})
    assert p.returncode != 0
    assert "LOCAL_RANK=2 but this process sees 2 biren device(s) (BIREN_VISIBLE_DEVICES=0,1)" in p.stderr, p.stderr[-3000:]


def test_single_rank_group_on_biren():
    assert torch.biren.device_count() == 8  # one simulated server per process
