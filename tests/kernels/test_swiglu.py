import pytest
import torch
import torch.nn.functional as F

from torch_biren.kernels import swiglu_bwd, swiglu_fwd

TOL = {torch.float32: dict(atol=1e-5, rtol=1.3e-6), torch.float16: dict(atol=1e-3, rtol=1e-3),
       torch.bfloat16: dict(atol=1.6e-2, rtol=1.6e-2)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (2, 7, 48), (64, 300)])
@pytest.mark.parametrize("fused", [False, True])
def test_swiglu(dtype, shape, fused):
    gen = torch.Generator().manual_seed(0)
    if fused:  # gate and up as halves of one projection output
        gate, up = (torch.randn(*shape[:-1], 2 * shape[-1], generator=gen) * 4).to(dtype).chunk(2, dim=-1)
    else:
        gate, up = ((torch.randn(shape, generator=gen) * 4).to(dtype) for _ in range(2))
    gr, ur = gate.double().requires_grad_(), up.double().requires_grad_()
    ref = F.silu(gr) * ur
    dy = torch.randn(shape, generator=gen).to(dtype)
    ref.backward(dy.double())
    out = torch.empty(shape, dtype=dtype)
    swiglu_fwd(gate, up, out)
    torch.testing.assert_close(out, ref.detach().to(dtype), **TOL[dtype])
    dgate, dup = torch.empty_like(out), torch.empty_like(out)
    swiglu_bwd(dy, gate, up, dgate, dup)
    torch.testing.assert_close(dgate, gr.grad.to(dtype), **TOL[dtype])
    torch.testing.assert_close(dup, ur.grad.to(dtype), **TOL[dtype])


def test_swiglu_bwd_in_place_and_extremes():
    gate = torch.tensor([[-100.0, -20.0, 0.0, 20.0, 100.0]])
    up, dy = torch.ones_like(gate), torch.ones_like(gate)
    gr = gate.double().requires_grad_()
    (F.silu(gr) * up.double()).backward(dy.double())
    ref_dgate, ref_dup = gr.grad.float(), F.silu(gate)
    swiglu_bwd(dy, gate, up, gate, up)
    torch.testing.assert_close(gate, ref_dgate)
    torch.testing.assert_close(up, ref_dup)
