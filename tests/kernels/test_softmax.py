import pytest
import torch

from torch_biren.kernels import softmax_bwd, softmax_fwd

TOL = {torch.float32: dict(atol=1e-5, rtol=1.3e-6), torch.float16: dict(atol=1e-3, rtol=1e-3),
       torch.bfloat16: dict(atol=1.6e-2, rtol=1.6e-2)}


def check_softmax(x, dtype_out=None):
    gen = torch.Generator().manual_seed(1)
    xr = x.double().requires_grad_()
    ref = torch.softmax(xr, -1)
    out = torch.empty(x.shape, dtype=dtype_out or x.dtype)
    dy = torch.randn(x.shape, generator=gen).to(out.dtype)
    ref.backward(dy.double())
    softmax_fwd(x, out)
    torch.testing.assert_close(out, ref.detach().to(out.dtype), **TOL[out.dtype])
    dx = torch.empty_like(out)
    softmax_bwd(dy, out, dx)
    torch.testing.assert_close(dx, xr.grad.to(out.dtype), **TOL[out.dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (2, 3, 40), (4, 1000)])
def test_softmax(dtype, shape):
    gen = torch.Generator().manual_seed(0)
    check_softmax((torch.randn(shape, generator=gen) * 3).to(dtype))


def test_softmax_strided_masked_and_out_dtype():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 30, 3, 17, generator=gen).transpose(1, 2)
    x[..., 3] = float("-inf")
    check_softmax(x)
    check_softmax(torch.randn(5, 40, generator=gen).bfloat16(), dtype_out=torch.float32)


def test_softmax_column_blocks(monkeypatch):
    from torch_biren.kernels import softmax
    monkeypatch.setattr(softmax, "_CPU_TILE", 64)  # rows wider than a tile: the two-pass path
    gen = torch.Generator().manual_seed(3)
    check_softmax(torch.randn(3, 200, generator=gen) * 5)
    check_softmax(torch.randn(3, 200, generator=gen).bfloat16())
