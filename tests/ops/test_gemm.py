"""torch_biren.ops gemm: the charge follows what the cost depends on, the float32 matmul precision
included (fp32 GEMMs run as TF32 unless it is 'highest'), in both kernel modes."""

import pytest
import torch

import torch_biren
import torch_biren.ops as bops
from torch_biren import _C, sim


def _mm_ns(a, b):
    torch.biren.synchronize()
    _C._sim_reset(-1)
    a @ b
    torch.biren.synchronize()
    return sim.elapsed_ns(0)


@pytest.mark.parametrize("kind", ["triton", "reference"])
def test_changing_matmul_precision_changes_the_charge(kind):
    # compute-bound in fp32 (smaller GEMMs are memory-bound at either precision, and rightly cost the same)
    a, b = torch.randn(2048, 1024).to("biren"), torch.randn(1024, 2048).to("biren")
    old = torch.get_float32_matmul_precision()
    bops.set_kernels(kind)
    try:
        torch.set_float32_matmul_precision("highest")
        fp32 = _mm_ns(a, b)
        torch.set_float32_matmul_precision("high")
        tf32 = _mm_ns(a, b)  # same shapes: a memo keyed on shapes alone would repeat fp32's cost
        assert tf32 < fp32
        torch.set_float32_matmul_precision("highest")
        assert _mm_ns(a, b) == fp32
    finally:
        torch.set_float32_matmul_precision(old)
        bops.set_kernels("triton")


@pytest.mark.parametrize("mode", ["triton", "reference"])
def test_complex_gemms_run_and_are_charged_as_their_real_parts(mode):
    from torch_biren.sim import costs

    prev = torch_biren.ops.kernels_mode()
    torch_biren.ops.set_kernels(mode)
    try:
        a = torch.randn(8, 8, dtype=torch.complex64)
        assert torch.allclose((a.to("biren") @ a.to("biren")).cpu(), a @ a, atol=1e-5)
        x = torch.randn(4, 4, dtype=torch.complex64, device="biren", requires_grad=True)
        w, v = torch.linalg.eig(x)  # its backward is complex GEMMs
        (w.abs().sum() + v.abs().sum()).backward()
        assert x.grad.shape == (4, 4)
    finally:
        torch_biren.ops.set_kernels(prev)
    real = costs.gemm(64, 64, 64, 4, "fp32")
    assert costs.gemm(64, 64, 64, 1, "complex64") == real  # re*re, im*im, re*im, im*re


@pytest.mark.parametrize("mode", ["triton", "reference"])
@pytest.mark.parametrize("dtype, name", [(torch.int32, "Int"), (torch.int64, "Long"), (torch.int8, "Char")])
def test_integer_gemm_gives_cudas_error_and_the_device_stays_usable(mode, dtype, name):
    prev = torch_biren.ops.kernels_mode()
    torch_biren.ops.set_kernels(mode)
    try:
        i = torch.ones(3, 3, dtype=dtype, device="biren")
        with pytest.raises(RuntimeError, match=f'"mm_biren" not implemented for \'{name}\''):
            i @ i
        ones = torch.ones(2, 2, device="biren")
        assert (ones @ ones).sum().item() == 8
    finally:
        torch_biren.ops.set_kernels(prev)
