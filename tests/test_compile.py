"""torch.compile on biren: Inductor fuses pointwise and reduction ops into generated Triton kernels
that run on the device (torch_biren/inductor); GEMMs and attention stay the device's own kernels.
Results and gradients match eager; a graph Inductor cannot handle runs through aot_eager after one
warning."""

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F

import torch_biren
from torch_biren import _compile
from torch_biren.adapt import zoo
from torch_biren.inductor import libdevice


def _generated(counts):
    return {name: kinds for name, kinds in counts.items() if name.startswith("triton_")}


def test_default_backend_generates_kernels_and_matches_eager():
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4)).to("biren")
    twin = copy.deepcopy(model)
    x = torch.randn(5, 8, device="biren")
    torch_biren.reset_op_counts()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = torch.compile(model)(x)
        y.sum().backward()
    assert not [str(w.message) for w in caught if "biren" in str(w.message)]
    counts = torch_biren.op_counts()
    assert {"triton_poi_fused_gelu_0", "triton_poi_fused_gelu_gelu_backward_1"} <= set(_generated(counts))
    # the GEMMs: extern out= calls on the device, run by the project's Triton GEMM kernel
    assert counts["aten::addmm"] == {"triton": 2} and counts["aten::mm"] == {"triton": 3}
    ref = twin(x)
    ref.sum().backward()
    torch.testing.assert_close(y, ref)
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p.grad, q.grad)


def test_hf_qwen2_training_step_matches_eager_over_five_steps():
    torch._dynamo.reset()
    base = zoo.build("qwen2", num_hidden_layers=1)
    eager, compiled = copy.deepcopy(base).to("biren"), copy.deepcopy(base).to("biren")
    ids = torch.randint(0, zoo.VOCAB, (2, 16), generator=torch.Generator().manual_seed(0)).to("biren")
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-3) for m in (eager, compiled)]
    step_fn = torch.compile(compiled)
    losses = {"eager": [], "compiled": []}
    torch_biren.reset_op_counts()
    for _ in range(5):
        for name, fn, opt in (("eager", eager, opts[0]), ("compiled", step_fn, opts[1])):
            loss = fn(ids, labels=ids).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            losses[name].append(loss.item())
    assert losses["compiled"] == pytest.approx(losses["eager"], rel=1e-5, abs=1e-5)
    assert losses["compiled"][-1] < losses["compiled"][0]
    counts = torch_biren.op_counts()
    assert len(_generated(counts)) >= 10  # RMSNorm, RoPE, SwiGLU, the loss, their backwards: fused
    assert "triton" in counts["aten::_scaled_dot_product_fused_attention_overrideable"]
    assert "triton" in counts["aten::_scaled_dot_product_fused_attention_overrideable_backward"]


def test_attention_output_has_the_query_layout():
    # As PyTorch's meta kernel says (and CUDA's flash kernels do): compiled graphs rely on it.
    q = torch.randn(2, 16, 4, 8, device="biren").transpose(1, 2)  # [B, H, L, D] over [B, L, H, D] memory
    k = v = torch.randn(2, 4, 16, 8, device="biren")
    outs = torch.ops.aten._scaled_dot_product_fused_attention_overrideable(q, k, v)
    with torch._subclasses.fake_tensor.FakeTensorMode(allow_non_fake_inputs=True) as mode:
        fq, fk, fv = (mode.from_tensor(t) for t in (q, k, v))
        fakes = torch.ops.aten._scaled_dot_product_fused_attention_overrideable(fq, fk, fv)
    assert outs[0].stride() == fakes[0].stride() == q.stride()
    for out, fake in zip(outs[6:8], fakes[6:8]):  # philox seed and offset: Inductor asserts their sizes
        assert (out.shape, out.dtype) == (fake.shape, fake.dtype)
    ref = torch.nn.functional.scaled_dot_product_attention(q.cpu(), k.cpu(), v.cpu())
    torch.testing.assert_close(outs[0].cpu(), ref)


def _fallback_warnings(fn, *args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args)
    return out, [str(w.message) for w in caught if "Inductor could not compile" in str(w.message)]


def test_a_kernel_the_interpreter_cannot_run_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setattr(_compile, "_warned", set())
    monkeypatch.delattr(libdevice.libdevice, "erf")  # GELU's erf: as if libdevice lacked it
    torch._dynamo.reset()
    x = torch.randn(6, 10, device="biren")
    fn = torch.compile(lambda x: F.gelu(x) * 2)
    y, warned = _fallback_warnings(fn, x)
    assert warned == [
        "torch.compile: Inductor could not compile this graph for biren (triton_poi_fused_gelu_mul_0 failed in "
        "Triton's interpreter: NotImplementedError: libdevice.erf has no form in Triton's interpreter on biren); "
        "it runs through AOTAutograd without fusion (backend 'aot_eager'): same numerics, each op a biren kernel "
        "charged as in eager mode"]
    torch.testing.assert_close(y.cpu(), F.gelu(x.cpu()) * 2)
    y, warned = _fallback_warnings(fn, x + 1)  # the graph stays on aot_eager, without a second warning
    assert warned == []
    torch.testing.assert_close(y.cpu(), F.gelu(x.cpu() + 1) * 2)


def test_an_inductor_failure_falls_back_with_one_warning(monkeypatch):
    from torch._inductor.codegen.triton import TritonScheduling

    def fail(self, *args, **kwargs):
        raise NotImplementedError("no kernel for this node")

    monkeypatch.setattr(_compile, "_warned", set())
    monkeypatch.setattr(TritonScheduling, "codegen_node", fail)
    torch._dynamo.reset()
    x = torch.randn(6, 10, device="biren")
    y, warned = _fallback_warnings(torch.compile(lambda x: x.exp() + 1), x)
    assert len(warned) == 1 and "(NotImplementedError: no kernel for this node)" in warned[0]
    torch.testing.assert_close(y.cpu(), x.cpu().exp() + 1)
