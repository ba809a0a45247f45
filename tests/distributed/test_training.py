"""DDP and FSDP2 (fully_shard on a biren DeviceMesh) in 2-rank jobs give the losses of one process
training on the same global batch; a torch.distributed.checkpoint save/load resumes FSDP2 exactly."""

import json

import pytest

from . import launch


def results(rank):
    return [json.loads(line[7:]) for line in rank.out.splitlines() if line.startswith("RESULT ")][-1]


def test_ddp_matches_single_process():
    r0, r1 = [results(r.check()) for r in launch.run("ddp", world=2, timeout=90)]
    assert r0["losses"] == r1["losses"]  # every rank sees the same global loss
    assert r0["losses"] == pytest.approx(r0["ref"], abs=1e-5)
    assert r0["max_param_diff"] < 1e-5
    assert r0["losses"][-1] < r0["losses"][0]
    assert r0["sim_ms"] > 0


def test_fsdp2_matches_single_process_and_resumes_from_dcp(tmp_path):
    r0, r1 = [results(r.check()) for r in launch.run("fsdp", world=2, args=[tmp_path / "ckpt"], timeout=120)]
    assert r0["losses"] == pytest.approx(r0["ref"], abs=1e-5)
    assert r0["losses"] == r1["losses"]
    assert r0["resumed"] == r0["after"] and r1["resumed"] == r1["after"]  # exact resume
    assert {"bccl:all_gather_into_tensor", "bccl:reduce_scatter_tensor"} <= set(r0["bccl_ops"])
    assert any(p.suffix == ".distcp" for p in (tmp_path / "ckpt").iterdir())
