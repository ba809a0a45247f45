"""Calibrate the device model against a GPU, or check it against published figures without one.

    python benchmarks/calibrate.py --self-check  (the default) CPU only, seconds: the GPU spec files
                                                 reproduce the published efficiency figures, and
                                                 BR166 its reported bandwidths; nothing is measured.
                                                 Writes results/calibration.{md,json}
    python benchmarks/calibrate.py --gpu         on an H100, H200 or A100, at most --budget-s (300 s):
                                                 times GEMMs (square, decode, Qwen/DeepSeek layer
                                                 shapes), attention, elementwise bandwidth, launch and
                                                 graph overheads and host copies, compares each with
                                                 the model for that GPU's spec file and writes the
                                                 errors, fitted and held-out shapes apart, to
                                                 results/calibration_gpu.{md,json}. Never in CI.
    python benchmarks/calibrate.py --dry-run     the --gpu code path on the simulated biren device
                                                 with tiny shapes (checks the script, measures nothing
                                                 real); writes to --out (default: a temporary folder)

The efficiency tables in the spec files are Calculon's A100 tables scaled to the published figures;
fitted_tables() derives them and the self-check fails when a spec file drifts from the fit. "Fitted"
shapes below are those the fit uses (the max-achievable-matmul sweep, the FlashAttention benchmark
at head dim 128); every other shape is held out, and so is XLA's measured H100 GEMM table. The A100's
collective numbers (collective_efficiency, collective_protocols) are fitted to a published nccl-tests
all_reduce run (fitted_collective); three other runs are held out.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from torch_biren.projection import attention
from torch_biren.sim import costs
from torch_biren.sim.chip import load_chip

RESULTS = Path(__file__).with_name("results")

# Calculon's A100 system file: the starting shapes, (min FLOPs | min bytes, efficiency).
CALCULON_MATRIX = ((128e9, 0.95), (16e9, 0.9), (1e9, 0.6), (0, 0.1))
CALCULON_MEMORY = ((100e6, 0.90), (10e6, 0.75), (1e6, 0.6), (0, 0.3))
# The matrix table's rows below the top are whole-GEMM fits that fold in the launch, memory time and
# partial waves the model charges itself (sim/costs.py gemm), so only its top row, the main loop's
# efficiency on large GEMMs, is the start: one flat row.
MAIN_LOOP_START = ((0, CALCULON_MATRIX[0][1]),)

# Published figures (reference/br1xx-specs.md, published-runs.md) as fractions of dense BF16 peak.
GEMM_TARGET = {"H100": 792 / 989, "A100": 268 / 312}  # max achievable matmul FLOPS
FA_FWD_TARGET = {"A100": 0.73, "H100": 0.75}  # FlashAttention-2 top of 50-73%; FlashAttention-3
FA_BWD_TARGET = {"A100": (0.50 + 0.73) / 2}  # FA2's range, mid; H100 keeps A100's bwd/fwd ratio
FA_BWD_TARGET["H100"] = FA_FWD_TARGET["H100"] * FA_BWD_TARGET["A100"] / FA_FWD_TARGET["A100"]
COPY_RANGE = (0.87, 0.90)  # device-to-device copy, large transfers, fraction of HBM spec
LAUNCH_RANGE_NS = (4000, 6000)
# Dao et al. 2022 (FlashAttention, arXiv 2205.14135) Appendix E, Tables 15-20: Megatron's attention (the
# score matrix materialised: baddbmm, fused softmax, dropout, bmm) on one A100 40GB, batch 16, 8 heads of
# 64, fp16, no mask: (dropout, seq) -> (forward ms, backward ms). The fit takes seq 2048, the length of the
# published runs that use this path; 512 and 1024 are held out. The 40GB part's 1555 GB/s: NVIDIA A100
# datasheet (the 80GB part's 2039 GB/s is A100.json's).
MATERIALISED_MS = {(0.0, 512): (0.42, 0.80), (0.0, 1024): (1.33, 2.59), (0.0, 2048): (4.28, 8.86),
                   (0.1, 512): (0.56, 0.92), (0.1, 1024): (1.88, 2.94), (0.1, 2048): (6.56, 10.80)}
A100_40GB_HBM_Bps = 1.555e12
# nccl-tests all_reduce_perf on one 8 x A100 NVLink server, out-of-place time in us by buffer size,
# pasted in public repositories the code index holds. AFDWang/Hetu-Galvatron's
# tests/profiler/test_hardware_profile.py: 8 x A100-SXM4-40GB, one process driving all eight (-g 8).
# A Chinese nccl-tests note (host "thanos"): 8 x A100-SXM4-80GB, -g 8, and mpirun with one process per
# GPU, as torchrun and Megatron run. A third file: nccl-tests 2.19.4, -g 8, 8 x A100-SXM4-80GB (host
# "dkh"). The fit takes the one-process-per-GPU run; the -g 8 runs are held out (one host thread
# launches all eight kernels, which adds 15-20 us at small sizes).
KiB, MiB = 2**10, 2**20
NCCL_TESTS_FIT_RUN = "80GB, one process per GPU (mpirun)"
NCCL_TESTS_A100_US = {
    NCCL_TESTS_FIT_RUN: {
        8: 20.26, 64 * KiB: 31.82, 1 * MiB: 37.89, 4 * MiB: 81.66, 16 * MiB: 213.3, 32 * MiB: 377.6,
        64 * MiB: 615.7, 128 * MiB: 1181.6, 256 * MiB: 2218.2, 512 * MiB: 4248.8, 1024 * MiB: 8244.5},
    "80GB, one process (-g 8)": {
        8: 40.12, 64 * KiB: 40.97, 1 * MiB: 52.61, 4 * MiB: 103.8, 16 * MiB: 260.5, 32 * MiB: 439.2,
        64 * MiB: 695.5, 128 * MiB: 1305.0, 256 * MiB: 2392.6, 512 * MiB: 4627.5, 1024 * MiB: 8247.6},
    "80GB, nccl-tests 2.19.4 (-g 8)": {
        8: 34.84, 64 * KiB: 37.48, 1 * MiB: 67.31, 4 * MiB: 106.56, 16 * MiB: 273.12, 32 * MiB: 431.4,
        64 * MiB: 671.74, 128 * MiB: 1295.41},
    "40GB, Hetu-Galvatron (-g 8)": {
        1 * MiB: 78.77, 4 * MiB: 131.1, 16 * MiB: 293.6, 32 * MiB: 415.7, 64 * MiB: 657.2, 128 * MiB: 1256.7,
        256 * MiB: 2338.9, 512 * MiB: 4651.2, 1024 * MiB: 8139.9},
}  # fmt: skip
NCCL_BUSBW_TARGET = (200e9, 208e9)  # published-runs.md: 8 x A100 all_reduce, large messages
# Held out: XLA's default matmul performance table for sm_90 (NVIDIA H100), measured by XLA's
# matmul_perf_table_gen (tensorflow/tensorflow third_party/xla/xla/service/gpu/model/
# matmul_interpolator_data.h, the version keyed "BF16xBF16->BF16"): every b=1 entry in the file's first
# 16,000 characters, (m, n, k) -> measured BF16 TFLOP/s. Nothing is fitted to it.
XLA_H100_BF16_TFLOPS = {
    (1024, 4096, 512): 340.68, (2048, 1024, 256): 139.81, (4096, 2048, 4096): 764.09, (512, 4096, 4096): 653.13,
    (4096, 256, 1024): 216.13, (1024, 256, 512): 41.84, (512, 512, 2048): 115.31, (512, 256, 4096): 92.18,
    (256, 2048, 4096): 288.33, (256, 256, 1024): 17.85, (2048, 1024, 4096): 659.14, (4096, 4096, 1024): 681.09,
    (1024, 4096, 256): 214.75, (1024, 1024, 1024): 246.72, (256, 4096, 1024): 229.04, (1024, 256, 256): 23.97,
    (1024, 512, 1024): 141.88, (2048, 4096, 2048): 717.50, (2048, 512, 4096): 455.75, (256, 512, 256): 12.52,
    (2048, 2048, 1024): 492.09, (1024, 2048, 2048): 526.34, (4096, 512, 512): 239.25,
}  # fmt: skip
BR166_REPORTED_Bps = {"whole card (UMA)": (1, "UMA", 1480e9), "NUMA die": (1, "NUMA", 820e9),
                      "SVI half": (2, "UMA", 820e9), "SVI quarter": (4, "UMA", 395e9)}  # fmt: skip


# Sweeps ---------------------------------------------------------------------------------------------


def gemm_shapes():
    """Square, LLM-projection and skinny (decode) bf16 GEMMs: (m, n, k)."""
    square = [(s, s, s) for s in (256, 512, 1024, 2048, 3072, 4096, 6144, 8192, 12288, 16384)]
    llm = [(t, n, k) for t in (1, 16, 128, 1024, 4096, 16384) for n, k in ((4096, 4096), (14336, 4096), (4096, 14336))]
    return square + llm


def attention_shapes():
    """FlashAttention benchmark settings: 16k tokens per batch, 16 heads of 128 (and 32 of 64)."""
    return [(16384 // s, 2048 // d, s, d, causal) for d in (128, 64) for s in (512, 1024, 2048, 4096, 8192)
            for causal in (False, True)]  # fmt: skip


def elementwise_sizes():
    return [2**p for p in range(12, 29, 2)]


def best_gemm_fraction(chip):
    """Highest predicted BF16 GEMM throughput over a max-achievable-matmul style sweep, / peak."""
    sizes = range(1024, 16385, 1024)
    best = max(
        (c.flops / c.ns for m in sizes for n in sizes for k in sizes for c in [costs.gemm(m, n, k, chip=chip)]),
    )
    return best * 1e9 / chip.matrix_flops("bf16")


def best_attention_fraction(chip, backward):
    best = 0.0
    for b, h, s, d, causal in attention_shapes():
        if d != 128:
            continue
        c = costs.attention(b, h, h, s, s, d, dtype="bf16", causal=causal, backward=backward, chip=chip)
        best = max(best, c.flops / c.ns * 1e9)
    return best / chip.matrix_flops("bf16")


def copy_fraction(chip, nbytes):
    c = costs.copy(nbytes, "d2d", chip)
    return c.bytes / c.ns * 1e9 / (chip.hbm_peak_Bps)


# Fitting --------------------------------------------------------------------------------------------


def _scaled(table, s):
    return [[size, round(eff * s, 3)] for size, eff in table]


def _solve(predict, target, start=1.0):
    """Scale s with predict(s) == target; predict is close to proportional to s."""
    s = start
    for _ in range(4):
        s *= target / predict(s)
    return s


def fitted_tables(name):
    """Calculon's top-row main-loop efficiency scaled so the best large GEMM hits the published
    figure, then the attention efficiencies (fractions of GEMM efficiency) so FlashAttention's do."""
    chip = load_chip(name)

    def gemm_at(s):
        return best_gemm_fraction(chip.replace(matrix_efficiency=_scaled(MAIN_LOOP_START, s)))

    s = _solve(gemm_at, GEMM_TARGET[name], GEMM_TARGET[name] / MAIN_LOOP_START[0][1])
    fitted = chip.replace(matrix_efficiency=_scaled(MAIN_LOOP_START, s))
    attn = {}
    for key, targets, backward in (("fwd", FA_FWD_TARGET, False), ("bwd", FA_BWD_TARGET, True)):

        def attn_at(x, key=key, backward=backward):
            eff = {"fwd": 1.0, "bwd": 1.0, key: x}
            return best_attention_fraction(fitted.replace(attention_efficiency=eff), backward)

        attn[key] = round(_solve(attn_at, targets[name]), 3)
    return {"scale": round(s, 4), "matrix_efficiency": _scaled(MAIN_LOOP_START, s), "attention_efficiency": attn}


def materialised_ms(chip, dropout, seq):
    """(forward ms, backward ms) of projection/attention.py's kernels at FlashAttention's benchmark shape
    on `chip` with the A100 40GB's memory bandwidth."""
    fwd, bwd = attention.kernels(16, 8, seq, seq, 64, "fp16", dropout, chip.replace(hbm_peak_Bps=A100_40GB_HBM_Bps))
    return sum(c.ns for c in fwd.values()) / 1e6, sum(c.ns for c in bwd.values()) / 1e6


def _materialised_held_out():
    """((dropout, seq), (fwd, bwd) measured over modelled with the fitted efficiency) off the fit's length."""
    a100 = load_chip("A100")
    return [((d, seq), tuple(m / g for m, g in zip(MATERIALISED_MS[(d, seq)], materialised_ms(a100, d, seq))))
            for d, seq in MATERIALISED_MS if seq != 2048]


def fitted_materialised(name="A100"):
    """materialised_attention_efficiency: per pass, the geometric mean over dropout 0 and 0.1 of the
    modelled time (the efficiency at 1) over the measured, at seq 2048."""
    chip = load_chip(name).replace(materialised_attention_efficiency={"fwd": 1.0, "bwd": 1.0})
    out = {}
    for i, key in enumerate(("fwd", "bwd")):
        ratios = [materialised_ms(chip, d, 2048)[i] / MATERIALISED_MS[(d, 2048)][i] for d in (0.0, 0.1)]
        out[key] = round(statistics.geometric_mean(ratios), 3)
    return out


def _ring_all_reduce_ns(nbytes, ranks, link_Bps, launch_ns, step_ns, efficiency):
    """sim/collectives.py's ring all_reduce in one server under one protocol, vectorised over numpy
    parameter arrays (the fit searches them; the self-check then runs the model itself)."""
    return launch_ns + 2 * (ranks - 1) * step_ns + 2 * (ranks - 1) / ranks * nbytes / (link_Bps * efficiency) * 1e9


def fitted_collective(name="A100", rounds=10):
    """collective_efficiency and collective_protocols {simple_step_ns, ll_step_ns, ll_share}: the
    two-protocol ring (the faster of Simple and LL per size) with the least squared log error against
    the one-process-per-GPU nccl-tests run, by a grid search narrowed round by round."""
    import numpy as np

    chip = load_chip(name)
    run = NCCL_TESTS_A100_US[NCCL_TESTS_FIT_RUN]
    sizes = np.array(sorted(run), dtype=float)
    measured = np.array([run[s] * 1e3 for s in sorted(run)])
    link = chip.card_link_Bps  # each way per card, over all its links
    # (low, high) per parameter: Simple step ns, Simple efficiency, LL step ns, LL efficiency
    box = [(0.0, 20000.0), (0.4, 1.0), (0.0, 5000.0), (0.2, 1.0)]
    best = None
    for _ in range(rounds):
        axes = [np.linspace(lo, hi, 11) for lo, hi in box]
        grid = [a.reshape(-1, 1) for a in np.meshgrid(*axes, indexing="ij")]
        simple = _ring_all_reduce_ns(sizes, 8, link, chip.launch_ns, grid[0], grid[1])
        ll = _ring_all_reduce_ns(sizes, 8, link, chip.launch_ns, grid[2], grid[3])
        err = np.mean(np.log(np.minimum(simple, ll) / measured) ** 2, axis=1)
        i = int(err.argmin())
        best = [float(g[i, 0]) for g in grid]
        box = [(max(lo, b - (hi - lo) / 5), min(hi, b + (hi - lo) / 5)) for b, (lo, hi) in zip(best, box)]
    simple_step, eff, ll_step, ll_eff = best
    return {"collective_efficiency": round(eff, 3),
            "collective_protocols": {"simple_step_ns": round(simple_step, -1), "ll_step_ns": round(ll_step, -1),
                                     "ll_share": round(ll_eff / eff, 3)}}  # fmt: skip


def nccl_tests_errors(name="A100"):
    """{run: [(bytes, measured us, model us)]}: the model (sim/collectives.py with the chip file) on
    8 ranks of one server."""
    from torch_biren.sim import collectives

    topo = collectives.topology(8, name)
    return {run: [(s, t, collectives.collective("all_reduce", s, 8, topo).ns / 1e3) for s, t in sorted(times.items())]
            for run, times in NCCL_TESTS_A100_US.items()}  # fmt: skip


def xla_gemm_errors():
    """[((m, n, k), measured TFLOP/s, modelled TFLOP/s)] on the H100 spec file, XLA's table's shapes."""
    h100 = load_chip("H100")
    return [((m, n, k), tf, 2 * m * n * k / costs.gemm(m, n, k, chip=h100).ns / 1e3)
            for (m, n, k), tf in sorted(XLA_H100_BF16_TFLOPS.items(), key=lambda e: e[0][0] * e[0][1] * e[0][2])]


def _held_out_collective_errors():
    return {run: [t / m - 1 for _, t, m in rows] for run, rows in nccl_tests_errors().items() if run != NCCL_TESTS_FIT_RUN}


# Self-check -----------------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    value: str
    target: str
    ok: bool


def _close(a, b, rel):
    return abs(a - b) <= rel * abs(b)


def self_check():
    checks, fits = [], {}
    for name in ("H100", "A100"):
        chip = load_chip(name)
        fits[name] = fit = fitted_tables(name)
        spec_rows = chip.matrix_eff_table
        same = all(_close(a[1], b[1], 0.005) for a, b in zip(spec_rows, fit["matrix_efficiency"]))
        checks.append(Check(f"{name} matrix_efficiency is the fit", _rows(spec_rows), _rows(fit["matrix_efficiency"]), same))
        attn = chip.spec["attention_efficiency"].value
        same = all(_close(attn[k], fit["attention_efficiency"][k], 0.005) for k in ("fwd", "bwd"))
        checks.append(Check(f"{name} attention_efficiency is the fit", str(attn), str(fit["attention_efficiency"]), same))
        g = best_gemm_fraction(chip)
        checks.append(Check(f"{name} best BF16 GEMM / peak", f"{g:.3f}", f"{GEMM_TARGET[name]:.3f} +-1%",
                            _close(g, GEMM_TARGET[name], 0.01)))  # fmt: skip
        for backward, targets in ((False, FA_FWD_TARGET), (True, FA_BWD_TARGET)):
            a = best_attention_fraction(chip, backward)
            checks.append(Check(f"{name} best flash attention {'bwd' if backward else 'fwd'} / peak", f"{a:.3f}",
                                f"{targets[name]:.3f} +-1.5%", _close(a, targets[name], 0.015)))  # fmt: skip
    a100 = load_chip("A100")
    fit = fitted_materialised()
    spec = a100.spec["materialised_attention_efficiency"].value
    checks.append(Check("A100 materialised_attention_efficiency is the fit", str(spec), str(fit),
                        all(_close(spec[k], fit[k], 0.005) for k in ("fwd", "bwd"))))
    for (dropout, seq), measured in MATERIALISED_MS.items():
        if seq != 2048:
            continue
        for i, what in enumerate(("fwd", "bwd")):
            got = materialised_ms(a100, dropout, seq)[i]
            checks.append(Check(f"A100 materialised attention {what}, dropout {dropout:g}, seq {seq} (ms)", f"{got:.2f}",
                                f"{measured[i]} +-10% (FlashAttention's Megatron)", _close(got, measured[i], 0.10)))
    fits["A100 collectives"] = fit = fitted_collective()
    spec = {k: a100.spec[k].value for k in fit}
    same = _close(spec["collective_efficiency"], fit["collective_efficiency"], 0.005) and all(
        _close(spec["collective_protocols"][k], v, 0.01) for k, v in fit["collective_protocols"].items())
    checks.append(Check("A100 collective_efficiency and collective_protocols are the fit", str(spec), str(fit), same))
    from torch_biren.sim import collectives

    topo = collectives.topology(8, a100)
    lo, hi = NCCL_BUSBW_TARGET
    bus = collectives.bus_bandwidth("all_reduce", 128 * MiB, 8, collectives.collective("all_reduce", 128 * MiB, 8, topo))[1]
    checks.append(Check("A100 8-card all_reduce bus bandwidth, 128 MiB", f"{bus:.0f} GB/s",
                        f"{lo / 1e9:.0f}-{hi / 1e9:.0f} GB/s +-2% (large messages)", lo * 0.98 <= bus * 1e9 <= hi * 1.02))
    fit_errors = [t / m - 1 for _, t, m in nccl_tests_errors()[NCCL_TESTS_FIT_RUN]]  # + : the model is faster
    worst = max(fit_errors, key=abs)
    checks.append(Check("A100 all_reduce vs the fitted nccl-tests run, worst of 11 sizes", f"{worst:+.1%}",
                        "within +-30% at every size", abs(worst) <= 0.30))  # fmt: skip
    errors = [measured / model - 1 for _, measured, model in xla_gemm_errors()]  # + : the model is slower
    med = statistics.median(errors)
    checks.append(Check(f"H100 BF16 GEMM vs XLA's measured table, median of {len(errors)} held-out shapes",
                        f"{med:+.1%}", "within +-10%", abs(med) <= 0.10))  # fmt: skip
    for name in ("H100", "H200", "A100", "BR166", "BR106"):
        chip = load_chip(name)
        big, small = copy_fraction(chip, 2**30), copy_fraction(chip, 2**18)
        if name in ("H100", "H200", "A100"):
            checks.append(Check(f"{name} 1 GiB device copy / HBM peak", f"{big:.3f}",
                                f"{COPY_RANGE[0]}-{COPY_RANGE[1]}", COPY_RANGE[0] <= big <= COPY_RANGE[1]))  # fmt: skip
        checks.append(Check(f"{name} 256 KiB copy / 1 GiB copy", f"{small / big:.3f}", "< 0.5 (far less below 1 MB)",
                            small / big < 0.5))  # fmt: skip
        launch = costs.generic(0, 0, chip).ns
        checks.append(Check(f"{name} empty kernel", f"{launch:.0f} ns", "4-6 us per launch",
                            LAUNCH_RANGE_NS[0] <= launch <= LAUNCH_RANGE_NS[1]))  # fmt: skip
    br166 = load_chip("BR166")
    for label, (svi, mode, reported) in BR166_REPORTED_Bps.items():
        chip = br166.with_mode(mode).partition(svi)
        c = costs.copy(2**30 // chip.instances, "d2d", chip)
        achieved = c.bytes / c.ns * 1e9
        ok = achieved >= reported if mode == "UMA" and svi == 1 else _close(achieved, reported, 0.02)
        checks.append(Check(f"BR166 {label} large copy", f"{achieved / 1e9:.0f} GB/s",
                            f"{'>=' if svi == 1 and mode == 'UMA' else '~'}{reported / 1e9:.0f} GB/s (HAMi)", ok))  # fmt: skip
    for name in ("BR166", "BR106", "BR104", "BR100"):
        chip = load_chip(name)
        same = chip.matrix_eff_table == a100.matrix_eff_table and chip.spec["attention_efficiency"].value == a100.spec[
            "attention_efficiency"].value  # fmt: skip
        checks.append(Check(f"{name} efficiency tables start from the A100 fit", str(same), "True", same))
    t166, t106 = (costs.gemm(4096, 4096, 4096, chip=load_chip(n)).ns for n in ("BR166", "BR106"))
    checks.append(Check("BR106 / BR166 time, 4096^3 BF16 GEMM", f"{t106 / t166:.2f}", "~2 (1.9-2.05)",
                        1.9 <= t106 / t166 <= 2.05))  # fmt: skip
    return checks, fits


def _rows(table):
    return "[" + ", ".join(f"[{size:g}, {eff:g}]" for size, eff in table) + "]"


def write_self_check(checks, fits, out=RESULTS):
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Device-model calibration",
        "",
        "Written by `python benchmarks/calibrate.py --self-check`. **No CUDA GPU was available** "
        "(torch.cuda.is_available() is False), so nothing was measured: the checks below compare the "
        "model with published figures (reference/br1xx-specs.md, published-runs.md) only. Run "
        "`python benchmarks/calibrate.py --gpu` on an H100, H200 or A100 to measure "
        "(results/calibration_gpu.md).",
        "",
        "## What was fitted",
        "",
        "Start: Calculon's A100 system file, matrix efficiency "
        f"{_rows(CALCULON_MATRIX)} (min FLOPs, efficiency) and HBM efficiency "
        f"{_rows(CALCULON_MEMORY)} (min bytes, efficiency).",
        "",
        "Changes:",
        "",
        "- Tables are read as points joined by straight lines, not as steps, so that more work never "
        "takes less time (torch_biren/sim/efficiency.py).",
        "- Matrix efficiency is the main loop's, one flat row from Calculon's top row (large GEMMs): its "
        "lower rows are whole-GEMM fits that already hold the launch, memory time and partial waves the "
        "model charges itself (sim/costs.py gemm, with a memory-latency prologue per launch), so applying "
        "them to the matrix time counted those losses twice.",
        "- Main-loop efficiency scaled per GPU so that the best predicted BF16 GEMM over a max-achievable-matmul "
        "sweep (m, n, k in 1024..16384, step 1024) equals the published figure:",
        "",
        "| chip | scale on Calculon | fitted matrix_efficiency | fitted attention_efficiency (fraction of GEMM) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {n} | {f['scale']} | {_rows(f['matrix_efficiency'])} | {f['attention_efficiency']} |" for n, f in fits.items() if "scale" in f]
    col = fits["A100 collectives"]
    lines += [
        "",
        "- Attention efficiency (a fraction of GEMM efficiency) fitted so the best FlashAttention "
        "benchmark shape (16k tokens, head dim 128, seq 512-8192, causal or not) reaches: A100 forward "
        "73% (top of FlashAttention-2's 50-73%), backward 61.5% (middle of that range); H100 forward 75% "
        "(FlashAttention-3), backward 63.2% (A100's backward/forward ratio; no published figure).",
        "- Materialised attention (the score matrix written out, as Megatron-LM ran before flash kernels; "
        "projection/attention.py) on the A100: the modelled kernels' time at FlashAttention's benchmark "
        "shape (Dao et al. 2022, appendix E: batch 16, 8 heads of 64, fp16, A100 40GB at 1555 GB/s) over "
        "its measurement of Megatron's attention at seq 2048, the geometric mean over dropout 0 and 0.1: "
        f"materialised_attention_efficiency {fitted_materialised()}. Held out, the measured time over the "
        "model's (with the fit) at the other lengths: " + ", ".join(
            f"seq {seq} dropout {d:g} fwd {r[0]:.2f} bwd {r[1]:.2f}" for (d, seq), r in _materialised_held_out())
        + ". No such measurement was found for the H100 (its efficiency is 1: the model as is).",
        "- HBM table kept as Calculon's on the GPUs: large device copies land at 89-90% of spec, inside "
        "the published 87-90%. BR166's top row is 0.91 so whole-card copies pass HAMi's >= 1480 GB/s check.",
        "- Collectives on the A100 (sim/collectives.py): each runs under the faster of two protocols, "
        "as NCCL picks one per size: Simple (per-step latency holding its pipeline fill, a fraction of "
        "link bandwidth) and LL (a smaller per-step latency, a share of Simple's bandwidth: its flags take "
        "half of each line). The four numbers minimise the squared log error of the ring all_reduce on 8 "
        f"cards against nccl-tests' one-process-per-GPU run (8 B to 1 GiB): collective_efficiency "
        f"{col['collective_efficiency']}, collective_protocols {col['collective_protocols']}. Held out, "
        "the three runs with one process driving all eight GPUs (-g 8): " + "; ".join(
            f"{run}: median {statistics.median(e):+.0%}, worst {max(e, key=abs):+.0%}"
            for run, e in _held_out_collective_errors().items())
        + " (+: the model is faster; one host thread launching eight kernels adds 15-20 us at small sizes). "
        "Size by size: results/nccl_tests_a100.md. Other chips without their own measurement take these.",
        "- H200 uses the H100 fit (same compute, no published H200 matmul figure). BR100, BR104, BR106 "
        "and BR166 use the A100 fit (same 7 nm generation), labelled inferred.",
        "- BR166 memory modes: UMA sends half the traffic over the 896 GB/s die link, which caps the card "
        "at min(1640, 2 x 896) = 1640 GB/s, so the link costs no bandwidth; die-local devices (NUMA, SVI) "
        "take HAMi's reported 820 GB/s (half) and 395 GB/s (quarter) for large transfers.",
        "",
        "## Held out: H100 GEMMs against XLA's measured table",
        "",
        "XLA's default matmul performance table for sm_90 (tensorflow/tensorflow third_party/xla/xla/service/gpu/"
        "model/matmul_interpolator_data.h): every b=1 BF16 entry in the file's first 16,000 characters, 256 to "
        "4096 a side, against the model on H100.json. Nothing is fitted to it. Error: measured over modelled "
        "throughput, less 1 (-: the model is faster).",
        "",
        "| m | n | k | measured TFLOP/s | model TFLOP/s | error |",
        "|---|---|---|---|---|---|",
    ]
    xla = xla_gemm_errors()
    lines += [f"| {m} | {n} | {k} | {t:.0f} | {g:.0f} | {t / g - 1:+.0%} |" for (m, n, k), t, g in xla]
    errs = [t / g - 1 for _, t, g in xla]
    big = [t / g - 1 for shape, t, g in xla if min(shape) >= 1024]
    times_us = [2 * m * n * k / t / 1e6 for (m, n, k), t, _ in xla]
    gaps_us = [2 * m * n * k / 1e6 * (1 / t - 1 / g) for (m, n, k), t, g in xla]
    lines += [
        "",
        f"Median {statistics.median(errs):+.1%}; {sum(abs(e) <= 0.10 for e in errs)} of {len(errs)} within +-10%; worst "
        f"{min(errs):+.0%}. In time the model is within {max(abs(d) for d in gaps_us):.1f} us of every measurement "
        f"(GEMMs of {min(times_us):.0f}-{max(times_us):.0f} us, launch included): the large relative errors are GEMMs of "
        "7-19 us measured 2-4 us slower than modelled, where a small output meets a long k (512 x 256 x 4096) or k = "
        "512 meets a 1024 x 4096 output. LLM training GEMMs (thousands of tokens by thousands of features, k of "
        f"thousands) are like the table's shapes with every side 1024 or more, where it is {min(big):+.0%} to "
        f"{max(big):+.0%}.",
        "",
        "## Checks",
        "",
        "| check | model | published / reported | ok |",
        "|---|---|---|---|",
    ]
    lines += [f"| {c.name} | {c.value} | {c.target} | {'yes' if c.ok else '**NO**'} |" for c in checks]
    (out / "calibration.md").write_text("\n".join(lines) + "\n")
    payload = {"gpu": None, "note": "no CUDA GPU available; self-check only", "fits": fits,
               "checks": [asdict(c) for c in checks]}  # fmt: skip
    (out / "calibration.json").write_text(json.dumps(payload, indent=1) + "\n")


# Measuring on a GPU ---------------------------------------------------------------------------------

DECODE_TOKENS = (1, 16, 64)
PREFILL_TOKENS = 4096
HOST_COPY_BYTES = (2**20, 2**24, 2**28)
GRAPH_KERNELS = 64  # tiny kernels per captured graph, to see the device-side gap


def fit_gemm_sizes():
    """The sides of best_gemm_fraction's sweep: cubes from it are fitted shapes."""
    return set(range(1024, 16385, 1024))


def layer_gemms():
    """(label, n, k) of the projections of one Qwen2.5-7B and one DeepSeek-V3 layer (zoo.PUBLISHED)."""
    from torch_biren.adapt.zoo import PUBLISHED

    q = PUBLISHED["Qwen2.5-7B"][1]
    h, f, hd = q["hidden_size"], q["intermediate_size"], q["hidden_size"] // q["num_attention_heads"]
    qkv = h + 2 * q["num_key_value_heads"] * hd
    out = [("qwen2.5-7b qkv", qkv, h), ("qwen2.5-7b o", h, h), ("qwen2.5-7b gate_up", 2 * f, h),
           ("qwen2.5-7b down", h, f)]  # fmt: skip
    d = PUBLISHED["DeepSeek-V3-671B"][1]
    h, heads = d["hidden_size"], d["num_attention_heads"]
    qk = d["qk_nope_head_dim"] + d["qk_rope_head_dim"]
    out += [("deepseek-v3 q_a", d["q_lora_rank"], h), ("deepseek-v3 q_b", heads * qk, d["q_lora_rank"]),
            ("deepseek-v3 kv_a", d["kv_lora_rank"] + d["qk_rope_head_dim"], h),
            ("deepseek-v3 kv_b", heads * (d["qk_nope_head_dim"] + d["v_head_dim"]), d["kv_lora_rank"]),
            ("deepseek-v3 o", h, heads * d["v_head_dim"]), ("deepseek-v3 expert gate_up", 2 * d["moe_intermediate_size"], h),
            ("deepseek-v3 expert down", h, d["moe_intermediate_size"]), ("deepseek-v3 dense down", h, d["intermediate_size"])]  # fmt: skip
    return out


def gpu_gemm_shapes(tiny=False):
    """(label, m, n, k, split)."""
    if tiny:
        return [("square", 64, 64, 64, "held-out"), ("decode", 1, 96, 64, "held-out")]
    fit = fit_gemm_sizes()
    rows = [("square", s, s, s, "fitted" if s in fit else "held-out")
            for s in (256, 512, 1024, 2048, 3072, 4096, 6144, 8192, 12288, 16384)]  # fmt: skip
    for label, n, k in layer_gemms():
        rows += [(f"{label} decode", m, n, k, "held-out") for m in DECODE_TOKENS]
        rows.append((f"{label} prefill", PREFILL_TOKENS, n, k, "held-out"))
    return rows


def gpu_attention_shapes(tiny=False):
    """(label, b, h_q, h_kv, lq, lk, d, causal, split): the FlashAttention benchmark (16k tokens; head
    dim 128 fitted, 64 held out) and GQA decode against a 4k cache (Qwen2.5-7B heads)."""
    if tiny:
        return [("tiny", 1, 2, 2, 16, 16, 16, True, "held-out")]
    rows = [("fa-bench", b, h, h, s, s, d, causal, "fitted" if d == 128 else "held-out")
            for b, h, s, d, causal in attention_shapes()]  # fmt: skip
    rows += [("gqa decode", b, 28, 4, 1, 4096, 128, False, "held-out") for b in (1, 16, 64)]
    return rows


class Clock:
    """Device timing through the device module's events (torch.cuda, or torch.biren's simulated
    ones for --dry-run), with a deadline: past it, remaining measurements are skipped."""

    def __init__(self, device, budget_s, min_ms, max_reps):
        self.device, self.dm = torch.device(device), torch.get_device_module(device)
        self.deadline = time.monotonic() + budget_s
        self.min_ms, self.max_reps = min_ms, max_reps
        self.skipped = []

    def out_of_time(self, what):
        if time.monotonic() < self.deadline:
            return False
        self.skipped.append(what)
        return True

    def device_ns(self, fn, warmup=2):
        """Steady-state device time per call: warm up, then time a loop sized to ~min_ms."""
        for _ in range(warmup):
            fn()
        start, end = self.dm.Event(enable_timing=True), self.dm.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        reps = max(3, min(self.max_reps, int(self.min_ms / max(start.elapsed_time(end), 1e-3))))
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / reps * 1e6

    def host_ns(self, fn, reps):
        """Host (wall) time per call of fn, which only issues work; the device is joined after."""
        self.dm.synchronize()
        t0 = time.perf_counter_ns()
        for _ in range(reps):
            fn()
        t1 = time.perf_counter_ns()
        self.dm.synchronize()
        return (t1 - t0) / reps


def measure_gpu(chip, clock, tiny=False):
    """Rows of dicts: family, shape, split, measured_ns, predicted_ns."""
    rows, dev, bf16 = [], clock.device, torch.bfloat16

    def add(family, shape, split, measured, predicted):
        rows.append({"family": family, "shape": shape, "split": split, "measured_ns": measured,
                     "predicted_ns": predicted})  # fmt: skip

    for label, m, n, k, split in gpu_gemm_shapes(tiny):
        if clock.out_of_time(f"gemm {m}x{n}x{k}"):
            continue
        a, b = torch.randn(m, k, device=dev, dtype=bf16), torch.randn(k, n, device=dev, dtype=bf16)
        add("gemm", f"{label} {m}x{n}x{k}", split, clock.device_ns(lambda: a @ b), costs.gemm(m, n, k, chip=chip).ns)
        del a, b
    sdpa = torch.nn.functional.scaled_dot_product_attention
    for label, b, hq, hkv, lq, lk, d, causal, split in gpu_attention_shapes(tiny):
        shape = f"{label} b{b} hq{hq} hkv{hkv} q{lq} k{lk} d{d}{' causal' if causal else ''}"
        if clock.out_of_time(f"attention {shape}"):
            continue
        q = torch.randn(b, hq, lq, d, device=dev, dtype=bf16, requires_grad=lq > 1)
        kk, v = (torch.randn(b, hkv, lk, d, device=dev, dtype=bf16, requires_grad=lq > 1) for _ in range(2))
        gqa = hq != hkv
        fwd = clock.device_ns(lambda: sdpa(q, kk, v, is_causal=causal, enable_gqa=gqa))
        args = (b, hq, hkv, lq, lk, d, d, "bf16", causal)
        add("attention fwd", shape, split, fwd, costs.attention(*args, chip=chip).ns)
        if lq > 1:  # decode has no backward
            grad = torch.randn(b, hq, lq, d, device=dev, dtype=bf16)
            both = clock.device_ns(
                lambda: torch.autograd.grad(sdpa(q, kk, v, is_causal=causal, enable_gqa=gqa), (q, kk, v), grad))
            add("attention bwd", shape, split, both - fwd, costs.attention(*args, backward=True, chip=chip).ns)
    for numel in (2**12, 2**16) if tiny else elementwise_sizes():
        for dtype, key in ((torch.float32, "fp32"), (bf16, "bf16")):
            if clock.out_of_time(f"elementwise {numel} {key}"):
                continue
            x, y = torch.randn(numel, device=dev, dtype=dtype), torch.randn(numel, device=dev, dtype=dtype)
            out = torch.empty_like(x)
            add("add", f"{numel} {key}", "held-out", clock.device_ns(lambda: torch.add(x, y, out=out)),
                costs.elementwise(numel, key, chip).ns)  # fmt: skip
            add("copy d2d", f"{numel} {key}", "held-out", clock.device_ns(lambda: out.copy_(x)),
                costs.copy(numel * x.element_size(), "d2d", chip).ns)  # fmt: skip
    rows += measure_overheads(chip, clock, tiny)
    for nbytes in (2**16,) if tiny else HOST_COPY_BYTES:
        if clock.out_of_time(f"host copy {nbytes}"):
            continue
        host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
        devbuf = torch.empty(nbytes, dtype=torch.uint8, device=dev)
        add("copy h2d (pinned)", f"{nbytes} B", "held-out",
            clock.device_ns(lambda: devbuf.copy_(host, non_blocking=True)), costs.copy(nbytes, "h2d", chip).ns)
        add("copy d2h (pinned)", f"{nbytes} B", "held-out",
            clock.device_ns(lambda: host.copy_(devbuf, non_blocking=True)), costs.copy(nbytes, "d2h", chip).ns)
    return rows


def measure_overheads(chip, clock, tiny=False):
    """Launch-bound regimes: one-element kernels back to back on the device (launch_ns), the host's
    time to issue an eager op (host_issue_ns), and a captured graph of tiny kernels: the host's time
    to launch it (graph_launch_ns) and the device time per kernel inside it (graph_kernel_gap_ns)."""
    rows = []
    if clock.out_of_time("overheads"):
        return rows
    dev, dm = clock.device, clock.dm
    x = torch.zeros(1, device=dev)
    reps = 20 if tiny else 2000
    row = dict(split="held-out")
    rows.append({**row, "family": "launch", "shape": "1-element add, device time per kernel",
                 "measured_ns": clock.device_ns(lambda: x.add_(1)), "predicted_ns": costs.generic(1, 8, chip).ns})
    rows.append({**row, "family": "host issue", "shape": "1-element add, host time per eager op",
                 "measured_ns": clock.host_ns(lambda: x.add_(1), reps), "predicted_ns": chip.host_issue_ns})
    n = 8 if tiny else GRAPH_KERNELS
    g, side = dm.CUDAGraph() if hasattr(dm, "CUDAGraph") else dm.BirenGraph(), dm.Stream()
    side.wait_stream(dm.current_stream())
    with dm.stream(side):  # warm-up off the default stream, as graph capture wants
        for _ in range(n):
            x.add_(1)
    dm.current_stream().wait_stream(side)
    with dm.graph(g):
        for _ in range(n):
            x.add_(1)
    rows.append({**row, "family": "graph launch", "shape": f"host time per replay of {n} tiny kernels",
                 "measured_ns": clock.host_ns(g.replay, reps // 10 or 1), "predicted_ns": chip.graph_launch_ns})
    kernel = costs.generic(1, 8, chip).ns - chip.launch_ns + chip.graph_kernel_gap_ns
    rows.append({**row, "family": "graph kernel", "shape": f"device time per kernel in a graph of {n}",
                 "measured_ns": clock.device_ns(g.replay) / n, "predicted_ns": kernel})
    return rows


def write_gpu(gpu, chip, rows, clock, wall_s, out=RESULTS, dry_run=False):
    out.mkdir(parents=True, exist_ok=True)
    for r in rows:
        r["error"] = (r["predicted_ns"] - r["measured_ns"]) / r["measured_ns"] if r["measured_ns"] > 0 else None
    summary = {}
    for r in rows:
        if r["error"] is not None:
            summary.setdefault(r["split"], {}).setdefault(r["family"], []).append(abs(r["error"]))
    medians = {split: {fam: statistics.median(v) for fam, v in fams.items()} for split, fams in summary.items()}
    overall = {split: statistics.median([e for v in fams.values() for e in v]) for split, fams in summary.items()}
    how = ("`python benchmarks/calibrate.py --dry-run`: the GPU code path on the simulated biren device with "
           "tiny shapes. **Nothing real was measured**; this only checks the script.") if dry_run else (
           "`python benchmarks/calibrate.py --gpu`")  # fmt: skip
    lines = [
        "# Device-model calibration on a GPU", "",
        f"Measured on **{gpu}** against the model's spec **{chip.name}** ({how}; torch {torch.__version__}; "
        f"{wall_s:.0f} s). Device times per call from events after warm-up; host times from the wall clock. "
        "Error = (predicted - measured) / measured. Fitted shapes are those the efficiency tables were fitted "
        "on; held-out shapes were not used in any fit.", "",
    ]  # fmt: skip
    if clock.skipped:
        lines += [f"Out of time budget, skipped: {', '.join(clock.skipped)}.", ""]
    for split in ("fitted", "held-out"):
        if split not in medians:
            continue
        lines += [f"## {split} shapes", "", "| family | rows | median abs error |", "|---|---|---|"]
        lines += [f"| {fam} | {len(summary[split][fam])} | {e:.1%} |" for fam, e in medians[split].items()]
        lines += [f"| all | {sum(map(len, summary[split].values()))} | {overall[split]:.1%} |", ""]
    lines += ["## Rows", "", "| family | shape | split | measured us | predicted us | error |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['family']} | {r['shape']} | {r['split']} | {r['measured_ns'] / 1e3:.2f} | "
              f"{r['predicted_ns'] / 1e3:.2f} | {r['error']:+.1%} |" if r["error"] is not None else
              f"| {r['family']} | {r['shape']} | {r['split']} | {r['measured_ns'] / 1e3:.2f} | "
              f"{r['predicted_ns'] / 1e3:.2f} | - |" for r in rows]  # fmt: skip
    (out / "calibration_gpu.md").write_text("\n".join(lines) + "\n")
    payload = {"gpu": gpu, "chip": chip.name, "dry_run": dry_run, "wall_s": wall_s, "skipped": clock.skipped,
               "median_abs_error": medians, "overall_median_abs_error": overall, "rows": rows}  # fmt: skip
    (out / "calibration_gpu.json").write_text(json.dumps(payload, indent=1) + "\n")
    return medians, overall


def detect_chip(name):
    for spec in ("H200", "H100", "A100"):
        if spec in name:
            return spec
    raise SystemExit(f"no spec file for GPU {name!r}; known: H100, H200, A100")


def run_gpu(out, budget_s, dry_run=False):
    t0 = time.monotonic()
    if dry_run:
        import torch_biren  # noqa: F401  (registers the device)
        from torch_biren.sim import current_chip

        gpu, chip = "simulated biren device (dry run)", current_chip()
        clock = Clock("biren", budget_s, min_ms=0.0, max_reps=3)
    else:
        if not torch.cuda.is_available():
            print("calibrate.py --gpu: no CUDA GPU is available (torch.cuda.is_available() is False); "
                  "run --self-check instead", file=sys.stderr)  # fmt: skip
            return 2
        gpu = torch.cuda.get_device_name()
        chip = load_chip(detect_chip(gpu))
        clock = Clock("cuda", budget_s, min_ms=10.0, max_reps=2000)
    rows = measure_gpu(chip, clock, tiny=dry_run)
    medians, overall = write_gpu(gpu, chip, rows, clock, time.monotonic() - t0, out, dry_run)
    for r in rows:
        err = f"{r['error']:+7.1%}" if r["error"] is not None else "      -"
        print(f"{r['family']:<18} {r['shape']:<52} {r['split']:<8} measured {r['measured_ns'] / 1e3:10.2f} us  "
              f"predicted {r['predicted_ns'] / 1e3:10.2f} us  {err}")  # fmt: skip
    for split, fams in medians.items():
        print(f"{split}: median abs error", {k: f"{v:.1%}" for k, v in fams.items()}, f"all {overall[split]:.1%}")
    if clock.skipped:
        print("skipped (time budget):", ", ".join(clock.skipped))
    print("wrote", out / "calibration_gpu.md")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--self-check", action="store_true", help="CPU only (the default): spec files against published figures")
    mode.add_argument("--gpu", action="store_true", help="measure on the CUDA GPU and compare with the model")
    mode.add_argument("--dry-run", action="store_true", help="the --gpu code path on the simulated device, tiny shapes")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results)")
    parser.add_argument("--budget-s", type=float, default=300.0, help="time budget of --gpu measurements")
    args = parser.parse_args(argv)
    if args.gpu or args.dry_run:
        out = args.out or (Path(tempfile.mkdtemp(prefix="calibrate-dry-")) if args.dry_run else RESULTS)
        return run_gpu(out, args.budget_s, dry_run=args.dry_run)
    checks, fits = self_check()
    width = max(len(c.name) for c in checks)
    for c in checks:
        print(f"{'ok ' if c.ok else 'BAD'} {c.name:<{width}}  {c.value:>12}  (expected {c.target})")
    write_self_check(checks, fits, args.out or RESULTS)
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
