import pytest
import torch


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cuda_cast_policy(dtype):
    a = torch.randn(8, 8, device="biren")
    b = torch.randn(8, 8, device="biren")
    with torch.autocast("biren", dtype=dtype):
        assert (a @ b).dtype == dtype  # matmul class: low precision
        assert torch.nn.functional.linear(a, b).dtype == dtype
        lo = (a @ b)
        assert torch.softmax(lo, -1).dtype == torch.float32  # softmax: fp32
        assert torch.nn.functional.layer_norm(lo, (8,)).dtype == torch.float32
        assert torch.nn.functional.cross_entropy(lo, torch.zeros(8, dtype=torch.long, device="biren")).dtype == torch.float32
        assert (a + b).dtype == torch.float32  # untouched ops keep their dtype
    assert (a @ b).dtype == torch.float32


def test_autocast_matches_cpu_autocast_numerics():
    torch.manual_seed(0)
    a, b = torch.randn(16, 16), torch.randn(16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = a @ b
    with torch.autocast("biren", dtype=torch.bfloat16):
        got = a.to("biren") @ b.to("biren")
    assert torch.equal(got.cpu(), ref)


def test_amp_module_and_grad_scaler_step():
    model = torch.nn.Linear(4, 2).to("biren")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("biren")
    x = torch.randn(3, 4, device="biren")
    with torch.biren.amp.autocast(dtype=torch.float16):
        loss = model(x).float().pow(2).mean()
    before = model.weight.detach().cpu().clone()
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    assert not torch.equal(before, model.weight.detach().cpu())
    assert scaler.get_scale() == 2.0**16
    assert torch.biren.amp.GradScaler().is_enabled()
