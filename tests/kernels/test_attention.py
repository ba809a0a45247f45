import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from torch_biren.kernels import attention_bwd, attention_fwd

TOL = {torch.float32: dict(atol=1e-5, rtol=1.3e-6), torch.float16: dict(atol=2e-3, rtol=2e-3),
       torch.bfloat16: dict(atol=1.6e-2, rtol=1.6e-2)}


def make(shape, dtype, gen, transposed=False):
    """[B, H, L, D] values, optionally stored as [B, L, H, D] (the usual projection output) and viewed."""
    if transposed:
        B, H, L, D = shape
        return torch.randn(B, L, H, D, generator=gen).to(dtype).transpose(1, 2)
    return torch.randn(shape, generator=gen).to(dtype)


def run(B, H, Hkv, Lq, Lk, Dk, Dv, dtype=torch.float32, causal=False, mask=None, scale=None, transposed=False,
        seed=0, backward=True):
    gen = torch.Generator().manual_seed(seed)
    q = make((B, H, Lq, Dk), dtype, gen, transposed)
    k = make((B, Hkv, Lk, Dk), dtype, gen, transposed)
    v = make((B, Hkv, Lk, Dv), dtype, gen, transposed)
    dout = torch.randn(B, H, Lq, Dv, generator=gen).to(dtype)
    # reference in float64 (float32 inputs) or float32 (half inputs), rounded once to the dtype
    ref_dtype = torch.float64 if dtype == torch.float32 else torch.float32
    qr, kr, vr = (t.detach().to(ref_dtype).requires_grad_() for t in (q, k, v))
    mr = mask.to(ref_dtype) if mask is not None and mask.is_floating_point() else mask
    ref = F.scaled_dot_product_attention(qr, kr, vr, attn_mask=mr, is_causal=causal, scale=scale,
                                         enable_gqa=H != Hkv)
    ref.backward(dout.to(ref_dtype))

    out = torch.empty(B, H, Lq, Dv, dtype=dtype)
    lse = torch.empty(B, H, Lq)
    attention_fwd(q, k, v, out, lse, mask=mask, causal=causal, scale=scale)
    tol = TOL[dtype]
    torch.testing.assert_close(out, ref.detach().to(dtype), **tol)
    if not backward:
        return
    dq, dk, dv = torch.empty_like(q), torch.empty(B, Lk, Hkv, Dk, dtype=dtype).transpose(1, 2), torch.empty_like(v)
    attention_bwd(q, k, v, out, lse, dout, dq, dk, dv, mask=mask, causal=causal, scale=scale)
    # gradients sum Lk (or Lq) terms: allow a few float32 ulps per term
    gtol = {key: val * max(1.0, max(Lq, Lk) / 16) for key, val in tol.items()} if dtype == torch.float32 else tol
    torch.testing.assert_close(dq, qr.grad.to(dtype), **gtol)
    torch.testing.assert_close(dk, kr.grad.to(dtype), **gtol)
    torch.testing.assert_close(dv, vr.grad.to(dtype), **gtol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("causal", [False, True])
def test_basic(dtype, causal):
    run(2, 3, 3, 19, 19, 64, 64, dtype=dtype, causal=causal)


@pytest.mark.parametrize("Lq,Lk", [(1, 37), (5, 40), (40, 5), (33, 17)])
@pytest.mark.parametrize("causal", [False, True])
def test_lq_ne_lk(Lq, Lk, causal):
    run(1, 2, 2, Lq, Lk, 32, 32, causal=causal)


@pytest.mark.parametrize("H,Hkv", [(4, 2), (8, 2), (4, 1)])
@pytest.mark.parametrize("causal", [False, True])
def test_gqa_mqa(H, Hkv, causal):
    run(2, H, Hkv, 13, 21, 32, 32, causal=causal)


@pytest.mark.parametrize("Dk,Dv", [(64, 64), (128, 128), (256, 256), (192, 128), (80, 48)])
def test_head_dims(Dk, Dv):
    run(1, 2, 1, 9, 14, Dk, Dv, causal=True)


def test_mla_bf16():
    run(1, 4, 4, 16, 16, 192, 128, dtype=torch.bfloat16, causal=True)


@pytest.mark.parametrize("mask_shape", [(11, 23), (2, 1, 11, 23), (2, 1, 1, 23), (1, 3, 11, 23)])
@pytest.mark.parametrize("kind", ["bool", "float"])
def test_masks(mask_shape, kind):
    gen = torch.Generator().manual_seed(7)
    if kind == "bool":
        mask = torch.rand(mask_shape, generator=gen) > 0.3
        mask[..., 0] = True  # keep every row attending somewhere
    else:
        mask = torch.randn(mask_shape, generator=gen) * 2
    run(2, 3, 3, 11, 23, 32, 32, mask=mask)


def test_mask_with_causal_and_gqa():
    gen = torch.Generator().manual_seed(8)
    mask = torch.rand(2, 1, 1, 30, generator=gen) > 0.5
    mask[..., 0] = True
    run(2, 4, 2, 30, 30, 32, 32, mask=mask, causal=True)


def test_fully_masked_rows_are_zero():
    mask = torch.ones(6, 10, dtype=torch.bool)
    mask[2] = False
    run(1, 2, 2, 6, 10, 32, 32, mask=mask)
    fmask = torch.zeros(6, 10)
    fmask[4] = float("-inf")
    run(1, 2, 2, 6, 10, 32, 32, mask=fmask)


def test_scale_and_strided_inputs():
    run(2, 4, 2, 17, 25, 64, 64, scale=0.37, transposed=True)
    run(1, 2, 2, 17, 25, 64, 64, scale=1 / math.sqrt(17), transposed=True, dtype=torch.bfloat16)


def test_multiple_blocks(monkeypatch):
    from torch_biren.kernels import attention
    monkeypatch.setattr(attention, "_CPU_MAX_BM", 16)  # many query and key blocks
    monkeypatch.setattr(attention, "_CPU_SCORE_BLOCK", 16 * 16)
    attention._cpu_blocks.cache_clear()
    try:
        run(1, 4, 2, 40, 50, 32, 32, causal=True)
        mask = torch.rand(40, 50) > 0.4
        mask[:, 0] = True
        run(1, 2, 2, 40, 50, 32, 32, mask=mask)
    finally:
        attention._cpu_blocks.cache_clear()


@st.composite
def attn_case(draw):
    Hkv = draw(st.integers(1, 2))
    return dict(B=draw(st.integers(1, 2)), H=Hkv * draw(st.sampled_from([1, 2, 3])), Hkv=Hkv,
                Lq=draw(st.integers(1, 24)), Lk=draw(st.integers(1, 24)), Dk=draw(st.sampled_from([16, 24, 64])),
                Dv=draw(st.sampled_from([16, 32])), causal=draw(st.booleans()), transposed=draw(st.booleans()),
                seed=draw(st.integers(0, 2**16)))


@settings(max_examples=20, deadline=None)
@given(attn_case())
def test_attention_fuzz(case):
    run(**case)
