"""The adaptation report: Markdown, JSON, one PNG of loss curves per model, and a console summary."""

import datetime
import json
import os

from ..sim.profiler import format_time
from .ladder import RUNGS, TOLERANCES

MiB = 2**20


def _ns(ns):
    return "-" if ns is None else format_time(ns)


def _bytes(n):
    if n is None:
        return "-"
    for scale, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def _e(x):
    return "-" if x is None else f"{x:.2e}"


def _cell(rung):
    if rung["status"] == "pass":
        return "pass"
    if rung["status"] == "not reached":
        return "—"
    return f"FAIL ({rung['kind']})"


def _rung(res, rid):
    return next((r for r in res.get("rungs", []) if r["id"] == rid), None)


def _m(res, rid, key):
    r = _rung(res, rid)
    return None if r is None else r.get("metrics", {}).get(key)


def layer_fallbacks(res):
    """{'GEMM': n, 'attention': n, 'norm': n}: fallback calls of the three layer classes the
    acceptance wants on device kernels (GEMM and attention ops by name over the whole run, plus
    ops issued inside attention cores and norm modules in the forward pass)."""
    cov = res.get("coverage", {})
    fam = cov.get("by_family", {})
    layers = cov.get("layers", {})
    return {
        "GEMM": fam.get("gemm", {}).get("fallback", 0) + layers.get("linear", {}).get("fallback", 0),
        "attention": fam.get("attention", {}).get("fallback", 0) + layers.get("attention", {}).get("fallback", 0),
        "norm": fam.get("norm", {}).get("fallback", 0) + layers.get("norm", {}).get("fallback", 0),
    }


# Plot -------------------------------------------------------------------------------------------------


def plot(model, results, path):
    """Loss curves (CPU and biren) per dtype, with the relative difference on a second axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in results if r.get("curves")]
    if not runs:
        return None
    fig, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 3.8), squeeze=False)
    for ax, res in zip(axes[0], runs):
        c = res["curves"]
        steps = range(1, len(c["cpu"]) + 1)
        ax.plot(steps, c["cpu"], "-", color="tab:blue", lw=2.5, alpha=0.6, label="CPU")
        ax.plot(steps, c["biren"], "--", color="tab:orange", lw=1.5, label=f"biren ({res.get('chip', '')})")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.set_title(f"{model} {res['dtype']}: mean rel. diff {_e(_m(res, 'L3', 'mean_rel_err'))}")
        ax.grid(alpha=0.3)
        ax2 = ax.twinx()
        rel = [max(x, 1e-12) for x in c["rel_err"]]
        ax2.semilogy(steps, rel, ":", color="tab:gray", lw=1, label="|Δ| / CPU")
        ax2.axhline(TOLERANCES[res["dtype"]]["train_mean_rel"], color="tab:red", lw=0.8, alpha=0.5, label="tolerance")
        ax2.set_ylabel("relative difference", color="tab:gray")
        lines = ax.get_legend_handles_labels()
        lines2 = ax2.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


# Markdown ---------------------------------------------------------------------------------------------


def _table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _ladder_rows(results):
    rows = []
    for res in results:
        cells = [_cell(_rung(res, rid)) if _rung(res, rid) else "—" for rid in RUNGS]
        rows.append([res["model"], res["dtype"], *cells, "**PASS**" if res.get("ok") else "**FAIL**"])
    return rows


def _precision_rows(results):
    rows = []
    for res in results:
        bf16 = res["dtype"] == "bf16"
        logits = _m(res, "L1", "logits_norm_rel" if bf16 else "logits_max_abs")
        first = _m(res, "L3", "first_divergence")
        gen = _rung(res, "L4")
        rows.append([
            res["model"], res["dtype"],
            f"{_e(logits)} ({'rel' if bf16 else 'abs'})", _e(_m(res, "L1", "loss_diff")),
            f"`{_m(res, 'L2', 'grad_worst_param') or '-'}`", _e(_m(res, "L2", "grad_worst_err")),
            "-" if _m(res, "L2", "grad_worst_norm_ratio") is None else f"{_m(res, 'L2', 'grad_worst_norm_ratio'):.6f}",
            _e(_m(res, "L3", "mean_rel_err")), _e(_m(res, "L3", "max_rel_err")),
            "-" if _rung(res, "L3") is None or _rung(res, "L3")["status"] == "not reached"
            else ("none" if first is None else f"step {first + 1}"),
            "-" if gen is None or not gen.get("metrics") else (
                "identical" if gen["metrics"].get("identical") else f"differs at {gen['metrics'].get('first_divergence')}"),
        ])  # fmt: skip
    return rows


def _perf_rows(results):
    rows = []
    for res in results:
        p = res.get("perf")
        if not p:
            rows.append([res["model"], res["dtype"]] + ["-"] * 7)
            continue
        b = res.get("baseline") or {}
        base = "-" if not b else (f"{b['chip']}: {b.get('error')}" if b.get("error") else
                                  f"{b['chip']}: {_ns(b['step_ns'])}, MFU {100 * b['mfu']:.4f}%")
        rows.append([
            res["model"], res["dtype"], _ns(p["step_ns"]), f"{p['tokens_per_s']:,.0f}", f"{100 * p['mfu']:.4f}%",
            _bytes(p["peak_memory_bytes"]), _ns(p.get("decode_ns_per_token")),
            ", ".join(f"{k} {100 * v:.0f}%" for k, v in sorted(p["time_by_kind"].items(), key=lambda kv: -kv[1])),
            base,
        ])  # fmt: skip
    return rows


def _coverage_rows(results):
    rows = []
    for res in results:
        k = res.get("coverage", {}).get("by_kind", {})
        lf = layer_fallbacks(res)
        rows.append([res["model"], res["dtype"], k.get("triton", 0), k.get("native", 0), k.get("fallback", 0),
                     k.get("copy", 0), lf["GEMM"], lf["attention"], lf["norm"]])
    return rows


def _tolerance_text():
    t32, t16 = TOLERANCES["fp32"], TOLERANCES["bf16"]
    return f"""| check | fp32 | bf16 (autocast on both sides) |
|---|---|---|
| L1 logits | max abs diff ≤ {t32['logits_abs']:g} | ‖Δ‖/‖ref‖ ≤ 2⁻⁵ and max abs ≤ 2⁻³·max\\|ref\\| |
| L1/L2 loss | abs diff ≤ {t32['loss_abs']:g} | rel diff ≤ 2⁻⁷ |
| L2 gradients, every parameter | max\\|Δg\\| ≤ {t32['grad_rel']:g}·max\\|g_cpu\\| | ‖Δg‖/‖g_cpu‖ ≤ 2⁻³ (cosine ≥ 0.992) |
| L2 AdamW step | weights within {t32['step_lr']:g}·lr | same |
| L3 loss curve | mean rel err ≤ {t32['train_mean_rel']:.0%} | ≤ {t16['train_mean_rel']:.0%} |
| L4 greedy tokens | identical | identical, or first divergence on a near-tie (CPU margin ≤ 2× logit noise) |
| L4 logits at each generated position | as L1 | as L1 |

One AdamW step moves every weight by about lr whatever its gradient's size, so a last-bit
difference in a near-zero gradient can flip a step's sign: post-step weights are compared at
{t32['step_lr']:g}·lr, gradients at the tight tolerance. bf16 tolerances are in units of bf16
resolution (8 significant bits); in MoE models a one-ulp difference in router logits flips
near-tied expert choices, which moves router/expert gradients by several percent (bf16 behaviour,
not a device error). A training curve "diverges" at the first step whose relative difference
exceeds the mean tolerance."""


def markdown(results, plots):
    chip = next((r.get("chip") for r in results if r.get("chip")), "?")
    o = results[0].get("options", {})
    inferred = next((r.get("chip_inferred") for r in results if r.get("chip_inferred")), [])
    lines = [
        f"# Model adaptation report: {chip}",
        "",
        f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} · {len(results)} ladders · "
        f"L3: {o.get('steps')} AdamW steps (lr {o.get('lr')}), batch {o.get('batch')} × seq {o.get('seq')} "
        f"bytes of the bundled corpus · L4: {o.get('gen_tokens')} greedy tokens · seed {o.get('seed')}",
        "",
        "Every model is a real HF transformers class built from a tiny seeded config (torch_biren.adapt.zoo);",
        "each ladder ran in its own process against the same model on the CPU.",
        "",
        "## Ladder",
        "",
        _table(["model", "dtype", *(f"{k} {v}" for k, v in RUNGS.items()), "result"], _ladder_rows(results)),
        "",
        "## Precision (worst differences vs CPU)",
        "",
        _table(["model", "dtype", "L1 logits", "L1 loss", "L2 worst gradient", "err", "norm ratio",
                "L3 mean rel", "L3 max rel", "curves diverge", "L4 tokens"], _precision_rows(results)),
        "",
        f"## Performance on {chip} (simulated)",
        "",
        "Steady training step (median after the first) of the L3 run; MFU = model FLOPs (6·N·tokens + attention,",
        "N = active non-embedding parameters) / (step time × dense BF16 peak). Device time by path splits the step",
        "into kernels by how they ran and idle time (the device waiting for the host to issue ops). Tiny models are",
        "bound by host issue (about 20 µs per eager op on any chip), so the numbers show the device model at work,",
        "not what a full-size model reaches; a GPU baseline of the same step comes out the same for that reason.",
        "",
        _table(["model", "dtype", "step", "tokens/s", "MFU", "peak memory", "decode / token", "device time by path",
                "baseline"], _perf_rows(results)),
        "",
        "## Op coverage",
        "",
        "Calls per path over the whole ladder (torch_biren.op_counts()). The last three columns are fallback calls",
        "in GEMM, attention and norm layers (by op name over the run, plus ops issued inside attention cores and",
        "norm modules during the L1 forward); the acceptance wants them at zero.",
        "",
        _table(["model", "dtype", "triton", "native", "fallback", "copy", "GEMM fb", "attention fb", "norm fb"],
               _coverage_rows(results)),
        "",
    ]
    if inferred:
        lines += [f"Chip numbers labelled inferred (not published for {chip}): {', '.join(inferred)}.", ""]
    lines += ["## Tolerances", "", _tolerance_text(), "", "## Models", ""]
    for model in dict.fromkeys(r["model"] for r in results):
        runs = [r for r in results if r["model"] == model]
        first = runs[0]
        p = first.get("params", {})
        lines += [f"### {model}", ""]
        if p:
            lines += [f"{p['total']:,} parameters ({p['active']:,} active per token). Config: "
                      + ", ".join(f"{k}={v}" for k, v in first.get("config", {}).items()
                                  if k in _CONFIG_KEYS and v is not None), ""]
        ad = first.get("adaptations") or []
        lines += ["Adaptations: " + ("; ".join(f"{a['what']} ({a['modules']} modules)" for a in ad) if ad else "none"), ""]
        if plots.get(model):
            lines += [f"![{model} loss curves]({os.path.basename(plots[model])})", ""]
        for res in runs:
            note = f" — process crashed: {res['crashed']}" if res.get("crashed") else ""
            note += f" — {res['exit_warning']}" if res.get("exit_warning") else ""
            lines += [f"**{res['dtype']}**{note}", ""]
            for r in res.get("rungs", []):
                lines.append(f"- {r['id']} {r['name']}: {_cell(r)} — {r['detail']}")
            gen = res.get("generation")
            if gen:
                lines.append(f"- generated after {gen['prompt']!r}: biren {gen['biren']!r}, CPU {gen['cpu']!r}")
            fb = res.get("coverage", {}).get("fallback_by_family", {})
            for fam_name, ops in sorted(fb.items()):
                top = sorted(ops.items(), key=lambda kv: -kv[1])
                lines.append(f"- fallback ({fam_name}): " + ", ".join(f"{op.removeprefix('aten::')} ×{n}" for op, n in top[:12])
                             + (f", … {len(top) - 12} more" if len(top) > 12 else ""))
            layers = res.get("coverage", {}).get("layers", {})
            if layers:
                lines.append("- L1 forward by layer: " + "; ".join(
                    f"{name} " + "/".join(f"{row.get(k, 0)}" for k in ("triton", "native", "fallback", "copy"))
                    for name, row in layers.items()) + " (triton/native/fallback/copy)")
            perf = res.get("perf")
            if perf and perf.get("top_ops"):
                lines.append("- slowest ops of the last step: " + ", ".join(
                    f"{t['name'].removeprefix('aten::')} ({t['kind']}) {_ns(t['total_ns'])}" for t in perf["top_ops"][:5]))
            lines.append("")
    return "\n".join(lines)


_CONFIG_KEYS = ("hidden_size", "intermediate_size", "moe_intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "head_dim", "num_experts", "n_routed_experts", "num_local_experts",
                "n_shared_experts", "num_experts_per_tok", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim",
                "qk_nope_head_dim", "v_head_dim", "vocab_size")  # fmt: skip


def write(results, out_dir):
    """report.md, report.json and <model>.png in out_dir; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    plots = {}
    for model in dict.fromkeys(r["model"] for r in results):
        path = plot(model, [r for r in results if r["model"] == model], os.path.join(out_dir, f"{model}.png"))
        if path:
            plots[model] = path
    md_path = os.path.join(out_dir, "report.md")
    with open(md_path, "w") as f:
        f.write(markdown(results, plots))
    json_path = os.path.join(out_dir, "report.json")
    with open(json_path, "w") as f:
        json.dump({"tolerances": TOLERANCES, "results": results}, f, indent=1, default=str)
    return {"markdown": md_path, "json": json_path, "plots": plots}


# Console ----------------------------------------------------------------------------------------------


def _plain_table(head, rows):
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])


def console(results, paths=None, perf=True):
    """What the command line prints: the ladder, precision, performance and coverage tables."""
    chip = next((r.get("chip") for r in results if r.get("chip")), "?")
    out = ["Ladder (vs the same model on the CPU)", "",
           _plain_table(["model", "dtype", *RUNGS, "result"], [
               [*row[:-1], row[-1].strip("*")] for row in _ladder_rows(results)]), ""]
    notes = [f"  {res['model']} {res['dtype']} {r['id']} {r['kind']}: {r['detail']}"
             for res in results for r in res.get("rungs", []) if r["status"] == "fail"]
    notes += [f"  {res['model']} {res['dtype']}: {res['exit_warning']}" for res in results if res.get("exit_warning")]
    out += notes + ([""] if notes else [])
    out += ["Precision", "", _plain_table(
        ["model", "dtype", "L1 logits", "L1 loss", "L2 worst grad", "err", "norm ratio", "L3 mean", "L3 max",
         "diverge", "L4"], [[*r[:4], r[4].strip("`"), *r[5:]] for r in _precision_rows(results)]), ""]
    if perf:
        out += [f"Performance on {chip} (simulated; steady training step)", "", _plain_table(
            ["model", "dtype", "step", "tokens/s", "MFU", "peak mem", "decode/token", "device time", "baseline"],
            _perf_rows(results)), ""]
    out += ["Op coverage (calls: triton / native / fallback / copy; fallback in GEMM, attention, norm layers)", "",
            _plain_table(["model", "dtype", "triton", "native", "fallback", "copy", "GEMM fb", "attn fb", "norm fb"],
                         _coverage_rows(results)), ""]
    if paths:
        out.append(f"Report: {paths['markdown']} (and {os.path.basename(paths['json'])})")
        for model, p in paths["plots"].items():
            out.append(f"Loss curves ({model}): {p}")
    return "\n".join(out)
