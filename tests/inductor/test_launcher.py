"""Inductor's generated Triton kernels run on biren memory: interpreted on zero-copy views of the
device tensors (no copies in or out), named in the profiler, with eager's numerics."""

import torch
import torch.nn.functional as F

import torch_biren
from torch_biren.inductor import launcher


def _compiled(fn, *args, **kwargs):
    torch._dynamo.reset()
    torch_biren.reset_op_counts()
    return torch.compile(fn, **kwargs)(*args)


def _block(x, w, b):
    """A pointwise and reduction block as models have it: bias, GELU, residual, layer norm, softmax."""
    h = F.gelu(x + b) + x
    return F.softmax(F.layer_norm(h, (h.shape[-1],), w), dim=-1)


def test_block_runs_generated_kernels_on_device_memory():
    torch.manual_seed(0)
    x, w, b = torch.randn(64, 96, device="biren"), torch.randn(96, device="biren"), torch.randn(96, device="biren")
    torch.biren.synchronize()
    with torch_biren.profiler.profile() as prof:
        y = _compiled(_block, x, w, b)
        torch.biren.synchronize()
    counts = torch_biren.op_counts()
    # Only generated kernels ran: no op of the block went through the fallback, nothing was copied.
    assert counts and all(name.startswith("triton_") and kinds == {"triton": 1} for name, kinds in counts.items()), counts
    kernels = [r.name for r in prof.records if r.kind == "triton"]
    assert sorted(kernels) == sorted(counts) and len(kernels) <= 2  # fused: one or two kernels, not ten ops
    torch.testing.assert_close(y.cpu(), _block(x.cpu(), w.cpu(), b.cpu()), atol=1e-6, rtol=1e-5)


def test_torch_profiler_names_each_generated_kernel():
    from torch.profiler import ProfilerActivity, profile

    x = torch.randn(4096, device="biren")
    fn = torch.compile(lambda x: torch.relu(x * 2 + 1) * 3)
    fn(x)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.PrivateUse1]) as prof:
        fn(x)
        torch.biren.synchronize()
    device = [e.key for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.PrivateUse1]
    assert device == ["triton: triton_poi_fused_add_mul_relu_0"]


def test_bf16_computes_in_fp32_and_rounds_once():
    # Inductor upcasts bf16 loads to fp32 (the interpreter's bf16 arithmetic is wrong): one rounding
    # at the store, so the result is the fp32 chain rounded, which eager's per-op rounding is not.
    x = torch.randn(1000, device="biren").bfloat16()
    y = _compiled(lambda x: torch.tanh(x * 1.5) + torch.exp(-x), x)
    xf = x.cpu().float()
    assert y.dtype == torch.bfloat16
    assert torch.equal(y.cpu(), (torch.tanh(xf * 1.5) + torch.exp(-xf)).bfloat16())


def test_dynamic_shapes_one_kernel_for_every_size():
    fn = torch.compile(lambda x: (x.sin() * x).sum(-1), dynamic=True)
    torch._dynamo.reset()
    torch_biren.reset_op_counts()
    for rows, cols in ((3, 40), (7, 100), (16, 33)):
        x = torch.randn(rows, cols, device="biren")
        torch.testing.assert_close(fn(x).cpu(), (x.cpu().sin() * x.cpu()).sum(-1), atol=1e-5, rtol=1e-5)
    kernels = {k: v for k, v in torch_biren.op_counts().items() if k.startswith("triton_")}
    assert list(kernels.values()) == [{"triton": 3}], kernels  # one kernel, launched at each size


def test_block_sizes_grow_only_through_divisors_of_the_range():
    from triton import Config

    configs = [Config({"XBLOCK": 128})]
    assert launcher._config(configs, 1 << 20) == {"XBLOCK": 1 << 16}
    assert launcher._config(configs, 3 * 1024) == {"XBLOCK": 1024}  # 2048 does not divide 3072
    assert launcher._config(configs, 1000) == {"XBLOCK": 128}  # masked: as Inductor chose
    assert launcher._config([Config({"XBLOCK": 8, "R0_BLOCK": 2048})], 1 << 12) == {"XBLOCK": 32, "R0_BLOCK": 2048}
