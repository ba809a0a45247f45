"""Bad input gets a clear message, as on CUDA, and leaves the device usable."""

import pytest
import torch

from subprocess_run import run_python


def test_numpy_on_device_tensor():
    x = torch.ones(2, device="biren")
    with pytest.raises(TypeError, match="can't convert biren:0 device type tensor to numpy. Use Tensor.cpu()"):
        x.numpy()
    assert x.cpu().numpy().tolist() == [1.0, 1.0]


def test_float64_warns_by_default_and_errors_when_forbidden():
    x = torch.ones(2, dtype=torch.float64, device="biren")
    assert (x * 2).sum().item() == 4.0
    r = run_python(
        "import torch\n"
        "try:\n"
        "    torch.ones(2, device='biren').double()\n"
        "except TypeError as e:\n"
        "    print(e)\n"
        "print(torch.ones(2, device='biren').sum().item())\n",
        env={"TORCH_BIREN_FP64": "error"},
    )
    assert "BR1xx hardware has no FP64 units, and TORCH_BIREN_FP64=error forbids emulating it" in r.stdout, r.stderr
    assert r.stdout.strip().endswith("2.0")


def test_sparse_layout_is_unsupported():
    with pytest.raises(NotImplementedError):
        torch.ones(2, 2).to_sparse().to("biren")


def test_device_mismatch_message_names_the_argument():
    a = torch.ones(2, 2, device="biren")
    with pytest.raises(RuntimeError, match=r"when checking argument 'mat2' of aten::mm"):
        torch.mm(a, torch.ones(2, 2))
    assert torch.mm(a, a).sum().item() == 8.0


def test_printing_uses_no_fp64_of_the_users():
    r = run_python("import torch, warnings; warnings.simplefilter('error'); print(torch.arange(3.0, device='biren'))",
                   env={"TORCH_BIREN_FP64": "error"})
    assert r.stdout.strip() == "tensor([0., 1., 2.], device='biren:0')", r.stderr


def test_grad_scaler_needs_no_fp64_of_the_users():
    # GradScaler.unscale_ takes its scale's reciprocal in float64: PyTorch's temporary, not the user's.
    r = run_python(
        "import torch, warnings; warnings.simplefilter('error'); torch.manual_seed(0)\n"
        "m = torch.nn.Linear(4, 2).to('biren'); opt = torch.optim.SGD(m.parameters(), lr=0.1)\n"
        "scaler = torch.amp.GradScaler('biren', init_scale=1024.0)\n"
        "with torch.autocast('biren', dtype=torch.float16):\n"
        "    loss = m(torch.randn(3, 4, device='biren')).float().pow(2).mean()\n"
        "scaler.scale(loss).backward(); scaler.step(opt); scaler.update()\n"
        "print('stepped', scaler.get_scale())\n",
        env={"TORCH_BIREN_FP64": "error"})
    assert r.stdout.strip() == "stepped 1024.0", r.stderr


def test_fp16_overflow_is_silent_as_on_a_gpu():
    # A GradScaler's first steps overflow fp16 on purpose; compiled kernels give inf without a word.
    a = torch.full((4, 4), 300.0, device="biren", dtype=torch.float16)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.isinf(a @ a).all()


def test_op_without_any_kernel_says_so():
    a = torch.ones(2, 2, device="biren", dtype=torch.bfloat16)
    with pytest.raises(NotImplementedError) as err:
        torch.mm(a, a, out_dtype=torch.float32)  # CUDA-only overload
    assert str(err.value).splitlines()[0] == (
        "biren: aten::mm.dtype is not supported on biren: it has no device kernel, and PyTorch has no CPU kernel "
        "for the fallback to run (it is implemented only for other accelerators).")
    assert torch.mm(a, a).sum().item() == 8.0
