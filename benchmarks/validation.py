"""Validation of the projection against the published GPU runs (torch_biren/projection/published_runs.py,
from reference/published-runs.md and the papers), each in the configuration its paper describes:
the error per row, the median and the worst, whether it fits memory, and the settings used. Writes
benchmarks/results/validation.md (run by benchmarks/run_all.py; alone: python benchmarks/validation.py)."""

import os
import statistics
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results")


def rows():
    from torch_biren.projection import published_runs

    out = []
    for run in published_runs.RUNS:
        t0 = time.perf_counter()
        tflops, r = published_runs.tflops_per_gpu(run)
        out.append({"run": run.name, "projected_tflops": tflops, "published_tflops": run.tflops_per_gpu,
                    "error_pct": 100 * (tflops / run.tflops_per_gpu - 1), "fits": r.fits,
                    "memory_GiB": sum(r.memory.values()) / 2**30, "capacity_GiB": r.capacity / 2**30,
                    "mfu": r.mfu, "settings": run.settings, "wall_s": time.perf_counter() - t0})
    return out


def markdown(rs):
    errs = [abs(r["error_pct"]) for r in rs]
    lines = ["# Validation: published GPU runs projected in their papers' configurations", "",
             "Projected per-GPU throughput in each figure's own FLOP convention (Megatron rows: the paper's formula "
             "with the recomputed forward; the others: model FLOPs with causal attention). Nothing is tuned to "
             "these figures; errors are as they come. Target ±15%.", "",
             "| run | projected TFLOP/s per GPU | published | error | fits (GiB per card) | MFU | settings |",
             "|---|---|---|---|---|---|---|"]
    for r in rs:
        lines.append(f"| {r['run']} | {r['projected_tflops']:.0f} | {r['published_tflops']:.0f} | "
                     f"{r['error_pct']:+.1f}% | {'yes' if r['fits'] else 'NO'} ({r['memory_GiB']:.1f} of "
                     f"{r['capacity_GiB']:.1f}) | {100 * r['mfu']:.1f}% | {r['settings']} |")
    lines += ["", f"Median |error| {statistics.median(errs):.1f}%, worst {max(errs):.1f}% "
              f"({max(rs, key=lambda r: abs(r['error_pct']))['run']}); "
              f"{sum(e <= 15 for e in errs)} of {len(errs)} rows within ±15%.", ""]
    return "\n".join(lines)


def added_markdown():
    """The runs added beyond the reference (published_runs.ADDED), each sourced, nothing tuned on them."""
    from torch_biren.projection import published_runs

    lines = ["## Runs added beyond the reference", "",
             "Found and sourced for issue 13 (published_runs.ADDED: paper, hardware, configuration); projected "
             "without tuning, errors as they come.", "", published_runs.error_table(), ""]
    lines += [f"- {e.name}: {e.source}; {e.setup}" for e in published_runs.ADDED]
    return "\n".join(lines) + "\n"


def main():
    rs = rows()
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "validation.md"), "w") as f:
        f.write(markdown(rs) + "\n" + added_markdown())
    return rs


if __name__ == "__main__":
    import torch  # noqa: F401  (before torch_biren)

    main()
    print(open(os.path.join(OUT, "validation.md")).read())
