"""`accelerate launch` with two processes on biren, selected by ACCELERATE_TORCH_DEVICE=biren or by the
CUDA migration, collectives on the bccl backend: a plain accelerate loop, and a Trainer fine-tune."""

import json
import os
import sys

import pytest
import torch

from integration_runs import free_port

pytestmark = pytest.mark.slow  # multi-process runs: make test-slow (make test leaves them out)

ACCELERATE = os.path.join(os.path.dirname(sys.executable), "accelerate")
needs_bccl = pytest.mark.skipif("bccl" not in torch.distributed.Backend.backend_list,
                                reason="two processes need the 'bccl' collective backend (torch_biren.distributed), "
                                       "which is not registered in this build")


def _launch(port, script, *args):
    return [ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--dynamo_backend",
            "no", "--main_process_port", str(port), os.path.join(os.path.dirname(__file__), script), *map(str, args)]


@needs_bccl
@pytest.mark.skipif(not os.path.exists(ACCELERATE), reason="accelerate is not installed")
def test_launch_cuda_script_two_processes(start, tmp_path):
    # accelerate sees 'cuda' (the migration) and asks for nccl, which becomes bccl
    env = dict(TORCH_BIREN_MIGRATE_CUDA="1", TORCH_BIREN_MIGRATE_QUIET="1")
    start(_launch(free_port(), "accelerate_train.py", 3, tmp_path), env=env, timeout=180).finish()
    results = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["rank"] for r in results] == [0, 1]
    for r in results:
        assert r["world"] == 2 and r["backend"] == "bccl" and r["distributed"] == "DistributedType.MULTI_GPU", r
        assert r["device"] == f"biren:{r['rank']}" == r["param_device"], r
        assert r["losses"] == results[0]["losses"]  # gathered: the same on both ranks
        assert r["checksum"][0] == r["checksum"][1]  # the replicas' weights stayed identical
    losses = results[0]["losses"]
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.3, losses


@needs_bccl
@pytest.mark.skipif(not os.path.exists(ACCELERATE), reason="accelerate is not installed")
def test_trainer_two_processes(start, tmp_path):
    # ACCELERATE_TORCH_DEVICE=biren: the accelerate adapter picks bccl and card LOCAL_RANK
    start(_launch(free_port(), "trainer_finetune.py", "--out", tmp_path, "--steps", 4),
          env=dict(ACCELERATE_TORCH_DEVICE="biren"), timeout=180).finish()
    r0, r1 = (json.loads((tmp_path / f"result{rank}.json").read_text()) for rank in (0, 1))
    assert (r0["device"], r1["device"]) == ("biren:0", "biren:1")
    assert r0["losses"] == r1["losses"] and r0["losses"][-1] < r0["losses"][0] - 0.5  # logged: mean over ranks
    assert r0["param_devices"] == r1["param_devices"] == ["biren"] and r0["n_gpu"] == 1
