"""The profiling hooks of the libraries users train with, on biren: accelerate's `accelerator.profile()`
(ProfileKwargs builds the torch.profiler it runs) and a Hugging Face Trainer callback stepping a
torch.profiler schedule (the way the Trainer docs profile), each recording the simulated device."""

import json

import torch
from accelerate.utils import ProfileKwargs

import torch_biren


def test_accelerate_profile_kwargs_record_the_device(tmp_path):
    # accelerate has no activity name for a PrivateUse1 device; left unset, torch.profiler takes every
    # supported activity, biren's included
    x = torch.randn(256, 256, device="biren")
    torch.biren.synchronize()
    start = torch_biren.sim.elapsed_ns()
    with ProfileKwargs(record_shapes=True).build() as prof:
        (x @ x).relu()
        torch.biren.synchronize()
    elapsed_us = (torch_biren.sim.elapsed_ns() - start) / 1e3
    kernels = [e for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.PrivateUse1]
    names = [e.key for e in kernels]
    assert any(n.startswith("triton: aten::mm") for n in names) and any("aten::relu" in n for n in names), names
    assert 0 < sum(e.self_device_time_total for e in kernels) <= elapsed_us


def test_trainer_callback_profiles_the_device(start, tmp_path):
    r = start("trainer_finetune.py", "--out", tmp_path / "dev", "--steps", 4, "--accum", 1, "--profile",
              tmp_path / "traces", env=dict(ACCELERATE_TORCH_DEVICE="biren")).result()
    assert r["device"] == "biren" and r["profiled_steps"] == 2  # schedule: wait 1, warmup 1, active 2
    (trace,) = (tmp_path / "traces").glob("*.json")
    events = json.loads(trace.read_text())["traceEvents"]
    device = [e for e in events if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy")]
    assert any(e["name"].startswith("triton: aten::mm") for e in device), sorted({e["name"] for e in device})
