"""Bring models up on biren: the adaptation ladder (L0 .to("biren"), L1 forward, L2 backward +
AdamW step, L3 a short training run, L4 greedy generate with KV cache), each model and dtype in its
own process against the same model on the CPU, then a report (Markdown, JSON, loss-curve PNGs)
with precision, op coverage and simulated performance.

examples:
  python -m torch_biren adapt qwen2
  python -m torch_biren adapt all --dtype bf16 --steps 50 --out runs/adapt
  python -m torch_biren adapt qwen3-moe --set num_experts=8 --set num_experts_per_tok=2

exit status: 0 every rung passed, 1 a rung failed, 2 bad input (unknown model, impossible config,
a run that does not fit the card's memory).
"""

import json

HELP = "run the model adaptation ladder (L0-L4) and write its report"

DEFAULT_OUT = "adapt-report"


def add_arguments(p):
    from ..adapt import zoo

    p.add_argument("models", nargs="+", metavar="MODEL", help=f"'all' or any of: {', '.join(zoo.names())}")
    p.add_argument("--dtype", choices=["fp32", "bf16", "both"], default="both",
                   help="fp32, or bf16 autocast on both sides (default: both)")
    p.add_argument("--steps", type=int, default=20, help="AdamW steps of the L3 training run (default 20)")
    p.add_argument("--batch", type=int, default=4, help="sequences per step (default 4)")
    p.add_argument("--seq", type=int, default=64, help="tokens (bytes) per sequence (default 64)")
    p.add_argument("--gen-tokens", type=int, default=16, help="tokens L4 generates (default 16)")
    p.add_argument("--lr", type=float, default=3e-3, help="AdamW learning rate (default 3e-3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chip", default=None,
                   help="chip to simulate: BR166 (default), BR106, BR104, BR100, H100, A100 or a spec .json")
    p.add_argument("--baseline", default="H100", help="also time the training step on this chip ('none': skip)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field of the tiny config (repeatable)")
    p.add_argument("--no-adapt", action="store_true",
                   help="run HF's modules unmodified (no fused RMSNorm/SwiGLU/RoPE on the device model)")
    p.add_argument("--jobs", type=int, default=None, help="ladders run at once (default: one per CPU core)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds before a ladder counts as crashed")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"report directory (default ./{DEFAULT_OUT})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_overrides(items):
    from ..cli import UsageError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set wants KEY=VALUE, got '{item}'")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def resolve_models(names):
    from ..adapt import zoo
    from ..cli import UsageError

    if "all" in names:
        return zoo.names()
    unknown = [n for n in names if n not in zoo.names()]
    if unknown:
        raise UsageError(f"unknown model '{unknown[0]}'; known models: {', '.join(zoo.names())} (or 'all')")
    return list(dict.fromkeys(names))


def check_chip(chip):
    from ..cli import UsageError
    from ..sim.chip import ChipSpecError, load_chip

    if chip is None:
        return
    try:
        load_chip(chip)
    except (ValueError, FileNotFoundError, ChipSpecError) as err:
        raise UsageError(str(err)) from None


def adapt(models, dtypes, out, progress=True, **kw):
    """Run the suite and write its report; UsageError for bad input. Returns (results, paths, status)."""
    from ..adapt import report, suite, zoo
    from ..cli import UsageError

    check_chip(kw.get("chip"))
    if kw.get("baseline") and kw["baseline"].lower() != "none":
        check_chip(kw["baseline"])
    else:
        kw["baseline"] = None
    try:
        results = suite.run_suite(models, dtypes, progress=progress, **kw)
    except zoo.ConfigError as err:
        raise UsageError(str(err)) from None
    paths = report.write(results, out)
    oom = [(res, r) for res in results for r in res["rungs"] if r.get("kind") == "out of memory"]
    if oom:
        res, r = oom[0]
        raise UsageError(f"{res['model']} {res['dtype']} does not fit the card's memory (at {r['id']}): {r['detail']}"
                         f" (report: {paths['markdown']})")
    return results, paths, 0 if all(r.get("ok") for r in results) else 1


def run(args):
    from ..adapt import report

    models = resolve_models(args.models)
    dtypes = ["fp32", "bf16"] if args.dtype == "both" else [args.dtype]
    results, paths, status = adapt(
        models, dtypes, args.out, progress=not args.quiet, steps=args.steps, batch=args.batch, seq=args.seq,
        gen_tokens=args.gen_tokens, lr=args.lr, seed=args.seed, chip=args.chip, baseline=args.baseline,
        overrides=parse_overrides(args.overrides), adapt=not args.no_adapt, jobs=args.jobs, timeout=args.timeout)
    print(report.console(results, paths))
    failed = sum(not r.get("ok") for r in results)
    print(f"\n{len(results) - failed}/{len(results)} ladders passed every rung.")
    return status
