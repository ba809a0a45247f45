"""The benchmark suite (make bench): op sweeps on the device model, model benchmarks (tiny models
live on biren, full-size by projection), the published-runs comparison, collective bandwidths and
the simulator-overhead benchmark. Writes benchmarks/results/{*.md,*.json,*.png} and README.md.

    python benchmarks/run_all.py [--quick]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import torch
from tqdm import tqdm

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results")

from torch_biren import projection  # noqa: E402
from torch_biren.sim import collectives, costs  # noqa: E402
from torch_biren.sim.chip import load_chip  # noqa: E402

CHIPS = [("BR166", "UMA"), ("BR166", "NUMA"), ("BR106", None), ("H100", None), ("A100", None)]


def chips():
    out = []
    for name, mode in CHIPS:
        c = load_chip(name)
        out.append(c.with_mode(mode) if mode else c)
    return out


# Op sweeps ---------------------------------------------------------------------------------------


def gemm_cases():
    """(label, m, n, k) from Qwen2.5-7B/72B and DeepSeek-V3 layers, prefill (4096 tokens) and decode (batch 32)."""
    shapes = {
        "Qwen2.5-7B q_proj": (3584, 3584), "Qwen2.5-7B gate_up": (3584, 2 * 18944), "Qwen2.5-7B down": (18944, 3584),
        "Qwen2.5-72B q_proj": (8192, 8192), "Qwen2.5-72B gate_up": (8192, 2 * 29568),
        "Qwen2.5-72B down": (29568, 8192), "DeepSeek-V3 q_a_proj": (7168, 1536),
        "DeepSeek-V3 kv_a_proj": (7168, 576), "DeepSeek-V3 expert gate_up": (7168, 2 * 2048),
        "DeepSeek-V3 expert down": (2048, 7168), "DeepSeek-V3 lm_head": (7168, 129280),
    }  # fmt: skip
    out = []
    for label, (k, n) in shapes.items():
        out.append((f"{label} prefill", 4096, n, k))
        out.append((f"{label} decode", 32, n, k))
    return out


ATTENTION = {"MHA (Qwen-style 32x128)": (32, 32, 128, 128), "GQA (Qwen2.5-72B 64/8x128)": (64, 8, 128, 128),
             "MLA (DeepSeek-V3 128x192/128)": (128, 128, 192, 128)}  # fmt: skip
SEQS = [512, 1024, 2048, 4096, 8192, 16384, 32768]
ELEMENTWISE = [2**p for p in range(12, 31, 2)]


def row(chip, family, label, size, c):
    return {"chip": chip.label(), "family": family, "case": label, "size": size, "time_us": c.ns / 1e3,
            "tflops": c.flops / c.ns / 1e3, "gbps": c.bytes / c.ns, "bound": c.bound, "kernel": c.kernel}


DECODE_CHIPS = ("BR166", "H100", "A100")


def decode_gemm_markdown():
    """Decode GEMMs (batch 1-64 against the gemm_cases weights) on BR166/H100/A100 against their lower
    bound, max(FLOPs / matrix peak, bytes / memory bandwidth) + launch, with the kernel chosen."""
    lines = ["# Decode GEMMs against their lower bounds", "",
             "Lower bound: max(FLOPs / bf16 matrix peak, each operand once / memory bandwidth) + launch. "
             "Model: the fastest of the chip's `gemm_kernels` candidates (block, split-K, stream-K).", "",
             "| case | m x n x k | " + " | ".join(f"{n} µs (bound µs, ratio, kernel)" for n in DECODE_CHIPS) + " |",
             "|---|---|" + "---|" * len(DECODE_CHIPS)]
    shapes = sorted({(label.removesuffix(" decode"), n, k) for label, m, n, k in gemm_cases() if label.endswith("decode")})
    for label, n, k in shapes:
        for m in (1, 16, 64):
            cells = []
            for name in DECODE_CHIPS:
                chip = load_chip(name)
                c = costs.gemm(m, n, k, dtype="bf16", chip=chip)
                low = max(c.flops / chip.matrix_flops("bf16"), c.bytes / chip.mem_bw_Bps) * 1e9 + chip.launch_ns
                cells.append(f"{c.ns / 1e3:,.1f} ({low / 1e3:,.1f}, {c.ns / low:.2f}, {c.kernel})")
            lines.append(f"| {label} | {m}x{n}x{k} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def op_sweeps(bar):
    rows = []
    for chip in chips():
        for label, m, n, k in gemm_cases():
            rows.append(row(chip, "gemm", label, m * n * k, costs.gemm(m, n, k, dtype="bf16", chip=chip)))
        for label, (hq, hkv, dqk, dv) in ATTENTION.items():
            for s in SEQS:
                c = costs.attention(1, hq, hkv, s, s, dqk, dv, "bf16", causal=True, chip=chip)
                rows.append(row(chip, "attention", f"{label} fwd causal", s, c))
        for n in ELEMENTWISE:
            rows.append(row(chip, "elementwise", "add bf16", n, costs.elementwise(n, "bf16", chip)))
            rows.append(row(chip, "rmsnorm", "rms_norm rows of 8192 bf16", n,
                            costs.generic(4 * n, 2 * n * 2, chip)))
        bar.update(1)
    return rows


def sweep_plots(rows):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    files = []
    for family, x_label in (("attention", "sequence length"), ("elementwise", "elements")):
        fig = Figure(figsize=(8, 5))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        case = next(r["case"] for r in rows if r["family"] == family)
        for i, name in enumerate(sorted({r["chip"] for r in rows})):
            pts = [(r["size"], r["time_us"]) for r in rows if r["family"] == family and r["chip"] == name
                   and r["case"] == case]
            ax.plot(*zip(*pts), "o-", color=f"C{i}", label=name)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(x_label)
        ax.set_ylabel("simulated time (us)")
        ax.set_title(f"{case}: time vs size per chip", fontsize=10)
        ax.grid(True, which="both", alpha=0.2)
        ax.legend(fontsize=8)
        path = f"sweep_{family}.png"
        fig.savefig(os.path.join(OUT, path), dpi=100)
        files.append(path)
    # Roofline of every swept op per chip
    fig = Figure(figsize=(8, 5.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, chip in enumerate(chips()):
        pts = [(r["tflops"] * 1e3 / r["gbps"], r["tflops"]) for r in rows if r["chip"] == chip.label() and r["gbps"]]
        ax.scatter(*zip(*pts), s=10, color=f"C{i}", alpha=0.6, label=chip.label())
        peak, bw = chip.matrix_flops("bf16") / 1e12, chip.mem_bw_Bps / 1e12
        ax.plot([0.1, peak / bw, 1e4], [0.1 * bw, peak, peak], f"C{i}-", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("achieved TFLOP/s (simulated)")
    ax.set_title("Roofline: op sweeps (bf16 matrix peak and HBM per chip)", fontsize=10)
    ax.grid(True, which="both", alpha=0.2)
    ax.legend(fontsize=8)
    fig.savefig(os.path.join(OUT, "sweep_roofline.png"), dpi=100)
    return files + ["sweep_roofline.png"]


def sweep_markdown(rows):
    lines = ["# Op sweeps on the device model", "",
             "Simulated time, achieved TFLOP/s and GB/s and the limiting resource of each op, per chip "
             "(BR166/BR106 numbers labelled inferred in the chip files are defaults, not measurements).", ""]
    names = [c.label() for c in chips()]
    for family in ("gemm", "attention", "elementwise", "rmsnorm"):
        lines += [f"## {family}", "", "| case | size | " + " | ".join(f"{n} µs (TFLOP/s, GB/s, bound)" for n in names)
                  + " |", "|---|---:|" + "---:|" * len(names)]
        keys = []
        for r in rows:
            if r["family"] == family and (r["case"], r["size"]) not in keys:
                keys.append((r["case"], r["size"]))
        for case, size in keys:
            cells = []
            for n in names:
                r = next(x for x in rows if x["chip"] == n and x["case"] == case and x["size"] == size)
                kern = f", {r['kernel']}" if r.get("kernel") else ""
                cells.append(f"{r['time_us']:,.1f} ({r['tflops']:.1f}, {r['gbps']:,.0f}, {r['bound']}{kern})")
            lines.append(f"| {case} | {size:,} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["![time vs sequence length](sweep_attention.png)", "![time vs size](sweep_elementwise.png)",
              "![roofline](sweep_roofline.png)", ""]
    return "\n".join(lines)


# Model benchmarks --------------------------------------------------------------------------------

PROJECTIONS = [  # (label, project() arguments)
    ("Qwen2.5-72B train, 8 cards", dict(model="qwen2.5-72b", cards=8, batch=8, seq=4096, tp=8, recompute=True)),
    ("Qwen2.5-72B train, 64 cards", dict(model="qwen2.5-72b", cards=64, batch=128, seq=4096, tp=8, pp=4,
                                         micro_batch=1, recompute=True)),
    ("Qwen2.5-72B train, 1024 cards", dict(model="qwen2.5-72b", cards=1024, batch=1024, seq=4096, tp=8, pp=8,
                                           micro_batch=1, recompute=True)),
    ("GPT-100B train, 1024 cards (checkpoint at 20 GB/s)",
     dict(model="gpt-100b", cards=1024, batch=1024, seq=2048, tp=8, pp=8, micro_batch=1, recompute=True,
          storage_GBps=20)),
    ("DeepSeek-V3 decode, 32 cards", dict(model="deepseek-v3", cards=32, mode="decode", batch=64, seq=4096, tp=8,
                                          pp=4, ep=8)),
    ("Qwen2.5-7B prefill, 1 card", dict(model="qwen2.5-7b", cards=1, mode="prefill", batch=1, seq=4096)),
    ("Qwen3-30B-A3B decode, 8 cards", dict(model="qwen3-30b-a3b", cards=8, mode="decode", batch=64, seq=4096, tp=4,
                                           ep=2, dp=2)),
]  # fmt: skip
DECODE_BATCHES = [1, 8, 32, 128]


def projections(bar, quick):
    out = []
    for label, kw in PROJECTIONS:
        for chip in (["BR166"] if quick else ["BR166", "BR106", "H100", "A100"]):
            t = time.perf_counter()
            try:
                r = projection.project(**{**kw, "chip": chip}, ranges=True)  # as `project` prints it
            except projection.ProjectionError as err:
                out.append({"label": label, "chip": chip, "error": str(err)})
                continue
            wall = time.perf_counter() - t
            out.append({"label": label, "chip": chip, "wall_s": wall, **r.as_dict(), "report": r.report()})
        bar.update(1)
    for b in DECODE_BATCHES:
        for chip in ("BR166", "H100"):
            r = projection.project("qwen2.5-7b", cards=1, mode="decode", batch=b, seq=2048, chip=chip)
            out.append({"label": f"Qwen2.5-7B decode batch {b}, 1 card", "chip": chip, **r.as_dict()})
    bar.update(1)
    return out


def published(bar):
    from torch_biren.projection import published_runs

    rows = []
    for run in published_runs.RUNS:
        t = time.perf_counter()
        tflops, r = published_runs.tflops_per_gpu(run)
        wall = time.perf_counter() - t
        rows.append({"run": run.name, "projected_tflops": tflops, "published_tflops": run.tflops_per_gpu,
                     "error_pct": 100 * (tflops / run.tflops_per_gpu - 1), "mfu": r.mfu, "wall_s": wall})
        bar.update(1)
    return rows


def collective_table():
    rows = []
    for chip in ("A100", "H100", "BR166", "BR106"):
        topo = collectives.topology(8, chip)
        for kind in ("all_reduce", "all_gather", "all_to_all"):
            for size in (1 << 20, 64 << 20, 1 << 30):
                c = collectives.collective(kind, size, 8, topo)
                alg, bus = collectives.bus_bandwidth(kind, size, 8, c)
                rows.append({"chip": chip, "kind": kind, "bytes": size, "time_us": c.ns / 1e3, "algbw": alg,
                             "busbw": bus})
    return rows


def chiplet():
    """UMA vs NUMA on BR166 for a bandwidth-bound and a compute-bound layer of Qwen2.5-7B at 4096 tokens:
    the whole card as one device (UMA, half of the traffic over the die link), one die doing all the
    work (NUMA), and the two dies each doing half (NUMA, data parallel)."""
    uma, numa = load_chip("BR166"), load_chip("BR166").with_mode("NUMA")
    tokens, hidden, inter = 4096, 3584, 18944
    layers = {
        "SwiGLU (bandwidth-bound)": lambda c, t: costs.swiglu(t * inter, "bf16", c),
        "gate_up GEMM (compute-bound)": lambda c, t: costs.gemm(t, 2 * inter, hidden, dtype="bf16", chip=c),
    }
    rows = []
    for label, f in layers.items():
        u, one, half = f(uma, tokens), f(numa, tokens), f(numa, tokens // 2)
        rows.append({"layer": label, "bytes": u.bytes, "uma_us": u.ns / 1e3, "uma_bound": u.bound,
                     "uma_hbm_us": u.bytes / (uma.mem_bw_Bps * uma.mem_efficiency(u.bytes)) * 1e6,
                     "uma_die_link_us": uma.roofline.die_link_ns(u.bytes) / 1e3,
                     "numa_one_die_us": one.ns / 1e3, "numa_bound": one.bound, "numa_two_dies_us": half.ns / 1e3})
    copies = {"UMA d2d (within the card)": costs.copy(2**30, "d2d", uma),
              "NUMA d2d (within one die)": costs.copy(2**30, "d2d", numa),
              "NUMA die to die": costs.copy(2**30, "die", numa),
              "NUMA card to card": costs.copy(2**30, "p2p", numa)}
    return {"layers": rows, "copies_1GiB_ms": {k: c.ns / 1e6 for k, c in copies.items()}}


def chiplet_markdown(d):
    lines = ["# BR166 chiplet: UMA vs NUMA", "",
             "Qwen2.5-7B layers at 4096 tokens, bf16 (benchmarks/run_all.py `chiplet`). UMA: one device per "
             "card, half of every kernel's traffic crosses the 896 GB/s die link (`max(HBM time, latency + "
             "bytes/2 / 896 GB/s)`); NUMA: one device per die, half the SPCs and its own HBM (820 GB/s "
             "achieved). See docs/user-guide.md, the chiplet.", "",
             "| layer | MB moved | UMA µs | bound | HBM µs | die link µs | NUMA one die µs | bound | "
             "NUMA two dies, half each, µs |", "|---|---:|---:|---|---:|---:|---:|---|---:|"]
    for r in d["layers"]:
        lines.append(f"| {r['layer']} | {r['bytes'] / 1e6:,.1f} | {r['uma_us']:,.1f} | {r['uma_bound']} | "
                     f"{r['uma_hbm_us']:,.1f} | {r['uma_die_link_us']:,.1f} | {r['numa_one_die_us']:,.1f} | "
                     f"{r['numa_bound']} | {r['numa_two_dies_us']:,.1f} |")
    lines += ["", "On one die a layer takes about twice as long (half the SPCs, about half the bandwidth); the "
              "two dies each doing half match the UMA card on the compute-bound layer and finish the "
              "bandwidth-bound one a little sooner, because a die-local device reaches HAMi's half-card "
              "figure (820 GB/s), above half of what the interleaved whole card reaches (1,492 GB/s). The die "
              "link does not bind at 896 GB/s; it would below 746 GB/s.",
              "", "A 1 GiB copy:", "", "| copy | ms |", "|---|---:|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in d["copies_1GiB_ms"].items()]
    return "\n".join(lines) + "\n"


def live_models(bar, quick):
    """Tiny models live on biren: simulated training step and decode tokens/s vs their projection."""
    from torch_biren import sim
    from torch_biren.adapt import zoo
    from torch_biren.ops import patch_model

    rows = []
    for family in (["qwen2"] if quick else ["qwen2", "llama", "qwen3"]):
        model = zoo.build(family).to("biren").train()
        patch_model(model)
        ids = torch.randint(0, zoo.VOCAB, (2, 16)).to("biren")
        model(ids, labels=ids).loss.backward()
        model.zero_grad(set_to_none=True)
        torch.biren.synchronize()
        t0 = sim.elapsed_ns(0)
        model(ids, labels=ids).loss.backward()
        torch.biren.synchronize()
        live = sim.elapsed_ns(0) - t0
        proj = projection.project(f"tiny-{family}", cards=1, batch=2, seq=16).compute_ns
        rows.append({"model": f"tiny-{family}", "what": "train step fwd+bwd, batch 2 x 16", "live_ms": live / 1e6,
                     "projected_ms": proj / 1e6, "error_pct": 100 * (proj / live - 1)})
        bar.update(1)
    return rows


def live_inference(bar, quick):
    """Tiny models live on biren: prefill of a 64-token prompt and greedy decode with the KV cache,
    simulated time, at several batch sizes."""
    from torch_biren import sim
    from torch_biren.adapt import zoo
    from torch_biren.ops import patch_model

    rows, prompt, new = [], 64, 16
    for family in (["qwen2"] if quick else ["qwen2", "qwen3-moe", "deepseek-v3"]):
        model = zoo.build(family).to("biren").eval()
        patch_model(model)
        for batch in (1, 8, 32):
            ids = torch.randint(0, zoo.VOCAB, (batch, prompt)).to("biren")
            with torch.no_grad():
                model(ids)  # warm-up: first-call work is not part of the measurement
                torch.biren.synchronize()
                t0 = sim.elapsed_ns(0)
                model(ids)
                torch.biren.synchronize()
                t1 = sim.elapsed_ns(0)
                model.generate(ids, attention_mask=torch.ones_like(ids), pad_token_id=0, max_new_tokens=new,
                               min_new_tokens=new, do_sample=False)
                torch.biren.synchronize()
                t2 = sim.elapsed_ns(0)
            prefill, decode = t1 - t0, (t2 - t1 - (t1 - t0)) / (new - 1)  # generate = one prefill + new-1 steps
            rows.append({"model": f"tiny-{family}", "batch": batch, "prompt": prompt,
                         "prefill_ms": prefill / 1e6, "prefill_tokens_s": batch * prompt / (prefill / 1e9),
                         "decode_ms_per_token": decode / 1e6, "decode_tokens_s": batch / (decode / 1e9)})
        bar.update(1)
    return rows


def overhead(bar):
    """benchmarks/overhead.py for TORCH_BIREN_KERNELS=reference and triton, in subprocesses."""
    out = {}
    for kind in ("reference", "triton"):
        d = os.path.join(OUT, f"overhead_{kind}")
        env = {**os.environ, "TORCH_BIREN_KERNELS": kind}
        subprocess.run([sys.executable, os.path.join(HERE, "overhead.py"), "--iters", "400", "--out", d], env=env,
                       check=True, capture_output=True, timeout=600)
        with open(os.path.join(d, "overhead.json")) as f:
            out[kind] = json.load(f)
        bar.update(1)
    return out


SPEED_CASE = dict(model="qwen2.5-72b", cards=64, batch=256, seq=4096, tp=8, pp=4)
# A fresh process: the imports, then one projection with its ranges and report, as `project` does.
_COLD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch  # loads torch_biren through torch's device-backend entry point
t1 = time.perf_counter()
import transformers
transformers.Qwen2Config, transformers.Qwen2ForCausalLM  # HF's model code, which the trace runs
t2 = time.perf_counter()
from torch_biren import projection
projection.project(**json.loads(sys.argv[1]), ranges=True).report()
t3 = time.perf_counter()
print(json.dumps({"import_torch_s": t1 - t0, "import_transformers_s": t2 - t1, "projection_s": t3 - t2}))
"""


def projection_speed(repeats=3):
    """Seconds of one projection with its ranges (issue 13: at most 2 s) and of an --auto search (at
    most 60 s). The 2 s applies to the projection's own work in a fresh process, after Python, torch
    (with torch_biren) and HF transformers' model code are imported (cold_projection_s, the least of
    `repeats` processes); the imports and the whole CLI call's wall time are reported beside it, and
    in_process_s is the same projection in this process (imports and HF's classes already loaded)."""
    import transformers

    from torch_biren.projection import layers, models, search

    def clear():
        for cache in (layers._TRACES, layers._CACHE, layers._PRICES, models._CONFIGS, models._COUNTS):
            cache.clear()

    transformers.Qwen2Config, transformers.Qwen2ForCausalLM  # noqa: B018  (imported, as in the cold process)
    clear()
    t0 = time.perf_counter()
    projection.project(**SPEED_CASE, ranges=True).report()
    one = time.perf_counter() - t0
    cold = [json.loads(subprocess.run([sys.executable, "-c", _COLD, json.dumps(SPEED_CASE)], check=True,
                                      capture_output=True, text=True, timeout=300).stdout.splitlines()[-1])
            for _ in range(repeats)]
    args = [f"--{k}={v}" for k, v in SPEED_CASE.items()]
    cli = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "torch_biren", "project", *args], check=True, capture_output=True,
                       timeout=300)
        cli.append(time.perf_counter() - t)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    python_s = time.perf_counter() - t
    clear()
    t0 = time.perf_counter()
    found = search.search("qwen2.5-72b", cards=64, batch=256, seq=4096)
    best = min(cold, key=lambda c: c["projection_s"])
    return {"case": SPEED_CASE, "target": "cold_projection_s <= 2 s (the projection's work after the imports)",
            "cold_projection_s": best["projection_s"], "cold_import_torch_s": best["import_torch_s"],
            "cold_import_transformers_s": best["import_transformers_s"], "cold_runs": cold,
            "cli_wall_s": min(cli), "python_start_s": python_s, "in_process_s": one,
            "auto_s": time.perf_counter() - t0, "auto_tried": found.tried, "auto_stopped": found.stopped}


def speed_markdown(s):
    c = " ".join(f"--{k} {v}" for k, v in s["case"].items())
    return ["", "## Projection speed (issue 13: a projection at most 2 s, --auto at most 60 s)", "",
            f"`python -m torch_biren project {c}` with its ranges (each inferred number's two ends re-price the "
            "one trace). The 2 s target applies to the projection's own work in a fresh process, after the "
            "imports it cannot avoid (least of 3 processes):", "",
            "| part | seconds |", "|---|---:|",
            f"| import torch (with torch_biren, through torch's entry point) | {s['cold_import_torch_s']:.2f} |",
            f"| import HF transformers' model code (the trace runs it) | {s['cold_import_transformers_s']:.2f} |",
            f"| **the projection: traces, pricing, 2 x ranged numbers re-priced, report** | "
            f"**{s['cold_projection_s']:.2f}** |",
            f"| the same projection in a warm process (imports done) | {s['in_process_s']:.2f} |",
            f"| whole CLI call, wall (Python start {s['python_start_s']:.2f} s included) | {s['cli_wall_s']:.2f} |",
            f"| `--auto` search ({s['auto_tried']} configurations{', stopped early' if s['auto_stopped'] else ''}) | "
            f"{s['auto_s']:.1f} |"]


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="BR166 only for projections, fewer live models")
    p.add_argument("--only", choices=["chiplet"], help="write only this table (results/chiplet.md)")
    args = p.parse_args()
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "chiplet.md"), "w") as f:
        f.write(chiplet_markdown(chiplet()))
    if args.only:
        return
    start = time.perf_counter()
    from torch_biren.projection import published_runs

    steps = len(CHIPS) + len(PROJECTIONS) + 1 + len(published_runs.RUNS) + 2 * (1 if args.quick else 3) + 2
    with tqdm(total=steps, desc="bench") as bar:
        sweeps = op_sweeps(bar)
        pngs = sweep_plots(sweeps)
        projs = projections(bar, args.quick)
        pub = published(bar)
        live = live_models(bar, args.quick)
        inference = live_inference(bar, args.quick)
        over = overhead(bar)
    colls = collective_table()
    speed = projection_speed()
    import validation

    valid = validation.main()
    wall = time.perf_counter() - start
    data = {"machine": platform.machine(), "wall_s": wall, "sweeps": sweeps, "projections": projs,
            "published": pub, "live_vs_projection": live, "live_inference": inference, "collectives": colls, "overhead": over,
            "projection_speed": speed, "validation": valid}
    with open(os.path.join(OUT, "bench.json"), "w") as f:
        json.dump(data, f, indent=1, default=str)
    with open(os.path.join(OUT, "sweeps.md"), "w") as f:
        f.write(sweep_markdown(sweeps))
    with open(os.path.join(OUT, "decode_gemms.md"), "w") as f:
        f.write(decode_gemm_markdown())
    with open(os.path.join(OUT, "projections.md"), "w") as f:
        f.write("# Projections of full-size models\n\nOutput of `python -m torch_biren project` for each case "
                "(wall time of the projection in brackets).\n\n")
        for r in projs:
            if "report" in r:
                f.write(f"## {r['label']} on {r['chip']} ({r['wall_s']:.1f} s)\n\n```\n{r['report']}\n```\n\n")
            elif "error" in r:
                f.write(f"## {r['label']} on {r['chip']}\n\n{r['error']}\n\n")
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write(summary(data, pngs))
    print(f"wrote {OUT} in {wall:.0f} s")


def summary(d, pngs):
    lines = ["# Benchmark results (latest `make bench`)", "",
             f"Suite wall time {d['wall_s']:.0f} s on {d['machine']} "
             f"(load average {os.getloadavg()[0]:.1f}). Details: [sweeps.md](sweeps.md), "
             "[projections.md](projections.md), [chiplet.md](chiplet.md), [bench.json](bench.json).", "",
             "## Published GPU runs reproduced by projection (target ±15%; the added runs: "
             "[validation.md](validation.md))", "",
             "| run | projected TFLOP/s per GPU | published | error | MFU | projection wall s |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['run']} | {r['projected_tflops']:.0f} | {r['published_tflops']:.0f} | {r['error_pct']:+.1f}% | "
              f"{100 * r['mfu']:.1f}% | {r['wall_s']:.1f} |" for r in d["published"]]
    lines += ["", "## Full-size models by projection", "",
              "Decode reads every weight and the KV cache for each token: its rows give the memory bandwidth it "
              "achieves (weights + KV cache per token step / step time, and its share of the chip's HBM peak) "
              "instead of MFU, as `project --mode decode` prints it.", "",
              "| case | chip | step | tokens/s | MFU | decode: HBM achieved | comm | memory/card GiB | fits | wall s |",
              "|---|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in d["projections"]:
        if "error" in r:
            lines.append(f"| {r['label']} | {r['chip']} | {r['error']} | | | | | | | |")
            continue
        mem = sum(r["memory_bytes"].values()) / 2**30
        decode = r["mode"] == "decode"
        rate = (f"{r['decode_GBps']:,.0f} GB/s ({100 * r['decode_GBps'] / r['hbm_peak_GBps']:.0f}%)" if decode
                else "")
        mfu = "" if decode else f"{100 * r['mfu']:.1f}%"
        lines.append(f"| {r['label']} | {r['chip']} | {r['step_s'] * 1e3:,.1f} ms | {r['tokens_per_s']:,.0f} | "
                     f"{mfu} | {rate} | "
                     f"{100 * r['comm_share']:.1f}% | {mem:,.1f} | {'yes' if r['fits'] else 'no'} | "
                     f"{r.get('wall_s', 0):.1f} |")
    ck = next((r for r in d["projections"] if r.get("checkpoint", {}).get("storage_GBps") == 20), None)
    if ck:
        c = ck["checkpoint"]
        lines += ["", f"Checkpoint of {ck['model']} ({c['bytes'] / 1e12:.2f} TB with fp32 optimizer states) at "
                  f"{c['storage_GBps']:g} GB/s: save {c['save_s']:.0f} s, restore {c['restore_s']:.0f} s "
                  "(Biren's published figure for its 1,024-card cluster: recovery in about 5 minutes)."]
    lines += ["", "## Tiny models: live on biren vs projection (target within 5%)", "",
              "| model | step | live ms (simulated) | projected ms | error |", "|---|---|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['what']} | {r['live_ms']:.3f} | {r['projected_ms']:.3f} | {r['error_pct']:+.2f}% |"
              for r in d["live_vs_projection"]]
    lines += ["", "## Tiny models: live inference on biren (BR166, simulated)", "",
              "Prompt of 64 tokens; greedy decode with the KV cache. Models this small are bound by host issue "
              "(about 20 µs per eager op), so tokens/s grows almost linearly with batch.", "",
              "| model | batch | prefill ms | prefill tokens/s | decode ms/token | decode tokens/s |",
              "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['batch']} | {r['prefill_ms']:.3f} | {r['prefill_tokens_s']:,.0f} | "
              f"{r['decode_ms_per_token']:.3f} | {r['decode_tokens_s']:,.0f} |" for r in d["live_inference"]]
    lines += ["", "## Collectives, 8 cards (nccl-tests bus bandwidth, GB/s)", "",
              "| chip | kind | 1 MiB | 64 MiB | 1 GiB |", "|---|---|---:|---:|---:|"]
    for chip in ("A100", "H100", "BR166", "BR106"):
        for kind in ("all_reduce", "all_gather", "all_to_all"):
            bws = [r["busbw"] for r in d["collectives"] if r["chip"] == chip and r["kind"] == kind]
            lines.append(f"| {chip} | {kind} | " + " | ".join(f"{b:.0f}" for b in bws) + " |")
    lines += ["", "## Simulator overhead (wall clock, this machine)", "",
              "| kernels | tiny op ratio biren/CPU (max) | training step ratio | CPU ms | biren ms |",
              "|---|---:|---:|---:|---:|"]
    for kind, o in d["overhead"].items():
        s = o["train_step"]
        lines.append(f"| {kind} | {max(r['ratio'] for r in o['tiny_ops']):.2f} | {s['ratio']:.2f} | {s['cpu_ms']:.1f} | "
                     f"{s['biren_ms']:.1f} |")
    if "cold_projection_s" in d.get("projection_speed", {}):
        lines += speed_markdown(d["projection_speed"])
    walls = [r["wall_s"] for r in d["projections"] if "wall_s" in r]
    if walls:
        lines.append(f"\nProjection wall time: {min(walls):.1f}-{max(walls):.1f} s per projection.")
    lines += ["", *(f"![{p}]({p})" for p in pngs), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
