"""torch_biren.ops cross_entropy: F.cross_entropy reaches the fused kernel; other forms decompose."""

import pytest
import torch
import torch.nn.functional as F

import torch_biren


def B(t):
    return t.to("biren")


def test_cross_entropy_reaches_the_fused_kernel():
    torch.manual_seed(0)
    logits, target = torch.randn(6, 11), torch.tensor([0, 3, -100, 10, 2, 2])
    ref_in = logits.clone().requires_grad_()
    ref = F.cross_entropy(ref_in, target)
    ref.backward()
    x = B(logits).requires_grad_()
    torch_biren.reset_op_counts()
    loss = F.cross_entropy(x, B(target))
    loss.backward()
    assert torch_biren.op_counts()["torch_biren::cross_entropy"] == {"triton": 1}
    assert abs(loss.item() - ref.item()) < 1e-5
    assert torch.allclose(x.grad.cpu(), ref_in.grad, atol=1e-6)
    smoothed = F.cross_entropy(B(logits), B(target), label_smoothing=0.1)  # decomposed, still right
    assert abs(smoothed.item() - F.cross_entropy(logits, target, label_smoothing=0.1).item()) < 1e-5


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("bad", [7, 5, -5])
def test_out_of_range_target_raises_as_on_cpu(reduction, bad):
    logits, target = torch.randn(3, 5), torch.tensor([0, bad, 1])
    with pytest.raises(IndexError, match=f"Target {bad} is out of bounds.") as cpu:
        F.cross_entropy(logits, target, reduction=reduction)
    with pytest.raises(IndexError) as dev:
        F.cross_entropy(B(logits), B(target), reduction=reduction)
    assert str(dev.value) == str(cpu.value)
    # ignore_index may be any value, in range or not; the device stays usable after the error
    assert torch.allclose(F.cross_entropy(B(logits), B(target), ignore_index=bad).cpu(),
                          F.cross_entropy(logits, target, ignore_index=bad))
