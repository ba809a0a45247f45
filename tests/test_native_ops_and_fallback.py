"""Native ops and the CPU fallback: results, aliasing and the corner cases a naive fallback misses."""

import pytest
import torch
import torch.nn.functional as F

import torch_biren
from subprocess_run import run_python


def B(t):
    return t.to("biren")


@pytest.mark.parametrize("src_dev,dst_dev", [("cpu", "biren"), ("biren", "cpu"), ("biren", "biren:1"), ("biren", "biren")])
def test_copies_in_every_direction_non_contiguous(src_dev, dst_dev):
    src = torch.randn(6, 8).to(src_dev).t()[1:5]
    dst = torch.empty(6, 8, device=dst_dev).t()[1:5]
    dst.copy_(src)
    assert torch.equal(dst.cpu(), src.cpu())
    assert torch.equal(src.to(dst_dev).cpu(), src.cpu())
    h = torch.randn(3, 4).to(torch.bfloat16)
    assert torch.equal(B(h).to(torch.float32).cpu(), h.float())  # dtype conversion across devices


def test_views_share_memory():
    x = B(torch.arange(12.0))
    v = x.view(3, 4)
    r = torch.ops.aten._reshape_alias(x, (4, 3), (3, 1))
    s = torch.as_strided(x, (2, 2), (4, 1), 1)
    v[0, 1] = 100
    assert x[1].item() == 100 and r[0, 1].item() == 100 and s[0, 0].item() == 100
    d = v.diagonal()  # a view op with its own kernel goes through the fallback and stays a view
    d.zero_()
    assert x[5].item() == 0
    assert v.t().unfold(0, 2, 1).untyped_storage().data_ptr() == x.untyped_storage().data_ptr()


def test_resize_and_set():
    x = B(torch.arange(4.0))
    x.resize_(8)
    assert x.shape == (8,) and torch.equal(x[:4].cpu(), torch.arange(4.0))
    y = torch.empty(0, device="biren")
    y.set_(x.untyped_storage(), 2, (2, 2), (2, 1))
    assert torch.equal(y.cpu(), x.cpu()[2:6].view(2, 2))
    z = torch.empty(0, device="biren").set_(x)
    assert z.data_ptr() == x.data_ptr()
    w = B(torch.ones(3)).set_()
    assert w.numel() == 0 and w.device.type == "biren"


def test_in_place_returns_self_and_out_resizes():
    x = B(torch.ones(3))
    assert x.add_(1) is x
    out = torch.empty(0, device="biren")
    r = torch.mul(B(torch.ones(2, 3)), 3, out=out)
    assert r is out and out.shape == (2, 3) and out.sum().item() == 18
    big = torch.empty(1, device="biren")
    torch.cat([B(torch.ones(100)), B(torch.ones(100))], out=big)  # grows past its storage
    assert big.shape == (200,) and big.sum().item() == 200


def test_conj_and_neg_bits():
    z = torch.tensor([1 + 2j, 3 - 1j])
    zb = B(z)
    assert torch.equal(zb.conj().cpu(), z.conj())
    assert torch.equal((zb.conj() * 2).cpu(), z.conj() * 2)
    assert torch.equal(torch.view_as_real(zb.conj().resolve_conj()).cpu(), torch.view_as_real(z.conj().resolve_conj()))
    assert torch.equal((-zb.conj()).imag.cpu(), (-z.conj()).imag)
    assert torch.equal(zb.imag.neg().cpu(), z.imag.neg())


def test_zero_tensors_are_materialized():
    z = torch._efficientzerotensor(3, device="biren")  # autograd makes these for known-zero grads
    assert torch.equal((z + 1).cpu(), torch.ones(3))
    assert torch.equal(torch.mul(B(torch.ones(3)), z).cpu(), torch.zeros(3))


def test_convolution_forward_and_backward():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    cb = torch.nn.Conv2d(3, 4, 3, padding=1).to("biren")
    cb.load_state_dict(conv.state_dict())
    xb = x.detach().to("biren").requires_grad_()
    conv(x).square().sum().backward()
    cb(xb).square().sum().backward()
    assert torch.allclose(xb.grad.cpu(), x.grad, atol=1e-4)
    assert torch.allclose(cb.weight.grad.cpu(), conv.weight.grad, atol=1e-3)
    assert torch.allclose(cb.bias.grad.cpu(), conv.bias.grad, atol=1e-3)
    t = torch.nn.ConvTranspose1d(2, 3, 3, groups=1)
    tb = torch.nn.ConvTranspose1d(2, 3, 3).to("biren")
    tb.load_state_dict(t.state_dict())
    assert torch.allclose(tb(B(torch.ones(1, 2, 5))).cpu(), t(torch.ones(1, 2, 5)), atol=1e-5)


def test_foreach_ops_and_adamw_step():
    ps = [torch.randn(4, 3), torch.randn(7)]
    bs = [B(p) for p in ps]
    torch._foreach_mul_(bs, 2.0)
    torch._foreach_add_(bs, [B(torch.ones_like(p)) for p in ps])
    for p, b in zip(ps, bs):
        assert torch.allclose(b.cpu(), p * 2 + 1)
    m = torch.nn.Linear(3, 2)
    mb = torch.nn.Linear(3, 2).to("biren")
    mb.load_state_dict(m.state_dict())
    for mod, x in ((m, torch.ones(5, 3)), (mb, B(torch.ones(5, 3)))):
        opt = torch.optim.AdamW(mod.parameters(), lr=0.1, foreach=True)
        mod(x).sum().backward()
        opt.step()
    assert torch.allclose(mb.weight.cpu(), m.weight.detach(), atol=1e-6)


def test_integer_histc_and_grouped_mm():
    idx = B(torch.tensor([0, 2, 2, 3, 3, 3]))
    h = torch.histc(idx, bins=4, min=0, max=3)
    assert h.dtype == torch.int64 and h.cpu().tolist() == [1, 0, 2, 3]
    a = torch.randn(6, 8)
    w = torch.randn(2, 8, 8)
    offs = torch.tensor([2, 6], dtype=torch.int32)
    ref = torch._grouped_mm(a, w, offs=offs)
    got = torch._grouped_mm(B(a), B(w), offs=B(offs))
    assert torch.allclose(got.cpu(), ref, atol=1e-5)


def test_rng_and_factories_on_device():
    assert torch.arange(5, device="biren").device.type == "biren"
    assert torch.eye(3, device="biren").sum().item() == 3
    assert torch.tril_indices(3, 3, device="biren").device.type == "biren"
    assert torch.full((2,), 7.0, device="biren").cpu().tolist() == [7.0, 7.0]


def test_cpu_scalar_tensors_mix_but_cpu_tensors_do_not():
    x = B(torch.ones(3))
    assert torch.equal((x * torch.tensor(2.0)).cpu(), torch.full((3,), 2.0))
    with pytest.raises(RuntimeError, match=r"Expected all tensors to be on the same device, but found at least two devices, biren:0 and cpu!"):
        x + torch.ones(3)
    with pytest.raises(RuntimeError, match="biren:0 and biren:1"):
        x + torch.ones(3, device="biren:1")
    # CPU index tensors are accepted for indexing, as on CUDA.
    assert x[torch.tensor([0, 2])].cpu().tolist() == [1.0, 1.0]
    x[torch.tensor([1])] = 5.0
    assert x.cpu().tolist() == [1.0, 5.0, 1.0]


def test_fallback_report_and_policy():
    torch_biren.reset_op_counts()
    B(torch.ones(4)).exp().cos()
    fb = torch_biren.fallback_ops()
    assert fb.get("aten::exp", 0) >= 1 and fb.get("aten::cos", 0) >= 1
    counts = torch_biren.op_counts()
    assert counts["Memcpy HtoD"]["copy"] >= 1
    torch_biren.set_fallback_policy("error")
    try:
        with pytest.raises(NotImplementedError, match=r"aten::sin has no device kernel, and TORCH_BIREN_FALLBACK=error"):
            B(torch.ones(2)).sin()
    finally:
        torch_biren.set_fallback_policy("allow")
    r = run_python("import torch, warnings; warnings.simplefilter('always'); torch.ones(2, device='biren').tan()",
                   env={"TORCH_BIREN_FALLBACK": "warn"})
    assert "aten::tan has no device kernel; it ran through the CPU fallback" in r.stderr
    with pytest.raises(RuntimeError, match="allow, warn or error"):
        torch_biren.set_fallback_policy("sometimes")
