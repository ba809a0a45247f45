import pytest
import torch
import torch.nn.functional as F

from torch_biren.kernels import rms_norm_bwd, rms_norm_fwd

TOL = {torch.float32: dict(atol=1e-5, rtol=1.3e-6), torch.float16: dict(atol=1e-3, rtol=1e-3),
       torch.bfloat16: dict(atol=1.6e-2, rtol=1.6e-2)}


def inputs(shape, dtype, layout, gen):
    if layout == "transposed":  # rows that do not flatten to one level
        x = torch.randn(shape[1], shape[0], *shape[2:], generator=gen).to(dtype).transpose(0, 1)
    elif layout == "sliced":  # last dim strided
        x = torch.randn(*shape[:-1], 2 * shape[-1], generator=gen).to(dtype)[..., ::2]
    else:
        x = torch.randn(shape, generator=gen).to(dtype)
    return x, torch.randn(shape[-1], generator=gen).to(dtype), torch.randn(shape, generator=gen).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape,layout", [((1, 1), "c"), ((3, 5), "c"), ((2, 3, 40), "c"), ((4, 6, 64), "transposed"),
                                          ((5, 33), "sliced"), ((16, 256), "c")])
@pytest.mark.parametrize("with_weight", [True, False])
def test_rms_norm(dtype, shape, layout, with_weight):
    gen = torch.Generator().manual_seed(0)
    x, w, dy = inputs(shape, dtype, layout, gen)
    w = w if with_weight else None
    xr = x.double().requires_grad_()
    wr = w.double().requires_grad_() if with_weight else None
    ref = F.rms_norm(xr, (shape[-1], ), wr, eps=1e-6)
    ref.backward(dy.double())

    out, rstd = torch.empty_like(x), torch.empty(shape[:-1])
    rms_norm_fwd(x, w, out, eps=1e-6, rstd=rstd)
    torch.testing.assert_close(out, ref.detach().to(dtype), **TOL[dtype])
    for saved in (rstd, None):  # with the saved 1/rms and recomputing it
        dx = torch.empty_like(x)
        dw = torch.empty_like(w) if with_weight else None
        rms_norm_bwd(dy, x, w, dx, dw, rstd=saved, eps=1e-6)
        torch.testing.assert_close(dx, xr.grad.to(dtype), **TOL[dtype])
        if with_weight:  # a sum over rows
            torch.testing.assert_close(dw, wr.grad.to(dtype), atol=TOL[dtype]["atol"] * 4, rtol=TOL[dtype]["rtol"] * 4)


def test_default_eps_matches_torch():
    x = torch.randn(4, 8).bfloat16() * 1e-2
    out = torch.empty_like(x)
    rms_norm_fwd(x, None, out)
    torch.testing.assert_close(out, F.rms_norm(x, (8, )), **TOL[torch.bfloat16])  # eps = finfo(bfloat16).eps


def test_dw_partials_with_many_programs():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 5, 16, generator=gen).permute(2, 0, 1, 3)  # three row levels: one program each
    w, dy = torch.randn(16, generator=gen), torch.randn(5, 3, 4, 16, generator=gen)
    xr, wr = x.double().requires_grad_(), w.double().requires_grad_()
    F.rms_norm(xr, (16, ), wr, eps=1e-5).backward(dy.double())
    dx, dw = torch.empty_like(x), torch.empty_like(w)
    rms_norm_bwd(dy, x, w, dx, dw, eps=1e-5)
    torch.testing.assert_close(dx, xr.grad.float())
    torch.testing.assert_close(dw, wr.grad.float())
