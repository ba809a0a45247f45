import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import sdpa_backward_flop_count, sdpa_flop_count

from torch_biren.sim import costs
from torch_biren.sim.chip import load_chip

CHIPS = {n: load_chip(n) for n in ("BR166", "BR106", "H100", "A100")}
BR166 = CHIPS["BR166"]
chips = st.sampled_from(list(CHIPS)).map(CHIPS.get)  # drawn by name: readable failures
dims = st.integers(1, 20000)


def test_generic_by_hand():
    c = costs.generic(1e9, 1e8, BR166)
    compute, memory = 1e9 / 16.384e12 * 1e9, 1e8 / (1640e9 * 0.91) * 1e9
    assert (c.compute_ns, c.memory_ns) == pytest.approx((compute, memory))
    assert c.ns == pytest.approx(memory + 5000) and c.bound == "memory"
    # between table rows: efficiency 0.6 + 0.15 * 4.5 / 9 = 0.675, and less time than the launch
    small = costs.generic(0, 5.5e6, BR166)
    assert small.memory_ns == pytest.approx(5.5e6 / (1640e9 * 0.675) * 1e9)
    assert small.bound == "launch" and small.ns == pytest.approx(small.memory_ns + 5000)
    assert costs.generic(1e12, 0, BR166).bound == "compute"
    assert costs.generic(1e9, 0, BR166, fp64=True).compute_ns == pytest.approx(20 * 1e9 / 16.384e12 * 1e9)


def test_gemm_by_hand():
    c = costs.gemm(4096, 4096, 4096, dtype="bf16", chip=BR166)
    assert c.flops == 2 * 4096**3 and c.bytes == 3 * 4096 * 4096 * 2
    # 128x128 blocks: 1024 of them over 32 SPCs is 32 full waves, so no padding; the main loop at
    # 0.859 of peak after the pipeline's prologue, one 400 ns memory latency
    assert c.kernel == "128x128x64"
    assert c.compute_ns == pytest.approx(2 * 4096**3 / (1024e12 * 0.859) * 1e9 + 400)
    assert c.ns == pytest.approx(c.compute_ns + 5000) and c.bound == "compute"


def test_gemm_waits_one_memory_latency_then_runs_its_main_loop_at_one_efficiency():
    one = _only(BR166, {"block": [64, 64, 64]})
    no_latency = one.replace(memory_latency_ns=0)
    for shape in ((4096, 4096, 4096), (64, 64, 64), (4097, 4096, 4096)):
        a, b = costs.gemm(*shape, chip=one), costs.gemm(*shape, chip=no_latency)
        assert a.compute_ns - b.compute_ns == pytest.approx(400)
    # the main loop runs at one efficiency whatever the size (no size table): one wave of one k-step
    # against 128 waves of 64
    small, large = costs.gemm(64, 64, 64, chip=no_latency), costs.gemm(4096, 4096, 4096, chip=no_latency)
    assert small.compute_ns / large.compute_ns == pytest.approx(1 / (128 * 64))


def _only(chip, *families):
    return chip.replace(gemm_kernels=list(families))


def test_gemm_tile_and_wave_quantisation():
    one = _only(BR166, {"block": [64, 64, 64]}).replace(memory_latency_ns=0)  # waves alone
    base = costs.gemm(4096, 4096, 4096, chip=one).compute_ns
    # one more row: 65 x 64 tiles = 4160 = 130 waves of 32 instead of 128
    assert costs.gemm(4097, 4096, 4096, chip=one).compute_ns == pytest.approx(base * 130 / 128)
    # 33 x 33 tiles = 1089 = 34.03 waves -> 35 full waves; 32 x 32 tiles = 32 waves
    k = 65536
    ratio = costs.gemm(2112, 2112, k, chip=one).compute_ns / costs.gemm(2048, 2048, k, chip=one).compute_ns
    assert ratio == pytest.approx(35 / 32)
    # the BLAS never does worse with more candidates
    with_latency = _only(BR166, {"block": [64, 64, 64]})
    assert costs.gemm(4097, 4096, 4096, chip=BR166).ns <= costs.gemm(4097, 4096, 4096, chip=with_latency).ns


def test_split_k_fills_the_units_and_pays_for_its_partial_sums():
    one = _only(BR166, {"block": [64, 64, 64]})
    split = _only(BR166, {"block": [64, 64, 64], "split_k": [4]})
    a, b = costs.gemm(64, 512, 8192, chip=one), costs.gemm(64, 512, 8192, chip=split)
    # 8 blocks on 32 SPCs: one wave of 128 k-steps; split 4 ways, 32 slices of 32 steps; one
    # prologue (memory latency) each launch
    latency = BR166.memory_latency_ns
    assert b.compute_ns - latency == pytest.approx((a.compute_ns - latency) / 4)
    assert b.kernel == "64x64x64 split-K 4"
    once = (64 * 8192 + 8192 * 512 + 64 * 512) * 2
    # the fp32 partials (a 64 x 512 workspace) stay in BR166's L2 ...
    assert b.memory_ns == pytest.approx(costs.memory_ns(once, BR166))
    # ... and go through device memory, written and read back by 3 of the 4 slices, when it cannot
    small_l2 = split.replace(l2_bytes=64 * 512 * 4 - 1)
    c = costs.gemm(64, 512, 8192, chip=small_l2)
    assert c.memory_ns == pytest.approx(costs.memory_ns(once + 2 * 3 * 64 * 512 * 4, BR166))


def test_stream_k_removes_the_partial_wave():
    h100 = CHIPS["H100"]
    dp = _only(h100, {"block": [128, 256, 64]})
    both = _only(h100, {"block": [128, 256, 64], "stream_k": True})
    a, b = costs.gemm(8192, 8192, 8192, chip=dp), costs.gemm(8192, 8192, 8192, chip=both)
    # 2048 blocks on 132 SMs: 15.5 waves padded to 16 data-parallel (2048 k-steps per SM); stream-K
    # deals the 2048 x 128 k-steps evenly, 1986 per SM; both after one prologue (memory latency)
    latency = h100.memory_latency_ns
    assert (a.compute_ns - latency) / (b.compute_ns - latency) == pytest.approx(2048 / 1986)
    assert b.kernel == "128x256x64 stream-K" and b.ns < a.ns


def test_decode_gemms_are_memory_bound_near_their_lower_bound():
    for name in ("BR166", "H100", "A100"):
        chip = CHIPS[name]
        c = costs.gemm(16, 1536, 7168, chip=chip)
        low = c.bytes / chip.mem_bw_Bps * 1e9 + chip.launch_ns
        assert c.bound == "memory" and low <= c.ns <= 1.3 * low, (name, c)


def test_grouped_gemm_selects_per_launch_over_every_group():
    h100 = CHIPS["H100"]
    experts = costs.grouped_gemm([(16, 1536, 7168)] * 8, chip=h100)
    one = costs.gemm(16, 1536, 7168, chip=h100)
    assert experts.flops == 8 * one.flops and experts.bytes == 8 * one.bytes
    assert experts.bound == "memory" and experts.kernel
    # one launch: less than eight separate GEMMs, more than one
    assert one.ns < experts.ns < 8 * one.ns
    assert costs.grouped_gemm([(16, 1536, 7168)] * 8, chip=h100) == costs.gemm(16, 1536, 7168, 8, chip=h100)


def test_4096_gemm_on_br166_is_near_its_roofline():
    c = costs.gemm(4096, 4096, 4096, chip=BR166)
    roofline = max(c.flops / 1024e12, c.bytes / 1640e9) * 1e9
    assert roofline <= c.ns <= 1.5 * roofline


def test_br106_takes_about_twice_as_long():
    ratio = costs.gemm(4096, 4096, 4096, chip=CHIPS["BR106"]).ns / costs.gemm(4096, 4096, 4096, chip=BR166).ns
    assert ratio == pytest.approx(2, rel=0.05)


def test_large_elementwise_add_is_memory_bound_at_the_table_figure():
    numel = 2**28
    c = costs.elementwise(numel, "fp32", BR166)
    assert c.bound == "memory" and c.bytes == 3 * 4 * numel and c.flops == numel
    achieved = c.bytes / c.ns * 1e9
    assert achieved == pytest.approx(BR166.mem_bw_Bps * 0.91, rel=0.005)
    assert achieved <= BR166.mem_bw_Bps * 0.91


def test_reduction_reads_input_writes_output():
    c = costs.reduction(2**20, 2**10, "bf16", BR166)
    assert c.flops == 2**20 and c.bytes == (2**20 + 2**10) * 2


def test_attention_flops_follow_flop_counter():
    b, h, lq, lk, d = 2, 16, 1024, 2048, 128
    q, k = (b, h, lq, d), (b, h, lk, d)
    fwd = costs.attention(b, h, h, lq, lk, d, chip=BR166)
    assert fwd.flops == sdpa_flop_count(q, k, k) == 4 * b * h * lq * lk * d
    bwd = costs.attention(b, h, h, lq, lk, d, backward=True, chip=BR166)
    assert bwd.flops == sdpa_backward_flop_count(q, q, k, k) == 10 * b * h * lq * lk * d
    # causal: the unmasked pairs only, about half; top-left aligned, so lq < lk sees few keys
    causal = costs.attention(b, h, h, lq, lq, d, causal=True, chip=BR166)
    assert causal.flops == 4 * b * h * d * (lq * (lq + 1) // 2)
    assert causal.flops / costs.attention(b, h, h, lq, lq, d, chip=BR166).flops == pytest.approx(0.5, rel=1e-3)
    assert costs.attention(b, h, h, 3, 5, d, causal=True, chip=BR166).flops == 4 * b * h * d * (1 + 2 + 3)
    assert costs.attention(b, h, h, 5, 3, d, causal=True, chip=BR166).flops == 4 * b * h * d * (1 + 2 + 3 + 3 + 3)


def test_causal_skips_tiles_above_the_diagonal():
    full = costs.attention(8, 16, 16, 8192, 8192, 128, chip=BR166)
    causal = costs.attention(8, 16, 16, 8192, 8192, 128, causal=True, chip=BR166)
    # 128 x 128 tiles of 64: 8256 of 16384 lie on or below the diagonal
    assert causal.compute_ns / full.compute_ns == pytest.approx(8256 / 16384, rel=0.01)


def test_gqa_shares_kv_traffic():
    mha = costs.attention(4, 32, 32, 4096, 4096, 128, chip=BR166)
    gqa = costs.attention(4, 32, 8, 4096, 4096, 128, chip=BR166)
    assert gqa.flops == mha.flops
    elt = 2
    q_o = 4 * 32 * 4096 * 256 * elt
    assert mha.bytes - gqa.bytes == 4 * (32 - 8) * 4096 * 256 * elt
    assert gqa.bytes == q_o + 4 * 8 * 4096 * 256 * elt + 4 * 32 * 4096 * 4


def test_copies():
    h2d = costs.copy(2**26, "h2d", BR166)
    assert h2d.bound == "link" and h2d.ns == pytest.approx(2**26 / 64e9 * 1e9 + 5000)
    assert costs.copy(2**26, "p2p", BR166).link_ns == pytest.approx(2**26 / 256e9 * 1e9)
    d2d = costs.copy(2**30, "d2d", BR166)
    assert d2d.bytes == 2**31 and d2d.bound == "memory"
    widen = costs.copy(2**20, "d2d", BR166, out_bytes=2**21)
    assert widen.bytes == 3 * 2**20
    with pytest.raises(ValueError, match="copy kind"):
        costs.copy(10, "sideways", BR166)


def test_fp64_is_emulated_on_br_and_native_on_gpus():
    br = costs.gemm(2048, 2048, 2048, dtype="fp64", chip=BR166)
    assert br.compute_ns > 50 * costs.gemm(2048, 2048, 2048, dtype="fp32", chip=BR166).compute_ns
    assert BR166.matrix_flops("fp64") == 16.384e12 / 20
    assert CHIPS["H100"].matrix_flops("fp64") == 67e12
    add64 = costs.elementwise(2**20, "fp64", BR166)
    assert add64.compute_ns == pytest.approx(20 * 2**20 / 16.384e12 * 1e9) and add64.bytes == 3 * 8 * 2**20


def test_tiny_kernels_are_launch_bound():
    for chip in CHIPS.values():
        for c in (costs.gemm(1, 1, 1, chip=chip), costs.elementwise(1, chip=chip), costs.generic(0, 0, chip)):
            # a 1x1x1 GEMM steps one 64-deep block; UMA on a multi-die card adds the die link's latency
            assert c.bound == "launch" and 5000 <= c.ns < 2 * chip.launch_ns + chip.die_latency_ns


# Properties --------------------------------------------------------------------------------------------


def _within_peaks(c, chip, dtype):
    assert c.ns > 0
    assert c.flops / c.ns * 1e9 <= chip.matrix_flops(dtype) * (1 + 1e-9)
    assert c.bytes / c.ns * 1e9 <= chip.mem_bw_Bps * (1 + 1e-9)


@settings(max_examples=60, deadline=None)
@given(chips, dims, dims, dims, st.integers(1, 64), st.sampled_from(["bf16", "fp32", "int8"]), st.data())
def test_gemm_monotone_and_under_peaks(chip, m, n, k, batch, dtype, data):
    c = costs.gemm(m, n, k, batch, dtype, chip)
    _within_peaks(c, chip, dtype)
    grow = data.draw(st.sampled_from(["m", "n", "k", "batch"]))
    args = {"m": m, "n": n, "k": k, "batch": batch}
    args[grow] += data.draw(st.integers(1, 5000))
    assert costs.gemm(**args, dtype=dtype, chip=chip).ns >= c.ns


@settings(max_examples=40, deadline=None)
@given(chips, st.integers(1, 8), st.sampled_from([(8, 8), (16, 4), (32, 8)]), st.integers(1, 4096),
       st.integers(1, 4096), st.sampled_from([64, 128]), st.booleans(), st.booleans(), st.data())  # fmt: skip
def test_attention_monotone_and_under_peaks(chip, b, heads, lq, lk, d, causal, backward, data):
    h_q, h_kv = heads
    args = dict(b=b, h_q=h_q, h_kv=h_kv, lq=lq, lk=lk, d_qk=d, causal=causal, backward=backward, chip=chip)
    c = costs.attention(**args)
    _within_peaks(c, chip, "bf16")
    grow = data.draw(st.sampled_from(["b", "lq", "lk", "d_qk"]))
    args[grow] += data.draw(st.integers(1, 2048))
    assert costs.attention(**args).ns >= c.ns


@settings(max_examples=60, deadline=None)
@given(chips, st.floats(0, 1e13), st.floats(0, 1e11), st.floats(0, 1e12), st.floats(0, 1e10))
def test_generic_monotone_and_under_peaks(chip, flops, nbytes, more_flops, more_bytes):
    c = costs.generic(flops, nbytes, chip)
    assert c.flops / c.ns * 1e9 <= chip.vector_flops * (1 + 1e-9)
    assert c.bytes / c.ns * 1e9 <= chip.mem_bw_Bps * (1 + 1e-9)
    assert costs.generic(flops + more_flops, nbytes + more_bytes, chip).ns >= c.ns


@settings(max_examples=40, deadline=None)
@given(chips, st.integers(0, 2**32), st.integers(0, 2**30), st.sampled_from(["d2d", "h2d", "p2p"]))
def test_copy_monotone(chip, nbytes, more, kind):
    assert costs.copy(nbytes + more, kind, chip).ns >= costs.copy(nbytes, kind, chip).ns


# The BLAS's rules over a sweep: memory-bound GEMMs near their lower bound, large ones under the
# published achievable fraction of peak (reference/published-runs.md: H100 80%, A100 86%; BR166 has no
# measurement and inherits the A100 fit's 86%).

_SWEEP = [(m, n, k) for m in (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
          for n in (128, 1536, 4096, 7168, 16384) for k in (128, 1024, 4096, 7168, 16384)]  # fmt: skip
_ACHIEVABLE = {"H100": 0.80, "A100": 0.86, "BR166": 0.86}


def _lower_bound(c, chip):
    return max(c.flops / chip.matrix_flops("bf16"), c.bytes / chip.mem_bw_Bps) * 1e9 + chip.launch_ns


@pytest.mark.parametrize("name", ["BR166", "H100", "A100"])
def test_memory_bound_gemms_lie_within_1_3_of_their_lower_bound(name):
    chip = CHIPS[name]
    far = []
    for m, n, k in _SWEEP:
        c = costs.gemm(m, n, k, chip=chip)
        low = _lower_bound(c, chip)
        assert c.ns >= low * (1 - 1e-12)
        # clearly memory-bound: the roofline's memory time at least 1.5x its matrix time
        if c.bytes / chip.mem_bw_Bps >= 1.5 * c.flops / chip.matrix_flops("bf16") and c.ns > 1.3 * low:
            far.append((m, n, k, c.kernel, round(c.ns / low, 2)))
    assert not far


@pytest.mark.parametrize("name", ["BR166", "H100", "A100"])
def test_large_gemms_stay_under_the_achievable_fraction_and_report_their_kernel(name):
    chip = CHIPS[name]
    for m, n, k in [(4096, 4096, 4096), (8192, 8192, 8192), (16384, 8192, 4096), (8192, 7168, 16384)]:
        c = costs.gemm(m, n, k, chip=chip)
        assert c.flops / c.ns * 1e9 <= _ACHIEVABLE[name] * chip.matrix_flops("bf16")
        assert c.kernel in {kern.name for kern in chip.gemm_kernels}
