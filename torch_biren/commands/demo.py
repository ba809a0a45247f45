"""The main job, end to end (what `make demo` runs): bring a Qwen-style model (the zoo's qwen2, a
real HF Qwen2ForCausalLM from a tiny seeded config) up on a simulated Biren BR166 with the
adaptation ladder in fp32 and bf16, print its report, where the loss-alignment plot is, and the
BR166 performance summary, and end with the projection of the full-size model the tiny one stands
for (Qwen2.5-7B training on 8 BR166 beside 8 H100; torch_biren.projection).
"""

import os
import tempfile
import time

HELP = "adapt one Qwen-style model end to end and print its report (make demo)"

MODEL = "qwen2"
# The full-size projection at the end: the model the tiny qwen2 stands for, on one server of each chip.
FULL = dict(model="Qwen2.5-7B", cards=8, batch=32, seq=4096, tp=2, micro_batch=1, recompute="full", zero=1)
FULL_CHIPS = ("BR166", "H100")


def add_arguments(p):
    p.add_argument("--steps", type=int, default=20, help="AdamW steps of the training run (default 20)")
    p.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "torch_biren-demo"),
                   help="report directory (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _summary(results, chip):
    """The performance paragraph: BR166 vs the GPU baseline, per dtype."""
    lines = [f"Performance summary ({chip}, simulated):"]
    for res in results:
        p, b = res.get("perf"), res.get("baseline") or {}
        if not p:
            lines.append(f"  {res['dtype']}: no training run to time")
            continue
        line = (f"  {res['dtype']}: training step {p['step_ns'] / 1e6:.2f} ms = {p['tokens_per_s']:,.0f} tokens/s,"
                f" MFU {100 * p['mfu']:.4f}%, peak memory {p['peak_memory_bytes'] / 2**20:.1f} MiB of"
                f" {p['memory_capacity_bytes'] / 2**30:.1f} GiB")
        if p.get("decode_ns_per_token"):
            line += f", greedy decode {p['decode_ns_per_token'] / 1e6:.2f} ms/token"
        lines.append(line)
        kinds = sorted(p["time_by_kind"].items(), key=lambda kv: -kv[1])
        lines.append("        device time: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in kinds))
        if b and not b.get("error"):
            lines.append(f"        the same step on {b['chip']}: {b['step_ns'] / 1e6:.2f} ms")
    lines.append("  A model this small is bound by host issue (about 20 µs per eager op on any chip: 'idle' above),\n"
                 "  which is why the GPU baseline matches; `adapt qwen2 --set hidden_size=...` moves towards the peaks.")
    return "\n".join(lines)


def _full_size(chip):
    """Lines comparing the full-size projection on `chip` with the first GPU of FULL_CHIPS."""
    from ..projection import ProjectionError, project

    f = FULL
    lines = [f"Projection of the full-size model: {f['model']} training on {f['cards']} cards (dp {f['cards'] // f['tp']}"
             f" x tp {f['tp']}), global batch {f['batch']} x {f['seq']} tokens, full activation recomputation, distributed"
             " optimizer (ZeRO-1):"]
    results = {}
    for name in dict.fromkeys((chip, *FULL_CHIPS[1:])):
        try:
            results[name] = r = project(**f, chip=name)
        except ProjectionError as err:
            lines.append(f"  {name}: {err}")
            continue
        lines.append(f"  {r.chip.label():<12} step {r.step_ns / 1e9:6.2f} s   {r.tokens_per_s:>9,.0f} tokens/s   "
                     f"MFU {100 * r.mfu:4.1f}%   exposed communication {100 * r.comm_share:4.1f}%   memory "
                     f"{sum(r.memory.values()) / 2**30:.1f} of {r.capacity / 2**30:.1f} GiB ({'fits' if r.fits else 'DOES NOT FIT'})")
    if len(results) == 2:
        a, b = results.values()
        lines.append(f"  {a.chip.name} / {b.chip.name} throughput: {a.tokens_per_s / b.tokens_per_s:.2f}x"
                     f" (BR166 numbers are defaults inferred from public BR100 figures; `python -m torch_biren project"
                     f" --help` for any model, cluster and plan)")
    return "\n".join(lines)


def run(args):
    import torch

    import torch_biren

    from ..adapt import flops, report, zoo
    from ..cli import UsageError
    from ..sim.chip import current_chip
    from .adapt import adapt

    if torch_biren.load_error() is not None:
        raise UsageError(f"the biren device did not load: {torch_biren.load_error()}")
    t0 = time.time()
    chip = current_chip()
    cfg = zoo.config(MODEL)
    n = flops.param_counts(cfg)["total"]
    print(f"torch_biren demo: a Qwen2-style model on a simulated Biren {chip.label()}"
          f" ({chip.memory_bytes / 2**30:.1f} GiB, {chip.matrix_flops(torch.bfloat16) / 1e12:,.0f} TFLOPS BF16 dense)")
    print(f"Model: HF Qwen2ForCausalLM, tiny seeded config ({cfg.num_hidden_layers} layers, hidden {cfg.hidden_size},"
          f" {cfg.num_attention_heads} heads / {cfg.num_key_value_heads} KV heads, {n:,} parameters, byte tokenizer);"
          " the published sizes it stands for: " + ", ".join(
              f"{name} {flops.param_counts(zoo.published_config(name))['total'] / 1e9:.1f}B"
              for name in zoo.published_names("qwen2")))
    print(f"Ladder: L0 .to('biren'), L1 forward, L2 backward + AdamW, L3 {args.steps} training steps on the bundled"
          " corpus, L4 greedy generate; fp32 and bf16 autocast, each in its own process, against the CPU.\n")
    results, paths, status = adapt([MODEL], ["fp32", "bf16"], args.out, progress=not args.quiet, steps=args.steps,
                                   baseline="H100")
    print(report.console(results, paths, perf=False))
    print()
    print(_summary(results, chip.label()))
    print()
    print(f"Loss-alignment plot: {paths['plots'].get(MODEL, '(none: no training run)')}")
    print(f"Full report: {paths['markdown']}")
    print()
    print(_full_size(chip.name))
    print(f"{'All rungs passed' if status == 0 else 'Some rungs FAILED'} in fp32 and bf16"
          f" ({time.time() - t0:.0f} s wall).")
    return status
