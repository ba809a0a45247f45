"""The library adapters: applied once each library is imported (also when torch is first imported from
inside one of them), idempotent, version-gated, and changing nothing unless biren is selected."""

import subprocess
import sys
import textwrap

import pytest

import torch_biren.integrations as integrations
from integration_runs import clean_env


def test_all_applied_when_torch_is_imported_from_inside_accelerate():
    # accelerate.accelerator imports torch, which loads torch_biren while accelerate.accelerator is half done
    code = textwrap.dedent("""
        from accelerate import Accelerator
        import transformers.training_args, torch_biren.integrations as i
        print(sorted(i.status().items()))
        print('biren' in Accelerator.__init__.__code__.co_consts[
            [k for k, c in enumerate(Accelerator.__init__.__code__.co_consts) if isinstance(c, tuple) and 'cuda' in c][0]])
    """)
    proc = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code], capture_output=True,
                          text=True, timeout=120, env=clean_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    status, fp16 = proc.stdout.splitlines()
    assert "('accelerate.Accelerator', 'applied')" in status and "('accelerate.PartialState', 'applied')" in status
    assert "('transformers.TrainingArguments', 'applied')" in status
    assert fp16 == "True"


def test_bf16_check_follows_selection(monkeypatch):
    import transformers.training_args as ta

    monkeypatch.delenv("ACCELERATE_TORCH_DEVICE", raising=False)
    monkeypatch.delenv("DS_ACCELERATOR", raising=False)
    assert ta.is_torch_bf16_gpu_available() is False  # no CUDA here, biren not selected: transformers' answer
    monkeypatch.setenv("ACCELERATE_TORCH_DEVICE", "biren:1")
    assert ta.is_torch_bf16_gpu_available() is True
    monkeypatch.setenv("ACCELERATE_TORCH_DEVICE", "cpu")
    assert ta.is_torch_bf16_gpu_available() is False


def test_idempotent():
    import accelerate.accelerator as acc
    import transformers.training_args as ta

    before = (ta.is_torch_bf16_gpu_available, ta.TrainingArguments.__dict__["_setup_devices"],
              acc.get_grad_scaler, acc.Accelerator.__init__.__code__)
    integrations.install()
    for adapter in ("transformers", "accelerate"):
        getattr(integrations, adapter).register_all()
    from torch_biren.integrations import accelerate as a, transformers as t

    t._apply_training_args(ta)
    a._apply_accelerator(acc)
    after = (ta.is_torch_bf16_gpu_available, ta.TrainingArguments.__dict__["_setup_devices"],
             acc.get_grad_scaler, acc.Accelerator.__init__.__code__)
    assert after == before
    assert acc.Accelerator.__init__.__code__.co_consts.count("biren") == 0  # 'biren' only inside the one tuple


def test_version_gate(tmp_path, monkeypatch):
    (tmp_path / "biren_adapter_probe.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    applied = []
    integrations.register("probe.old", "biren_adapter_probe", applied.append, lambda v: v < (1,), "torch")
    integrations.register("probe.new", "biren_adapter_probe", applied.append, lambda v: v >= (2,), "torch")
    with pytest.warns(RuntimeWarning, match="probe.old"):
        import biren_adapter_probe
    assert applied == [biren_adapter_probe]  # only the adapter for this torch version ran
    status = integrations.status()
    assert status["probe.new"] == "applied" and status["probe.old"].startswith("skipped: torch 2.")
    sys.modules.pop("biren_adapter_probe")
    integrations._hooks.pop("biren_adapter_probe")
    for name in ("probe.old", "probe.new"):
        integrations._status.pop(name)


def test_version_tuple():
    assert integrations.version_tuple("1.15.0") == (1, 15, 0)
    assert integrations.version_tuple("0.19.8+cpu") == (0, 19, 8)
    assert integrations.version_tuple("5.0.0rc1") == (5, 0, 0)
    assert integrations.version_tuple("2.13.0.dev20260101") == (2, 13, 0)


def test_transformers_test_device_spec(start, tmp_path):
    # transformers' own test utilities target biren through TRANSFORMERS_TEST_DEVICE_SPEC
    start([sys.executable, "-m", "torch_biren.integrations.transformers_device_spec"]).finish()
    (tmp_path / "test_probe.py").write_text(textwrap.dedent("""
        import torch
        from transformers import LlamaConfig, LlamaModel
        from transformers.testing_utils import (backend_device_count, backend_manual_seed, backend_memory_allocated,
                                                require_torch_accelerator, torch_device)

        @require_torch_accelerator
        def test_on_device():
            assert torch_device == "biren" and backend_device_count(torch_device) == torch.biren.device_count()
            backend_manual_seed(torch_device, 0)
            a = torch.randn(4, device=torch_device)
            backend_manual_seed(torch_device, 0)
            assert torch.equal(a, torch.randn(4, device=torch_device))
            model = LlamaModel(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                           num_attention_heads=2, num_key_value_heads=1)).to(torch_device)
            out = model(torch.tensor([[1, 2, 3]], device=torch_device)).last_hidden_state
            assert out.device.type == "biren" and backend_memory_allocated(torch_device) > 0
    """))
    run = start([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                 "test_probe.py"], env=dict(TRANSFORMERS_TEST_DEVICE_SPEC="biren_device_spec.py"))
    assert "1 passed" in run.finish().out
