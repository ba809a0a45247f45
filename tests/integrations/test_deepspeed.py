"""DeepSpeed on biren: torch_biren's DeepSpeedAccelerator, ZeRO stages 1 and 2 in one process, against
the same run on DeepSpeed's CPU accelerator."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from integration_runs import clean_env, free_port

pytestmark = pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None,
                                reason="DeepSpeed is not installed (make test installs deepspeed==0.19.8)")
needs_bccl = pytest.mark.skipif("bccl" not in torch.distributed.Backend.backend_list,
                                reason="ZeRO needs collectives on biren tensors: the 'bccl' backend "
                                       "(torch_biren.distributed) is not registered in this build")


@needs_bccl
@pytest.mark.slow  # make test-slow
def test_zero_stage1_and_2_one_process(start):
    dev = start("deepspeed_zero.py", "biren", free_port())
    cpu = start("deepspeed_zero.py", "cpu", free_port())
    dev, cpu = dev.result(), cpu.result()
    assert dev["accelerator"] == "biren" and dev["backend"] == "bccl"
    assert "bccl:all_reduce" in dev["collectives"]
    z1, z2 = dev["zero1_fp32"], dev["zero2_bf16"]
    for run, stage, dtype in ((z1, 1, "float32"), (z2, 2, "bfloat16")):
        assert run["stage"] == stage and run["optimizer"] == "DeepSpeedZeroOptimizer"
        assert run["device"] == "biren:0" and run["params"] == ["biren"] and run["dtypes"] == [dtype]
        assert run["losses"][-1] < run["losses"][0] - 0.5, run["losses"]
    # fp32: the same arithmetic as DeepSpeed on the CPU, step for step
    for d, c in zip(z1["losses"], cpu["zero1_fp32"]["losses"]):
        assert abs(d - c) <= 1e-5 * c, (z1["losses"], cpu["zero1_fp32"]["losses"])
    for d, c in zip(z2["losses"], cpu["zero2_bf16"]["losses"]):
        assert abs(d - c) <= 2e-3 * c, (z2["losses"], cpu["zero2_bf16"]["losses"])


@needs_bccl
@pytest.mark.slow  # make test-slow
def test_zero2_two_processes(start, tmp_path):
    # both ranks get the same batches: ZeRO-2 partitioned over two cards must reproduce one card's losses
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
                "--master_port", str(free_port()), str(Path(__file__).parent / "deepspeed_zero.py")]
    run = start(torchrun, "biren", "0", tmp_path, timeout=180)
    one = start("deepspeed_zero.py", "cpu", free_port())
    run.finish()
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    reference = one.result()["zero2_bf16"]["losses"]
    for r, result in enumerate(ranks):
        z2 = result["zero2_bf16"]
        assert result["world"] == 2 and result["backend"] == "bccl" and z2["device"] == f"biren:{r}"
        assert "bccl:all_gather_into_tensor" in result["collectives"] or "bccl:all_gather" in result["collectives"], \
            result["collectives"]
        for d, c in zip(z2["losses"], reference):
            assert abs(d - c) <= 2e-3 * c, (z2["losses"], reference)


def test_accelerator_interface():
    # every abstract method implemented, names and memory from torch.biren; set by DS_ACCELERATOR=biren
    code = """
import torch
from deepspeed.accelerator import get_accelerator
a = get_accelerator()
t = a.FloatTensor(3)
print(a._name, a.device_name(1), a.communication_backend_name(), a.device_count() == torch.biren.device_count(),
      t.device.type, a.on_accelerator(t), a.total_memory(0) == torch.biren.get_device_properties(0).total_memory,
      a.is_bf16_supported(), a.create_op_builder('FusedAdamBuilder'), a.visible_devices_envs())
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=clean_env(DS_ACCELERATOR="biren"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["biren", "biren:1", "bccl", "True", "biren", "True", "True", "True", "None",
                                   "['BIREN_VISIBLE_DEVICES']"], proc.stdout
    assert "Setting accelerator to CPU" not in proc.stderr
