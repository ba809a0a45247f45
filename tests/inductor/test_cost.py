"""What a generated kernel is charged: the chip's vector roofline over the bytes it moves and the
vector operations of its body, plus the launch; a compiled pointwise chain saves exactly the
launches and memory round trips that fusion removes."""

import pytest
import torch

from torch_biren import _C
from torch_biren.inductor import cost
from torch_biren.sim import chip as chips

CHAIN_SOURCE = '''
def triton_poi_fused_add_mul_relu_0(in_ptr0, out_ptr0, xnumel, XBLOCK : tl.constexpr):
    xoffset = tl.program_id(0) * XBLOCK
    xindex = xoffset + tl.arange(0, XBLOCK)[:]
    xmask = xindex < xnumel
    x0 = xindex
    tmp0 = tl.load(in_ptr0 + (x0), xmask)
    tmp1 = 2.0
    tmp2 = tmp0 * tmp1
    tmp3 = 1.0
    tmp4 = tmp2 + tmp3
    tmp5 = tl.full([1], 0, tl.int32)
    tmp6 = triton_helpers.maximum(tmp5, tmp4)
    tmp7 = 3.0
    tmp8 = tmp6 * tmp7
    tl.store(out_ptr0 + (x0), tmp8, xmask)
'''


def test_vector_ops_count_the_value_arithmetic_only():
    assert cost.vector_ops(CHAIN_SOURCE) == 4  # *2, +1, max(0, .), *3; index math, loads, constants: none


def test_in_out_buffers_count_twice_and_elements_are_the_iteration_space():
    a, b = torch.empty(8, 100), torch.empty(100)
    c = cost.kernel_cost(3, {"in_out_ptr0": a, "in_ptr0": b, "xnumel": 8, "r0_numel": 100})
    assert c.bytes == (2 * 800 + 100) * 4 and c.flops == 3 * 800


def _eff(chip, nbytes):
    """The chip's memory efficiency at `nbytes`: its table (largest size first), linear between rows."""
    table = chip.mem_eff_table
    if nbytes >= table[0][0]:
        return table[0][1]
    for (hi_s, hi_e), (lo_s, lo_e) in zip(table, table[1:]):
        if nbytes >= lo_s:
            return lo_e + (hi_e - lo_e) * (nbytes - lo_s) / (hi_s - lo_s)
    return table[-1][1]


def _kernel_ns(chip, flops, nbytes):
    hbm = nbytes / (chip.mem_bw_Bps * _eff(chip, nbytes)) * 1e9
    die = chip.die_latency_ns + nbytes * chip.die_share / chip.die_link_Bps * 1e9 if chip.die_share else 0.0
    return chip.launch_ns + max(flops / chip.vector_flops * 1e9, hbm, die)


def _timeline_ns(chip, kernels):
    """One stream: the host issues each kernel (host_issue_ns), which starts once issued and once
    the one before it has finished."""
    host = device = 0.0
    for ns in kernels:
        host += chip.host_issue_ns
        device = max(device, host) + ns
    return device


def _chain(x):
    return torch.relu(x * 2 + 1) * 3


def _simulated_ns(fn, x):
    torch.biren.synchronize()
    t0 = _C._sim_elapsed_ps(x.device.index)
    fn(x)
    torch.biren.synchronize()
    return (_C._sim_elapsed_ps(x.device.index) - t0) / 1000


@pytest.mark.parametrize("numel", [1 << 20, 1 << 24], ids=["launch-bound", "memory-bound"])
def test_compiled_chain_saves_the_launches_and_round_trips_fusion_removes(numel):
    chip = chips.current_chip()
    x = torch.randn(numel, device="biren")
    torch._dynamo.reset()
    compiled = torch.compile(_chain)
    compiled(x)  # compiles
    eager_ns, compiled_ns = _simulated_ns(_chain, x), _simulated_ns(compiled, x)
    nbytes = 2 * 4 * numel  # each kernel reads x (or the last result) and writes its result: fp32
    # Eager: four kernels (mul, add, relu, mul), one vector op per element each, each a round trip
    # through memory. Compiled: one kernel, the four ops per element, one round trip.
    eager_want = _timeline_ns(chip, [_kernel_ns(chip, numel, nbytes)] * 4)
    compiled_want = _timeline_ns(chip, [_kernel_ns(chip, 4 * numel, nbytes)])
    # (the clock counts whole picoseconds: each kernel rounds by at most one)
    assert eager_ns == pytest.approx(eager_want, abs=0.01)
    assert compiled_ns == pytest.approx(compiled_want, abs=0.01)
    one = _kernel_ns(chip, numel, nbytes)
    if one < chip.host_issue_ns:  # launch-bound: the host's issue of three kernels is what fusion saves
        assert eager_ns - compiled_ns == pytest.approx(3 * chip.host_issue_ns, abs=0.01)
    else:  # memory-bound: three launches and three round trips of 8 bytes per element
        assert eager_ns - compiled_ns == pytest.approx(3 * one, abs=0.01)
