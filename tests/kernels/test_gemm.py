import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torch_biren.kernels import linear, mm

TOL = {torch.float32: dict(atol=1e-5, rtol=1.3e-6), torch.float16: dict(atol=1e-3, rtol=1e-3),
       torch.bfloat16: dict(atol=1.6e-2, rtol=1.6e-2)}


def check(out, ref, k=1):
    """out against a float64 reference; float32 rounding grows with the k terms summed."""
    tol = TOL[out.dtype]
    scale = max(1.0, k / 64) if out.dtype == torch.float32 else 1.0
    torch.testing.assert_close(out, ref.to(out.dtype), atol=tol["atol"] * scale, rtol=tol["rtol"] * scale)


def operand(shape, dtype, layout, gen):
    """A [r, c] operand in the given memory layout, built without changing its values' distribution."""
    r, c = shape
    if layout == "t":  # transposed view
        return torch.randn(c, r, generator=gen).to(dtype).T
    if layout == "slice":  # every other column of a wider matrix
        return torch.randn(r, 2 * c + 1, generator=gen).to(dtype)[:, 1::2]
    if layout == "rowslice":  # a row-stride that is not 16-byte aligned
        return torch.randn(r, c + 3, generator=gen).to(dtype)[:, :c]
    return torch.randn(r, c, generator=gen).to(dtype)


SHAPES = [(1, 1, 1), (3, 5, 7), (17, 33, 65), (64, 48, 200), (256, 256, 256)]
LAYOUTS = ["c", "t", "slice", "rowslice"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("M,N,K", SHAPES)
def test_mm_layouts(dtype, M, N, K):
    gen = torch.Generator().manual_seed(M * 1000 + N + K)
    for la, lb, lo in [("c", "c", "c"), ("t", "c", "c"), ("c", "t", "t"), ("t", "t", "c"), ("slice", "rowslice", "c"),
                       ("rowslice", "slice", "slice")]:
        a, b = operand((M, K), dtype, la, gen), operand((K, N), dtype, lb, gen)
        out = operand((M, N), dtype, lo, gen)
        mm(a, b, out)
        check(out, torch.mm(a.double(), b.double()), K)


def test_mm_large_k():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 5000, generator=gen), torch.randn(5000, 3, generator=gen)
    out = torch.empty(5, 3)
    mm(a, b, out)
    check(out, a.double() @ b.double(), 5000)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("c_shape", [(), (1, ), (24, ), (10, 1), (10, 24)])
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.5, 2.0), (1.0, 0.0)])
def test_addmm(dtype, c_shape, alpha, beta):
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(10, 40, generator=gen).to(dtype), torch.randn(40, 24, generator=gen).to(dtype)
    c = torch.randn(c_shape, generator=gen).to(dtype)
    if beta == 0:
        c.fill_(float("nan"))  # torch ignores c entirely when beta == 0
    out = torch.empty(10, 24, dtype=dtype)
    mm(a, b, out, c=c, alpha=alpha, beta=beta)
    check(out, torch.addmm(c.double(), a.double(), b.double(), alpha=alpha, beta=beta), 40)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_bmm_and_baddbmm_broadcast(dtype):
    gen = torch.Generator().manual_seed(2)
    a = torch.randn(3, 12, 20, generator=gen).to(dtype)
    b = torch.randn(20, 9, generator=gen).to(dtype).expand(3, 20, 9)  # batch stride 0
    out = torch.empty(3, 12, 9, dtype=dtype)
    mm(a, b, out)
    check(out, torch.bmm(a.double(), b.double()), 20)
    a_t = torch.randn(3, 20, 12, generator=gen).to(dtype).transpose(1, 2)
    c = torch.randn(3, 1, 9, generator=gen).to(dtype)
    out = torch.empty(9, 3, 12, dtype=dtype).permute(1, 2, 0)
    mm(a_t, b, out, c=c, alpha=0.3, beta=-1.5)
    check(out, torch.baddbmm(c.double(), a_t.double(), b.double(), alpha=0.3, beta=-1.5), 20)
    out2 = torch.empty(3, 12, 9, dtype=dtype)
    mm(a_t, b[0], out2)  # a 2-D operand is shared by every batch
    check(out2, a_t.double() @ b[0].double(), 20)


def test_mm_mixed_out_dtype_and_bias():
    gen = torch.Generator().manual_seed(3)
    a, b = torch.randn(7, 30, generator=gen).bfloat16(), torch.randn(30, 11, generator=gen).bfloat16()
    bias = torch.randn(11, generator=gen)
    out = torch.empty(7, 11)
    mm(a, b, out, bias=bias, alpha=2.0)
    check(out, 2 * (a.double() @ b.double()) + bias, 30)
    with pytest.raises(ValueError):
        mm(a, b, out, c=bias, bias=bias)
    with pytest.raises(ValueError):
        mm(a, b[:29], out)


@pytest.mark.parametrize("x_shape", [(6, 32), (2, 5, 32), (2, 2, 3, 32)])
@pytest.mark.parametrize("with_bias", [False, True])
def test_linear(x_shape, with_bias):
    gen = torch.Generator().manual_seed(4)
    x, w = torch.randn(x_shape, generator=gen), torch.randn(20, 32, generator=gen)
    bias = torch.randn(20, generator=gen) if with_bias else None
    out = torch.empty(*x_shape[:-1], 20)
    linear(x, w, out, bias)
    check(out, torch.nn.functional.linear(x, w, bias), 32)


def test_linear_non_flattenable():
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(5, 3, 32, generator=gen).transpose(0, 1)  # [3, 5, 32], leading dims not viewable
    w = torch.randn(20, 32, generator=gen)
    out = torch.empty(3, 5, 20)
    linear(x, w, out)
    check(out, x @ w.T, 32)


def test_empty_and_k0():
    out = torch.full((4, 3), 5.0)
    mm(torch.empty(4, 0), torch.empty(0, 3), out)
    assert (out == 0).all()
    mm(torch.empty(0, 5), torch.empty(5, 3), torch.empty(0, 3))


@st.composite
def gemm_case(draw):
    M, N, K = (draw(st.integers(1, 40)) for _ in range(3))
    batch = draw(st.sampled_from([None, 1, 3]))
    dtype = draw(st.sampled_from([torch.float32, torch.bfloat16, torch.float16]))
    return M, N, K, batch, dtype, [draw(st.sampled_from(LAYOUTS)) for _ in range(3)], draw(st.integers(0, 2**16))


@settings(max_examples=30, deadline=None)
@given(gemm_case())
def test_mm_fuzz(case):
    M, N, K, batch, dtype, layouts, seed = case
    gen = torch.Generator().manual_seed(seed)
    a, b, out = (operand(s, dtype, la, gen) for s, la in zip([(M, K), (K, N), (M, N)], layouts))
    if batch:  # batched views: a real batch for a, a broadcast (stride-0) one for b
        a = torch.stack([a] + [operand((M, K), dtype, layouts[0], gen) for _ in range(batch - 1)])
        b = b.expand(batch, K, N)
        out = torch.empty(N, batch, M, dtype=dtype).permute(1, 2, 0)
    mm(a, b, out)
    check(out, torch.matmul(a.double(), b.double()), K)
