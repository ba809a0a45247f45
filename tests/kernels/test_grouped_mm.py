import pytest
import torch

from torch_biren.kernels import grouped_mm

TOL = {torch.float32: dict(atol=1e-5, rtol=1.3e-6), torch.bfloat16: dict(atol=1.6e-2, rtol=1.6e-2)}


def reference(x, w, offs):
    out, start = [], 0
    for g, end in enumerate(offs.tolist()):
        out.append(x[start:end].double() @ w[g].double())
        start = end
    return torch.cat(out)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("T,K,N,offs", [(10, 8, 16, [2, 5, 10]), (10, 8, 16, [2, 2, 8]),
                                        (100, 64, 48, [0, 30, 30, 99]), (7, 5, 3, [7]), (64, 96, 40, [16, 40, 64])])
def test_grouped_mm(dtype, T, K, N, offs):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(T, K, generator=gen).to(dtype)
    w = torch.randn(len(offs), K, N, generator=gen).to(dtype)
    offs = torch.tensor(offs, dtype=torch.int32)
    out = torch.full((T, N), 7.0, dtype=dtype)
    grouped_mm(x, w, offs, out)
    end = int(offs[-1])
    torch.testing.assert_close(out[:end], reference(x, w, offs).to(dtype), **TOL[dtype])
    assert (out[end:] == 7).all()  # rows past the last offset are not written


def test_matches_torch_grouped_mm_strided():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(20, 8, generator=gen)
    w = torch.randn(3, 16, 8, generator=gen).transpose(1, 2)  # column-major experts
    offs = torch.tensor([5, 12, 20], dtype=torch.int32)
    out = torch.empty(20, 16)
    grouped_mm(x, w, offs, out)
    torch.testing.assert_close(out, torch._grouped_mm(x, w, offs=offs))
    x_t = torch.randn(8, 20, generator=gen).T
    grouped_mm(x_t, w, offs, out)
    torch.testing.assert_close(out, reference(x_t, w, offs).float())


@pytest.mark.parametrize("offs", [[4, 100], [6, 3], [-1, 8]])
def test_offsets_outside_the_input_are_refused(offs):
    # PyTorch's CPU kernel reads or leaves rows unchecked; this kernel must never read past x.
    x, w, out = torch.randn(8, 16), torch.randn(2, 16, 8), torch.empty(8, 8)
    with pytest.raises(RuntimeError, match=r"offs must be non-decreasing, from 0 to at most the 8 rows"):
        grouped_mm(x, w, torch.tensor(offs, dtype=torch.int32), out)
