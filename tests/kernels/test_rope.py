import pytest
import torch

from torch_biren.kernels import rope, rope_bwd, rope_fwd

TOL = {torch.float32: dict(atol=1e-5, rtol=1.3e-6), torch.bfloat16: dict(atol=1.6e-2, rtol=1.6e-2)}


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def hf_cos_sin(B, L, D, gen, dtype):
    # Hugging Face layout: emb = cat(freqs, freqs), positions per batch
    inv = 1.0 / (10000 ** (torch.arange(0, D, 2).double() / D))
    pos = torch.randint(0, 100, (B, L), generator=gen).double()
    emb = torch.cat([pos[..., None] * inv] * 2, dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("B,H,L,D", [(1, 1, 1, 16), (2, 3, 7, 64), (1, 4, 33, 128), (2, 2, 5, 80)])
@pytest.mark.parametrize("transposed", [False, True])
def test_rope_fwd_bwd(dtype, B, H, L, D, transposed):
    gen = torch.Generator().manual_seed(0)
    if transposed:  # [B, L, H, D] projection output viewed as [B, H, L, D]
        x = torch.randn(B, L, H, D, generator=gen).to(dtype).transpose(1, 2)
    else:
        x = torch.randn(B, H, L, D, generator=gen).to(dtype)
    cos, sin = hf_cos_sin(B, L, D, gen, dtype)
    xr = x.double().requires_grad_()
    ref = xr * cos.double()[:, None] + rotate_half(xr) * sin.double()[:, None]
    dy = torch.randn(ref.shape, generator=gen).to(dtype)
    ref.backward(dy.double())
    out = torch.empty_like(x)
    rope_fwd(x, cos, sin, out)
    torch.testing.assert_close(out, ref.detach().to(dtype), **TOL[dtype])
    dx = torch.empty_like(x)
    rope_bwd(dy, cos, sin, dx)
    torch.testing.assert_close(dx, xr.grad.to(dtype), **TOL[dtype])


def test_rope_general_cos_sin_backward():
    # cos/sin halves that differ (not the HF layout) still get the exact transpose
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 6, 32, generator=gen, dtype=torch.float64).float()
    cos, sin = torch.randn(6, 32, generator=gen), torch.randn(6, 32, generator=gen)
    xr = x.double().requires_grad_()
    (xr * cos.double() + rotate_half(xr) * sin.double()).backward(torch.ones(1, 2, 6, 32, dtype=torch.float64))
    dx = torch.empty_like(x)
    rope_bwd(torch.ones_like(x), cos, sin, dx)
    torch.testing.assert_close(dx, xr.grad.float())


def test_rope_q_k_in_place():
    gen = torch.Generator().manual_seed(2)
    q, k = torch.randn(2, 4, 9, 64, generator=gen), torch.randn(2, 2, 9, 64, generator=gen)
    cos, sin = hf_cos_sin(2, 9, 64, gen, torch.float32)
    q_ref = q * cos[:, None] + rotate_half(q) * sin[:, None]
    k_ref = k * cos[:, None] + rotate_half(k) * sin[:, None]
    rope(q, k, cos, sin, q, k)
    torch.testing.assert_close(q, q_ref)
    torch.testing.assert_close(k, k_ref)
