import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import torch_biren
from torch_biren.sim import costs
from torch_biren.sim.chip import current_chip, load_chip
from torch_biren.sim.registry import TensorSpec, cost_of, cost_tuple, has_cost, modelled_ops

BR166 = load_chip("BR166")


def meta(*shape, dtype=torch.bfloat16):
    return torch.empty(*shape, device="meta", dtype=dtype)


def counted_flops(fn, *args):
    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return counter.get_total_flops()


@pytest.mark.parametrize(
    "fn, op, args",
    [
        (torch.mm, "aten::mm", (meta(384, 256), meta(256, 512))),
        (torch.addmm, "aten::addmm", (meta(512), meta(384, 256), meta(256, 512))),
        (torch.bmm, "aten::bmm", (meta(4, 384, 256), meta(4, 256, 512))),
        (torch.baddbmm, "aten::baddbmm", (meta(4, 384, 512), meta(4, 384, 256), meta(4, 256, 512))),
    ],
)
def test_matrix_ops_count_like_flop_counter(fn, op, args):
    assert cost_of(op, args, chip=BR166).flops == counted_flops(fn, *args)


def test_matrix_ops_are_gemms():
    x, w = meta(8, 128, 4096), meta(11008, 4096)
    expect = costs.gemm(8 * 128, 11008, 4096, chip=BR166, extra_bytes=11008 * 2)
    assert cost_of("aten::linear", [x, w, meta(11008)], chip=BR166) == expect
    assert cost_of("aten::matmul", [x, meta(4096, 11008)], chip=BR166) == costs.gemm(1024, 11008, 4096, chip=BR166)
    batched = cost_of("aten::matmul", [meta(2, 8, 64, 32), meta(8, 32, 16)], chip=BR166)
    assert batched == costs.gemm(64, 16, 32, 16, chip=BR166)
    plain = cost_of("aten::addmm", [meta(512), meta(384, 256), meta(256, 512)], {"beta": 0}, chip=BR166)
    assert plain == costs.gemm(384, 512, 256, chip=BR166)


def test_fp32_matmul_takes_tf32_when_allowed():
    a = meta(4096, 4096, dtype=torch.float32)
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("highest")
        fp32 = cost_of("aten::mm", [a, a], chip=BR166)
        torch.set_float32_matmul_precision("high")
        tf32 = cost_of("aten::mm", [a, a], chip=BR166)
    finally:
        torch.set_float32_matmul_precision(before)
    assert fp32 == costs.gemm(4096, 4096, 4096, dtype="fp32", chip=BR166)
    assert tf32 == costs.gemm(4096, 4096, 4096, dtype="tf32", chip=BR166)
    assert tf32.ns < fp32.ns


def test_attention_ops_read_the_schema():
    q, kv = meta(2, 16, 1024, 128), meta(2, 4, 1024, 128)
    expect = costs.attention(2, 16, 4, 1024, 1024, 128, causal=True, chip=BR166)
    for op, args, kwargs in [
        ("aten::_scaled_dot_product_flash_attention_for_cpu", [q, kv, kv, 0.0, True], None),
        ("aten::_scaled_dot_product_fused_attention_overrideable", [q, kv, kv], {"is_causal": True}),
        ("aten::_scaled_dot_product_efficient_attention", [q, kv, kv, None, False, 0.0, True], None),
        ("aten::scaled_dot_product_attention", [q, kv, kv], {"is_causal": True, "enable_gqa": True}),
    ]:
        assert cost_of(op, args, kwargs, chip=BR166) == expect, op
    lse = TensorSpec((2, 16, 1024), torch.float32)
    bwd = cost_of("aten::_scaled_dot_product_flash_attention_for_cpu_backward", [q, q, kv, kv, q, lse, 0.0, True], chip=BR166)
    assert bwd == costs.attention(2, 16, 4, 1024, 1024, 128, causal=True, backward=True, chip=BR166)
    mask = meta(1024, 1024)
    masked = cost_of("aten::scaled_dot_product_attention", [q, kv, kv, mask], chip=BR166)
    assert masked.bytes == costs.attention(2, 16, 4, 1024, 1024, 128, chip=BR166).bytes + 1024 * 1024 * 2


def test_rowwise_kernels_are_memory_bound_on_bf16():
    x = meta(8, 1024, 4096)
    n = x.numel()
    rms = cost_of("aten::_fused_rms_norm", [x, [4096], meta(4096), 1e-6], chip=BR166)
    assert rms.flops == 4 * n and rms.bytes == 2 * 2 * n + 2 * 4096 + 4 * 8 * 1024
    assert rms.bound == "memory"
    soft = cost_of("aten::_softmax", [x, -1, False], chip=BR166)
    assert soft.flops == 5 * n and soft.bytes == 4 * n and soft.bound == "memory"
    assert cost_of("aten::_softmax", [x, -1, True], chip=BR166).bytes == 2 * n + 4 * n  # fp32 out
    ln = cost_of("aten::native_layer_norm", [x, [4096], meta(4096), meta(4096), 1e-5], chip=BR166)
    assert ln.flops == 7 * n and ln.bound == "memory"
    for op, args in [
        ("aten::_fused_rms_norm_backward", [x, x, [4096], TensorSpec((8, 1024, 1)), meta(4096), [True, True]]),
        ("aten::native_layer_norm_backward", [x, x, [4096], meta(8192, 1), meta(8192, 1), meta(4096), meta(4096), [True] * 3]),
        ("aten::_softmax_backward_data", [x, x, -1, torch.bfloat16]),
        ("aten::embedding_dense_backward", [x, meta(8, 1024, dtype=torch.int64), 32000, -1, False]),
    ]:  # fmt: skip
        c = cost_of(op, args, chip=BR166)
        assert c.bytes >= 3 * 2 * n and c.bound == "memory", op


def test_copies_by_device():
    dev, host = TensorSpec((1024, 1024)), torch.empty(1024, 1024, dtype=torch.bfloat16)
    nbytes = 2 * 1024 * 1024
    assert cost_of("aten::copy_", [dev, host], chip=BR166) == costs.copy(nbytes, "h2d", BR166)
    assert cost_of("aten::copy_", [host, dev], chip=BR166) == costs.copy(nbytes, "d2h", BR166)
    assert cost_of("aten::_copy_from", [dev, TensorSpec((1024, 1024))], chip=BR166) == costs.copy(nbytes, "d2d", BR166)
    assert cost_of("aten::_to_copy", [dev], {"dtype": torch.float32}, chip=BR166).bytes == 3 * nbytes
    assert cost_of("aten::_to_copy", [dev], {"device": "cpu"}, chip=BR166) == costs.copy(nbytes, "d2h", BR166)
    emb = cost_of("aten::embedding", [meta(32000, 4096), meta(8, 128, dtype=torch.int64)], chip=BR166)
    assert emb.bytes == 8 * 128 * 8 + 2 * 8 * 128 * 4096 * 2


def test_names_and_lookup():
    ops = modelled_ops()
    for name in ("aten::mm", "aten::mm.out", "aten::addmm", "aten::_fused_rms_norm",
                 "aten::_scaled_dot_product_flash_attention_for_cpu_backward", "aten::copy_"):  # fmt: skip
        assert name in ops
    for name in ops:  # every name is a real aten overload
        packet, _, overload = name.partition(".")
        assert hasattr(getattr(torch.ops.aten, packet.removeprefix("aten::")), overload or "default"), name
    a = meta(64, 64)
    by_name = cost_of("aten::mm", [a, a], chip=BR166)
    assert cost_of(torch.ops.aten.mm, [a, a], chip=BR166) == by_name
    assert cost_of(torch.ops.aten.mm.default, [a, a], chip=BR166) == by_name
    assert cost_of("aten::mm.out", [a, a, a], chip=BR166) == by_name
    assert has_cost("aten::mm.out") and not has_cost("aten::add.Tensor")
    with pytest.raises(KeyError, match="generic"):
        cost_of("aten::add.Tensor", [a, a])


def test_runtime_hook_uses_the_current_chip():
    a = meta(4096, 4096)
    assert cost_tuple("aten::mm", [a, a]) == costs.gemm(4096, 4096, 4096, chip=current_chip()).as_tuple()


@pytest.mark.skipif(torch_biren.load_error() is not None, reason="runtime extension not loaded")
def test_the_fallback_charges_costs_generic(isolated_chip):
    from torch_biren.sim import profile

    x = torch.randn(1000, 1000, device="biren")  # 4 MB in, 4 MB out: memory-bound on every chip
    with profile() as prof:
        torch.sin(x)
    (rec,) = [r for r in prof.records if r.name == "aten::sin"]
    want = costs.generic(x.numel(), 2 * x.numel() * 4, isolated_chip)
    assert (rec.kind, rec.bound) == ("fallback", want.bound)
    assert rec.dur_ns == pytest.approx(want.ns, abs=1e-3)  # the clock keeps whole picoseconds
