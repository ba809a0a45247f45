"""The Triton kernels are the device's kernels: PyTorch and HF code reach them unchanged, both
kernel modes charge the same simulated time, and a Qwen decoder layer runs its GEMMs, attention,
RMSNorm, RoPE and SwiGLU as Triton kernels."""

import pytest
import torch
import torch.nn.functional as F

import torch_biren
import torch_biren.ops as bops
from torch_biren import _C
from torch_biren.adapt import zoo


def B(t):
    return t.to("biren")


@pytest.fixture
def reference_mode():
    bops.set_kernels("reference")
    yield
    bops.set_kernels("triton")


def _sim_time(fn):
    torch.biren.synchronize()
    _C._sim_reset(-1)
    fn()
    torch.biren.synchronize()
    return _C._sim_elapsed_ns(0)


def _workload():
    torch.manual_seed(0)
    a, b = B(torch.randn(64, 32)), B(torch.randn(32, 48))
    q, k, v = (B(torch.randn(1, 4, 16, 16)) for _ in range(3))
    x = B(torch.randn(8, 32))
    return lambda: (a @ b, torch.addmm(B(torch.zeros(48)), a, b), F.scaled_dot_product_attention(q, k, v, is_causal=True),
                    F.rms_norm(x, (32,)), torch.softmax(x, -1))


def test_triton_and_reference_charge_the_same_time(reference_mode):
    run = _workload()
    t_ref = _sim_time(run)
    bops.set_kernels("triton")
    t_tri = _sim_time(run)
    assert t_ref == pytest.approx(t_tri, rel=1e-12) and t_tri > 0


def test_ops_reach_triton_kernels():
    torch_biren.reset_op_counts()
    _workload()()
    counts = torch_biren.op_counts()
    for op in ("aten::mm", "aten::addmm", "aten::_scaled_dot_product_fused_attention_overrideable", "aten::_fused_rms_norm",
               "aten::_softmax"):
        assert counts[op] == {"triton": 1}, (op, counts.get(op))


def test_reference_mode_labels_kernels_native(reference_mode):
    torch_biren.reset_op_counts()
    _workload()()
    counts = torch_biren.op_counts()
    assert counts["aten::mm.out"] == {"native": 1}  # the C++ fallback runs the out= CPU kernel
    assert counts["aten::_fused_rms_norm"] == {"native": 1}


def test_qwen_decoder_layer_runs_on_triton_kernels():
    model = zoo.build("qwen2").to("biren")
    patched = bops.patch_model(model)
    assert patched["rms_norm"] > 0 and patched["swiglu"] > 0 and patched["rope"] == 1
    layer = model.model.layers[0]
    rotary = model.model.rotary_emb
    torch.manual_seed(0)
    h = B(torch.randn(2, 8, 64)).requires_grad_()
    pos = B(torch.arange(8)).unsqueeze(0).expand(2, -1)
    cos, sin = rotary(h, pos)
    torch_biren.reset_op_counts()
    with torch_biren.profiler.profile() as prof:
        out = layer(h, position_embeddings=(cos, sin), attention_mask=None)
        out = out[0] if isinstance(out, tuple) else out
        out.sum().backward()
    counts = torch_biren.op_counts()
    kinds = {op: set(k) for op, k in counts.items()}
    for op in ("aten::mm", "aten::_scaled_dot_product_fused_attention_overrideable",
               "aten::_scaled_dot_product_fused_attention_overrideable_backward", "aten::_fused_rms_norm",
               "aten::_fused_rms_norm_backward", "torch_biren::rope", "torch_biren::swiglu",
               "torch_biren::swiglu_backward"):
        assert kinds.get(op) == {"triton"}, (op, counts.get(op))
    heavy = [op for op, k in kinds.items() if "fallback" in k and any(w in op for w in ("mm", "attention", "norm"))]
    assert heavy == []
    assert "triton" in prof.table()
