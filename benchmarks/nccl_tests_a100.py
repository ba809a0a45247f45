"""The collective model (sim/collectives.py) against published nccl-tests all_reduce_perf runs on one
8 x A100 NVLink server, size by size: a check, nothing fitted. Writes
benchmarks/results/nccl_tests_a100.md.

    PYTHONPATH=. python benchmarks/nccl_tests_a100.py

The runs are public nccl-tests output pasted in repositories the code index holds. AFDWang/Hetu-Galvatron's
tests/profiler/test_hardware_profile.py has one on 8 x A100-SXM4-40GB (one process driving all eight,
-g 8). A Chinese nccl-tests note has two on 8 x A100-SXM4-80GB (host "thanos"): -g 8, and mpirun with one
process per GPU, as torchrun and Megatron run. A third file has nccl-tests 2.19.4 -g 8 on 8 x
A100-SXM4-80GB (host "dkh"). Times are the out-of-place column, in us. A100's link is 12 NVLinks of
25 GB/s each way (300 GB/s); the chip file's collective_efficiency is 0.68 (the reference's 200-208
GB/s large-message bus bandwidth).
"""

import os
import statistics
import sys

from torch_biren.sim import collectives

OUT = os.path.join(os.path.dirname(__file__), "results", "nccl_tests_a100.md")
K, M = 2**10, 2**20
SIZES = (8, 64 * K, 1 * M, 4 * M, 16 * M, 32 * M, 64 * M, 128 * M, 256 * M, 512 * M, 1024 * M)
RUNS = {  # name -> {bytes: out-of-place us}
    "80GB, one process per GPU (mpirun)": {
        8: 20.26, 64 * K: 31.82, 1 * M: 37.89, 4 * M: 81.66, 16 * M: 213.3, 32 * M: 377.6, 64 * M: 615.7,
        128 * M: 1181.6, 256 * M: 2218.2, 512 * M: 4248.8, 1024 * M: 8244.5},
    "80GB, one process (-g 8)": {
        8: 40.12, 64 * K: 40.97, 1 * M: 52.61, 4 * M: 103.8, 16 * M: 260.5, 32 * M: 439.2, 64 * M: 695.5,
        128 * M: 1305.0, 256 * M: 2392.6, 512 * M: 4627.5, 1024 * M: 8247.6},
    "80GB, nccl-tests 2.19.4 (-g 8)": {
        8: 34.84, 64 * K: 37.48, 1 * M: 67.31, 4 * M: 106.56, 16 * M: 273.12, 32 * M: 431.4, 64 * M: 671.74,
        128 * M: 1295.41},
    "40GB, Hetu-Galvatron (-g 8)": {
        1 * M: 78.77, 4 * M: 131.1, 16 * M: 293.6, 32 * M: 415.7, 64 * M: 657.2, 128 * M: 1256.7,
        256 * M: 2338.9, 512 * M: 4651.2, 1024 * M: 8139.9},
}  # fmt: skip


def model_us(nbytes):
    topo = collectives.topology(8, "A100")
    return collectives.collective("all_reduce", nbytes, 8, topo).ns / 1e3


def _size(b):
    return f"{b // M} MiB" if b >= M else f"{b // K} KiB" if b >= K else f"{b} B"


def rows():
    """(size, model us, {run: (measured us, error)}); error in throughput's sense: + is the model faster."""
    out = []
    for s in SIZES:
        m = model_us(s)
        out.append((s, m, {r: (t[s], t[s] / m - 1) for r, t in RUNS.items() if s in t}))
    return out


def write(out=OUT):
    table = rows()
    names = list(RUNS)
    lines = [
        "# The collective model against nccl-tests on 8 x A100 (NVLink)", "",
        "all_reduce_perf, 8 ranks in one server: measured out-of-place time against the model's (ring or tree "
        "alpha-beta, 2 us per step, the chip's 0.68 of link bandwidth, one 5 us launch; sim/collectives.py). "
        "Error in throughput's sense (+: the model is faster than measured). Nothing here is fitted; the sources "
        "are in benchmarks/nccl_tests_a100.py.", "",
        "| size | model us | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for s, m, meas in table:
        cells = [f"{meas[n][0]:g} ({meas[n][1]:+.0%})" if n in meas else "" for n in names]
        lines.append(f"| {_size(s)} | {m:.1f} | " + " | ".join(cells) + " |")
    bands = {"below 1 MiB": lambda s: s < M, "1-32 MiB": lambda s: M <= s <= 32 * M, "64 MiB and up": lambda s: s >= 64 * M}
    lines += ["", "| sizes | median error, one process per GPU | median error, all runs |", "|---|---|---|"]
    for band, keep in bands.items():
        mp = [meas[names[0]][1] for s, _, meas in table if keep(s) and names[0] in meas]
        every = [e for s, _, meas in table if keep(s) for _, e in meas.values()]
        lines.append(f"| {band} | {statistics.median(mp):+.0%} | {statistics.median(every):+.0%} |")
    lines += [
        "", "What it says: from 64 MiB up the model is within 14% of every run (its 0.68 of link "
        "bandwidth is the reference's 200-208 GB/s; the runs reach 221-233 GB/s of bus bandwidth at 512 MiB "
        "to 1 GiB, where the model is slower). Below that it is faster than measured: NCCL's time does not "
        "fall to the model's 2 us per ring step and 5 us launch, about 20 us at 8 bytes with one process per "
        "GPU (35-40 us with one process driving all eight), and bandwidth ramps up more slowly than the "
        "alpha-beta line. Tensor-parallel collectives of training (tens of MiB: the 175B model's 50 MB "
        "all-reduce at TP 8, 48 MiB) sit between the 32 and 64 MiB rows, where the model is 1-37% fast; "
        "decode's (KiB) where it is 1.2-2.3x fast. A "
        "per-protocol latency (NCCL's LL, LL128 and Simple) fitted to such runs is the next step for the "
        "model; it is not made here.",
    ]
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    return table


if __name__ == "__main__":
    write(sys.argv[1] if len(sys.argv) > 1 else OUT)
    print(open(OUT).read())
