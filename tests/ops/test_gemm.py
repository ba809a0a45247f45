"""torch_biren.ops gemm: the charge follows what the cost depends on, the float32 matmul precision
included (fp32 GEMMs run as TF32 unless it is 'highest'), in both kernel modes."""

import pytest
import torch

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
    a, b = torch.randn(512, 512).to("biren"), torch.randn(512, 512).to("biren")
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
