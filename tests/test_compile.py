"""torch.compile on biren: Inductor has no biren code generator, so its default backend hands biren
graphs to AOTAutograd without fusion; results and gradients match eager, and the graph's ops run
as biren kernels."""

import copy
import warnings

import torch

import torch_biren
from torch_biren.adapt import zoo
from torch_biren.ops import patch_model


def test_default_backend_matches_eager_and_warns():
    torch._dynamo.reset()
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4)).to("biren")
    twin = copy.deepcopy(model)
    x = torch.randn(5, 8, device="biren")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = torch.compile(model)(x)
    assert [str(w.message) for w in caught if "Inductor" in str(w.message)] == [
        "torch.compile: Inductor has no code generator for biren; the graph runs through AOTAutograd without "
        "fusion (backend 'aot_eager'): same numerics, each op a biren kernel charged as in eager mode"]
    ref = twin(x)
    assert y.device.type == "biren" and torch.equal(y, ref)
    y.sum().backward()
    ref.sum().backward()
    for p, q in zip(model.parameters(), twin.parameters()):
        assert torch.equal(p.grad, q.grad)


def test_hf_model_compiles_with_device_attention():
    torch._dynamo.reset()
    model = zoo.build("qwen2").to("biren")
    patch_model(model)  # the fused RoPE/SwiGLU/RMSNorm trace as their composite forms
    ids = torch.randint(0, zoo.VOCAB, (2, 16)).to("biren")
    ref = model(ids, labels=ids).loss
    torch_biren.reset_op_counts()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss = torch.compile(model)(ids, labels=ids).loss
    loss.backward()
    assert torch.allclose(loss, ref, atol=1e-6)
    counts = torch_biren.op_counts()
    assert "triton" in counts["aten::_scaled_dot_product_fused_attention_overrideable"]
    assert "triton" in counts["aten::_scaled_dot_product_fused_attention_overrideable_backward"]


def test_attention_output_has_the_query_layout():
    # As PyTorch's meta kernel says (and CUDA's flash kernels do): compiled graphs rely on it.
    q = torch.randn(2, 16, 4, 8, device="biren").transpose(1, 2)  # [B, H, L, D] over [B, L, H, D] memory
    k = v = torch.randn(2, 4, 16, 8, device="biren")
    out = torch.ops.aten._scaled_dot_product_fused_attention_overrideable(q, k, v)[0]
    with torch._subclasses.fake_tensor.FakeTensorMode(allow_non_fake_inputs=True) as mode:
        fq, fk, fv = (mode.from_tensor(t) for t in (q, k, v))
        fake = torch.ops.aten._scaled_dot_product_fused_attention_overrideable(fq, fk, fv)[0]
    assert out.stride() == fake.stride() == q.stride()
    ref = torch.nn.functional.scaled_dot_product_attention(q.cpu(), k.cpu(), v.cpu())
    torch.testing.assert_close(out.cpu(), ref)
