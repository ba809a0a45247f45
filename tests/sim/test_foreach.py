"""_foreach_ ops charged as CUDA's multi_tensor_apply launches them (sim/registry.py)."""

import pytest
import torch

from torch_biren import sim
from torch_biren.sim import costs, registry
from torch_biren.sim.registry import TensorSpec, mta_launches

CHUNK = 65536


def test_launches_follow_multi_tensor_apply_by_hand():
    # depth 2 (in-place add of two lists): at most 64 tensors and 320 blocks per launch.
    sizes = [100_000] * 5 + [10] * 200
    # 5 big tensors (2 chunks each) + 59 tiny fill the first launch at 64 tensors; then 64, 64, 13.
    launches = mta_launches(sizes, depth=2)
    assert len(launches) == 4
    assert launches[0] == 5 * 100_000 + 59 * 10 and launches[1:] == [640, 640, 130]
    # depth 1: a tensor of 400 chunks fills 320 blocks, then carries over into a second launch
    assert mta_launches([400 * CHUNK], depth=1) == [320 * CHUNK, 80 * CHUNK]
    # depth 1 holds 110 tensors, with a scalar list 96; empty tensors are skipped
    assert len(mta_launches([1] * 220, depth=1)) == 2 and len(mta_launches([1] * 220, 1, scalarlist=True)) == 3
    assert mta_launches([0, 0, 5], depth=3) == [5]


def test_foreach_cost_is_one_generic_kernel_per_launch():
    ts = [TensorSpec((100_000,), torch.float32)] * 5 + [TensorSpec((10,), torch.float32)] * 200
    c = registry.cost_of("aten::_foreach_add_.List", [ts, ts])
    # in place: reads both lists, writes the first (3 passes of 4 bytes)
    expected = sum(costs.generic(n, n * 4 * 3).ns for n in [500_590, 640, 640, 130])
    assert c.ns == pytest.approx(expected, rel=1e-12)
    assert registry.foreach_launches("aten::_foreach_add_.List", ts, ts) == [500_590, 640, 640, 130]
    # the per-tensor loop it replaces: 205 kernels, each with its launch
    loop = sum(costs.generic(t.shape[0], t.shape[0] * 12).ns for t in ts)
    assert c.ns < loop / 10
    # functional form: one more list (the output) in the launch depth
    assert registry.foreach_launches("aten::_foreach_add.List", ts, ts) == mta_launches([t.shape[0] for t in ts], 3)
    # mixed dtypes take CUDA's slow path, one kernel per tensor
    mixed = [TensorSpec((10,), torch.float32), TensorSpec((10,), torch.bfloat16)]
    assert registry.cost_of("aten::_foreach_mul_.Scalar", [mixed, 2.0]).ns == pytest.approx(
        costs.generic(10, 80).ns + costs.generic(10, 40).ns)


def test_foreach_mm_is_one_gemm_per_pair():
    xs, ws = [TensorSpec((64, 32)), TensorSpec((128, 32))], [TensorSpec((32, 16))] * 2
    c = registry.cost_of("aten::_foreach_mm", [xs, ws])
    assert c.ns == pytest.approx(costs.gemm(64, 16, 32).ns + costs.gemm(128, 16, 32).ns)


def _step_ns(opt_kwargs):
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(64, 64) for _ in range(12)]).to("biren")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, **opt_kwargs)
    model(torch.ones(4, 64, device="biren")).sum().backward()
    opt.step()  # creates the state
    torch.biren.synchronize()
    sim.clock.reset()
    opt.step()
    torch.biren.synchronize()
    return sim.clock.elapsed_ns(), [p.detach().cpu() for p in model.parameters()]


def test_adamw_foreach_lies_between_fused_and_the_loop():
    fused, w_fused = _step_ns({"fused": True})
    foreach, w_foreach = _step_ns({"foreach": True})
    loop, w_loop = _step_ns({"foreach": False})
    assert fused < foreach < loop
    for a, b, c in zip(w_fused, w_foreach, w_loop):
        assert torch.allclose(a, b, atol=1e-6) and torch.allclose(b, c, atol=1e-6)


def test_live_foreach_op_is_charged_its_launches():
    ts = [torch.ones(100_000, device="biren") for _ in range(5)] + [torch.ones(10, device="biren") for _ in range(200)]
    torch.biren.synchronize()
    sim.clock.reset()
    torch._foreach_add_(ts, ts)
    torch.biren.synchronize()
    chip = sim.current_chip()
    expected = sum(costs.generic(n, n * 4 * 3).ns for n in [500_590, 640, 640, 130])
    assert sim.clock.elapsed_ns() == pytest.approx(chip.host_issue_ns + expected, abs=1e-3)
    assert ts[0][0].item() == 2.0 and ts[-1][-1].item() == 2.0
    counts = __import__("torch_biren").op_counts()
    assert "aten::_foreach_add_.List" in counts
