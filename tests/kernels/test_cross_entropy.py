import pytest
import torch
import torch.nn.functional as F

from torch_biren.kernels import cross_entropy_bwd, cross_entropy_fwd

TOL = {torch.float32: dict(atol=1e-5, rtol=1.3e-6), torch.bfloat16: dict(atol=1.6e-2, rtol=1.6e-2)}


def check(logits, target, reduction, ignore_index=-100):
    gen = torch.Generator().manual_seed(1)
    xr = logits.double().requires_grad_()
    ref = F.cross_entropy(xr.reshape(-1, xr.shape[-1]), target.reshape(-1), reduction=reduction,
                          ignore_index=ignore_index)
    ref = ref.reshape(target.shape) if reduction == "none" else ref
    grad = torch.rand(ref.shape, generator=gen).to(logits.dtype) + 0.5
    ref.backward(grad.double())
    loss = torch.empty(ref.shape, dtype=logits.dtype)
    lse = torch.empty(target.shape)
    cross_entropy_fwd(logits, target, loss, lse, reduction=reduction, ignore_index=ignore_index)
    tol = TOL[logits.dtype]
    torch.testing.assert_close(loss, ref.detach().to(logits.dtype), equal_nan=True,
                               atol=tol["atol"] * 8, rtol=tol["rtol"] * 8)  # a sum over rows
    torch.testing.assert_close(lse, torch.logsumexp(logits.double(), -1).float(), atol=1e-5, rtol=1.3e-6)
    dx = torch.empty_like(logits)
    cross_entropy_bwd(logits, target, lse, grad, dx, reduction=reduction, ignore_index=ignore_index)
    torch.testing.assert_close(dx, xr.grad.to(logits.dtype), equal_nan=True, **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(1, 1), (4, 7), (2, 5, 300)])
def test_cross_entropy(dtype, reduction, shape):
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(shape, generator=gen) * 3).to(dtype)
    target = torch.randint(0, shape[-1], shape[:-1], generator=gen)
    target.view(-1)[::3] = -100
    if target.numel() > 1:
        check(logits, target, reduction)
    target.view(-1)[0] = 0  # at least one row counts
    check(logits, target, reduction)


def test_all_ignored_mean_is_nan():
    logits, target = torch.randn(3, 7), torch.full((3, ), 5)
    check(logits, target, "mean", ignore_index=5)


def test_vocab_blocks_strided_and_in_place(monkeypatch):
    from torch_biren.kernels import cross_entropy
    monkeypatch.setattr(cross_entropy, "_CPU_TILE", 64)  # vocabulary wider than a tile
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(300, 6, generator=gen).T  # strided rows
    target = torch.randint(0, 300, (6, ), generator=gen)
    check(logits, target, "mean")
    logits = torch.randn(6, 300, generator=gen)
    ref = F.cross_entropy(logits.double().requires_grad_(), target)
    xr = logits.double().requires_grad_()
    F.cross_entropy(xr, target).backward()
    lse, loss = torch.empty(6), torch.empty(())
    cross_entropy_fwd(logits, target, loss, lse)
    cross_entropy_bwd(logits, target, lse, torch.ones(()), logits)  # gradient over the logits
    torch.testing.assert_close(loss, ref.detach().float())
    torch.testing.assert_close(logits, xr.grad.float())
