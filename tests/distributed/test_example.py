"""models/train_ddp.py under torchrun with 4 ranks (FSDP2) gives the single-process losses."""

import os
import re
import subprocess
import sys

import pytest
import torch

from . import launch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")


def single_process_losses(model_name, steps, global_batch, seq, lr):
    from torch_biren.adapt import data, zoo

    model = zoo.build(model_name, seed=0).train().to("biren")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    losses = []
    for ids in data.training_batches(steps, global_batch, seq):
        ids = ids.to("biren")
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(TORCHRUN), reason="torchrun not installed")
def test_torchrun_4_ranks_fsdp2_matches_single_process(tmp_path):
    cmd = [TORCHRUN, "--nproc_per_node", "4", "--master_port", str(launch.free_port()), os.path.join(ROOT, "models", "train_ddp.py"),
           "--model", "llama", "--fsdp", "--steps", "2", "--checkpoint", str(tmp_path / "ckpt")]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert p.returncode == 0, p.stdout + p.stderr[-4000:]
    losses = [float(x) for x in re.findall(r"^step +\d+ +loss ([0-9.]+)$", p.stdout, re.M)]
    assert len(losses) == 2 and "FSDP2 on 4 simulated cards" in p.stdout, p.stdout
    ref = single_process_losses("llama", 2, 8, 64, 3e-3)
    assert losses == pytest.approx(ref, abs=2e-4)  # printed to 4 decimals
    assert any(f.suffix == ".distcp" for f in (tmp_path / "ckpt").iterdir())
