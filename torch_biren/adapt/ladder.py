"""The adaptation ladder of one model in one dtype, against the same model on the CPU.

    L0  .to("biren")                     every parameter and buffer on the device, bit-identical
    L1  forward                          logits and loss vs CPU
    L2  backward + AdamW step            loss, the gradient of every parameter, the step
    L3  training run                     N AdamW steps on the corpus; loss curves vs CPU
    L4  greedy generate() with KV cache  the tokens vs CPU

bf16 means torch.autocast(<device>, torch.bfloat16) on both sides. A rung that raises stops the
ladder (later rungs are "not reached"); a rung that runs but misses its tolerance is a precision
failure and the ladder goes on. Failures are classed as

    op unsupported       NotImplementedError, "Could not run", "not implemented for"
    feature unsupported  any other error the device side raised
    precision            ran, outside tolerance (TOLERANCES)
    out of memory        the device ran out of memory (the suite reports it as a run that does not fit)
    reference failed     the CPU side raised (the model or options are at fault, not the device)
    crash                the process died (set by the suite, which runs each ladder in a subprocess)
"""

import contextlib
import copy
import math
import statistics
import time
from dataclasses import asdict, dataclass, field

import torch

from . import coverage, data, flops, zoo

RUNGS = {"L0": "to device", "L1": "forward", "L2": "backward + AdamW step", "L3": "training run",
         "L4": "greedy generate"}  # fmt: skip

# Why these numbers (docs: models/README.md):
#  fp32  both sides compute the same float32 arithmetic in different orders (Triton tiles vs the
#        CPU's BLAS), so differences are a few float32 ulps: 1e-4 on logits is ~1000x headroom.
#  bf16  autocast rounds every GEMM input to 8 significant bits; the two sides round different
#        intermediates, so they differ by a few bf16 ulps (2^-8 relative) per GEMM, and in MoE
#        models a one-ulp difference in router logits flips near-tied expert choices (measured:
#        4-8 of 256 tokens per layer on the tiny qwen3-moe), moving router and expert gradients by
#        5-10%. Tolerances are therefore in units of bf16 resolution, loose enough for flips,
#        tight enough that any wrong kernel (errors of order 1) fails.
TOLERANCES = {
    "fp32": {
        "logits_abs": 1e-4,        # max |logits_biren - logits_cpu|
        "loss_abs": 1e-5,          # |loss_biren - loss_cpu| (forward and first backward)
        "grad_rel": 1e-3,          # per parameter: max|g_biren - g_cpu| / max|g_cpu|
        "step_lr": 2.5,            # max |w_biren - w_cpu| after one AdamW step, in units of lr
        "train_mean_rel": 0.01,    # mean over steps of |loss_biren - loss_cpu| / loss_cpu
        "generate": "identical",
    },
    "bf16": {
        "logits_norm_rel": 2**-5,  # ||logits_biren - logits_cpu|| / ||logits_cpu||
        "logits_abs_rel": 2**-3,   # max |logits difference| / max |logits_cpu|
        "loss_rel": 2**-7,         # |loss difference| / loss_cpu
        "grad_rel": 2**-3,         # per parameter: ||g_biren - g_cpu|| / ||g_cpu|| (cosine >= 0.992)
        "step_lr": 2.5,
        "train_mean_rel": 0.02,
        "generate": "identical, or a first divergence on a near-tie",  # see _near_tie
    },
}  # fmt: skip

PROMPT = "The river "


@dataclass
class Options:
    model: str
    dtype: str = "fp32"
    steps: int = 20
    batch: int = 4
    seq: int = 64
    gen_tokens: int = 16
    lr: float = 3e-3
    seed: int = 0
    overrides: dict = field(default_factory=dict)
    adapt: bool = True  # route the device model's RMSNorm/SwiGLU/RoPE to fused kernels (torch_biren.ops.patch_model)
    chip: str | None = None  # None: the process's chip (TORCH_BIREN_CHIP, default BR166)
    baseline: str | None = None  # also time the training step on this chip (e.g. "H100")
    device: str = "biren:0"

    def __post_init__(self):
        if self.dtype not in TOLERANCES:
            raise zoo.ConfigError(f"dtype must be one of {', '.join(TOLERANCES)}, not '{self.dtype}'")
        for name in ("steps", "batch", "seq", "gen_tokens"):
            if getattr(self, name) < 1:
                raise zoo.ConfigError(f"--{name.replace('_', '-')} must be at least 1")


_ADAPTATIONS = {
    "rms_norm": "RMSNorm modules -> F.rms_norm (fused kernel)",
    "swiglu": "SwiGLU MLPs -> torch_biren.ops.swiglu",
    "rope": "rotate-half RoPE -> torch_biren.ops.rope",
}


def _adapt(model):
    """The vendor-side model adaptation (torch_biren.ops.patch_model): [(name, what, modules)]."""
    from .. import ops

    done = ops.patch_model(model)
    return [(k, _ADAPTATIONS.get(k, k), n) for k, n in done.items() if n]


def classify(exc, side):
    if side == "cpu":
        return "reference failed"
    msg = str(exc)
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in msg:
        return "out of memory"
    if isinstance(exc, NotImplementedError) or "Could not run" in msg or "not implemented for" in msg:
        return "op unsupported"
    return "feature unsupported"


def _nan_inf(x):
    """NaN compares false with everything; as a difference it means 'as far off as it gets'."""
    return math.inf if math.isnan(x) else x


def _first_line(exc):
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


class Ladder:
    def __init__(self, opts, on_event=None):
        self.o = opts
        self.tol = TOLERANCES[opts.dtype]
        self.bf16 = opts.dtype == "bf16"
        self.on_event = on_event or (lambda event, **kw: None)
        self.side = "cpu"  # which side is running, so an exception is blamed on the right one
        self.rungs = []
        self.counts = {}
        self.result = {}

    # Helpers ------------------------------------------------------------------------------------

    def _ctx(self, device):
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)

    def _side(self, side):
        self.side = side

    def _forward(self, model, ids, device):
        ids = ids.to(device)
        with self._ctx(device):
            return model(input_ids=ids, labels=ids)

    def _sync(self):
        """Join the device; its simulated clock (ns)."""
        from .. import _C

        torch.biren.synchronize(self.dev_index)
        return _C._sim_elapsed_ns(self.dev_index)

    def _loss_ok(self, lc, ld):
        if self.bf16:
            return abs(ld - lc) <= self.tol["loss_rel"] * abs(lc), abs(ld - lc) / abs(lc)
        return abs(ld - lc) <= self.tol["loss_abs"], abs(ld - lc)

    # The rungs ----------------------------------------------------------------------------------

    def l0(self):
        o = self.o
        self._side("cpu")
        self.cpu = zoo.build(o.model, seed=o.seed, **o.overrides)
        self.init = {k: v.clone() for k, v in self.cpu.state_dict().items()}
        dev = copy.deepcopy(self.cpu)
        self.adaptations = _adapt(dev) if o.adapt else []
        self._side("biren")
        self.dev = dev.to(o.device)
        self._sync()
        bad = []
        cpu_tensors = dict(self.cpu.named_parameters()) | dict(self.cpu.named_buffers())
        for name, t in list(self.dev.named_parameters()) + list(self.dev.named_buffers()):
            if t.device != self.device:
                bad.append(f"{name} on {t.device}")
            elif not torch.equal(t.detach().cpu(), cpu_tensors[name].detach()):
                bad.append(f"{name} differs")
        metrics = {"tensors": len(cpu_tensors), "weights_bytes": torch.biren.memory_allocated(self.dev_index)}
        if bad:
            return "precision", f"{len(bad)} tensors wrong after .to(): {', '.join(bad[:3])}", metrics
        return None, f"{len(cpu_tensors)} tensors moved, bit-identical", metrics

    def l1(self):
        ids = self.batches[0]
        self.cpu.eval()
        self.dev.eval()
        self._side("cpu")
        with torch.no_grad():
            out_c = self._forward(self.cpu, ids, "cpu")
        self._side("biren")
        with torch.no_grad(), coverage.LayerOps(self.dev) as layer_ops:
            out_d = self._forward(self.dev, ids, self.o.device)
        self.layer_ops = layer_ops.summary()
        lc, ld = out_c.logits.float(), out_d.logits.float().cpu()
        diff = (ld - lc).abs()
        m = {"logits_max_abs": _nan_inf(diff.max().item()), "logits_scale": lc.abs().max().item(),
             "logits_norm_rel": _nan_inf(((ld - lc).norm() / lc.norm()).item()),
             "loss_cpu": out_c.loss.item(), "loss_biren": out_d.loss.item()}  # fmt: skip
        loss_ok, m["loss_diff"] = self._loss_ok(m["loss_cpu"], m["loss_biren"])
        if self.bf16:
            ok = m["logits_norm_rel"] <= self.tol["logits_norm_rel"] and \
                 m["logits_max_abs"] <= self.tol["logits_abs_rel"] * m["logits_scale"]
            detail = f"logits rel err {m['logits_norm_rel']:.2e}, max abs {m['logits_max_abs']:.2e}"
        else:
            ok = m["logits_max_abs"] <= self.tol["logits_abs"]
            detail = f"logits max abs diff {m['logits_max_abs']:.2e}"
        detail += f", loss {m['loss_biren']:.6f} vs {m['loss_cpu']:.6f}"
        return (None if ok and loss_ok else "precision"), detail, m

    def _grad_err(self, gd, gc):
        if self.bf16:
            den = gc.norm().item()
            num = (gd - gc).norm().item()
        else:
            den = gc.abs().max().item()
            num = (gd - gc).abs().max().item()
        if not math.isfinite(num):  # NaN or inf on the device side is as far off as it gets
            return math.inf
        return num / den if den else (0.0 if num == 0 else math.inf)

    def l2(self):
        ids = self.batches[0]
        self.cpu.train()
        self.dev.train()
        self._side("cpu")
        loss_c = self._forward(self.cpu, ids, "cpu").loss
        loss_c.backward()
        self._side("biren")
        loss_d = self._forward(self.dev, ids, self.o.device).loss
        loss_d.backward()
        self._sync()
        loss_ok, loss_diff = self._loss_ok(loss_c.item(), loss_d.item())
        worst, missing, per_param = None, [], {}
        dev_params = dict(self.dev.named_parameters())
        for name, pc in self.cpu.named_parameters():
            gc, gd = pc.grad, dev_params[name].grad
            if (gc is None) != (gd is None):
                missing.append(name)
                continue
            if gc is None:
                continue
            gd = gd.cpu()
            err = self._grad_err(gd, gc)
            ratio = (gd.norm() / gc.norm()).item() if gc.norm() > 0 else float("nan")
            per_param[name] = err
            if worst is None or err > worst[1]:
                worst = (name, err, ratio)
        worst = worst or ("(no gradients)", 0.0, float("nan"))
        total_c = torch.sqrt(sum(p.grad.pow(2).sum() for p in self.cpu.parameters() if p.grad is not None)).item()
        total_d = torch.sqrt(sum(p.grad.pow(2).sum() for p in self.dev.parameters() if p.grad is not None)).item()
        m = {"loss_cpu": loss_c.item(), "loss_biren": loss_d.item(), "loss_diff": loss_diff,
             "grad_params": len(per_param), "grad_worst_param": worst[0], "grad_worst_err": worst[1],
             "grad_worst_norm_ratio": worst[2], "grad_norm_cpu": total_c, "grad_norm_biren": total_d,
             "grad_metric": "norm-relative" if self.bf16 else "max-abs relative to max|g_cpu|"}  # fmt: skip
        # One AdamW step on both sides.
        for model in (self.cpu, self.dev):
            self._side("cpu" if model is self.cpu else "biren")
            torch.optim.AdamW(model.parameters(), lr=self.o.lr).step()
        self._sync()
        step_diff = max(_nan_inf((pd.detach().cpu() - pc.detach()).abs().max().item())
                        for pc, pd in zip(self.cpu.parameters(), self.dev.parameters()))
        m["step_max_abs_over_lr"] = step_diff / self.o.lr
        fails = []
        if missing:
            fails.append(f"gradient on one side only: {', '.join(missing[:3])}")
        if worst[1] > self.tol["grad_rel"]:
            fails.append(f"gradient of {worst[0]} off by {worst[1]:.2e}")
        if not loss_ok:
            fails.append(f"loss {loss_d.item():.6f} vs {loss_c.item():.6f}")
        if not step_diff <= self.tol["step_lr"] * self.o.lr:
            fails.append(f"AdamW step moved weights {m['step_max_abs_over_lr']:.2f} lr apart")
        detail = (f"{len(per_param)} grads, worst {worst[0]} err {worst[1]:.2e} (norm ratio {worst[2]:.6f});"
                  f" step within {m['step_max_abs_over_lr']:.2f} lr")
        for model in (self.cpu, self.dev):
            model.zero_grad(set_to_none=True)
        return ("precision" if fails else None), ("; ".join(fails) if fails else detail), m

    def _train_step(self, model, opt, ids, device):
        loss = self._forward(model, ids, device).loss
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item(), norm.item()

    def _optimizer(self, model):
        return torch.optim.AdamW(model.parameters(), lr=self.o.lr, betas=(0.9, 0.95), weight_decay=0.1)

    def l3(self):
        from ..sim.profiler import profile

        o = self.o
        self._side("cpu")
        self.cpu.load_state_dict(self.init)
        self.cpu.train()
        opt_c = self._optimizer(self.cpu)
        self._side("biren")
        self.dev.load_state_dict(self.init)
        self.dev.train()
        opt_d = self._optimizer(self.dev)
        torch.biren.reset_peak_memory_stats(self.dev_index)
        curves = {"cpu": [], "biren": [], "grad_norm_cpu": [], "grad_norm_biren": [], "step_ns": []}
        self.profile_rows = []
        for i, ids in enumerate(self.batches):
            self._side("cpu")
            lc, nc = self._train_step(self.cpu, opt_c, ids, "cpu")
            self._side("biren")
            t0 = self._sync()
            last = i == len(self.batches) - 1
            with (profile() if last else contextlib.nullcontext()) as prof:
                ld, nd = self._train_step(self.dev, opt_d, ids, o.device)
                t1 = self._sync()
            if last:
                self.profile_rows = prof.rows()
            for k, v in zip(curves, (lc, ld, nc, nd, t1 - t0)):
                curves[k].append(v)
            self.on_event("step", step=i + 1, steps=len(self.batches), loss_cpu=lc, loss_biren=ld)
        self.peak_bytes = torch.biren.max_memory_allocated(self.dev_index)
        rel = [_nan_inf(abs(d - c) / abs(c)) for c, d in zip(curves["cpu"], curves["biren"])]
        curves["rel_err"] = rel
        self.curves = curves
        mean_rel = sum(rel) / len(rel)
        first = next((i for i, r in enumerate(rel) if r > self.tol["train_mean_rel"]), None)
        gn_rel = max(_nan_inf(abs(d - c) / c) for c, d in zip(curves["grad_norm_cpu"], curves["grad_norm_biren"]))
        m = {"steps": len(rel), "mean_rel_err": mean_rel, "max_rel_err": max(rel), "first_divergence": first,
             "loss_first": curves["cpu"][0], "loss_last_cpu": curves["cpu"][-1], "loss_last_biren": curves["biren"][-1],
             "grad_norm_max_rel_err": gn_rel}  # fmt: skip
        ok = mean_rel <= self.tol["train_mean_rel"]
        detail = (f"{len(rel)} steps, loss {curves['cpu'][0]:.3f} -> {curves['biren'][-1]:.3f} (cpu"
                  f" {curves['cpu'][-1]:.3f}), mean rel err {mean_rel:.2e}, max {max(rel):.2e}, "
                  + ("curves never diverge" if first is None else f"first diverge at step {first + 1}"))
        return (None if ok else "precision"), detail, m

    def _near_tie(self, cpu_logits, dev_logits, tok_c, tok_d):
        """bf16: a first divergence is accepted if the CPU's own logits rank the two tokens within
        twice the device-vs-CPU logit noise at that step (and that noise is within L1's bound)."""
        lc, ld = cpu_logits.float(), dev_logits.float().cpu()
        noise = (lc - ld).abs().max().item()
        margin = (lc[tok_c] - lc[tok_d]).item()
        ok = margin <= 2 * noise and noise <= self.tol["logits_abs_rel"] * lc.abs().max().item()
        return ok, margin, noise

    def _generated_logits(self, cpu_steps, dev_steps):
        """L1's logits tolerance over the logits of every generated position, taken together as L1
        takes a batch's (one position alone would count a near-tied MoE expert flip at full weight)."""
        lc = torch.stack([c.float() for c in cpu_steps])
        ld = torch.stack([d.float().cpu() for d in dev_steps])
        diff = _nan_inf((ld - lc).abs().max().item())
        rel = _nan_inf(((ld - lc).norm() / lc.norm()).item())
        if self.bf16:
            ok = rel <= self.tol["logits_norm_rel"] and diff <= self.tol["logits_abs_rel"] * lc.abs().max().item()
            detail = f"rel err {rel:.2e}, max abs {diff:.2e}"
        else:
            ok = diff <= self.tol["logits_abs"]
            detail = f"max abs diff {diff:.2e}"
        return {"gen_logits_ok": bool(ok), "gen_logits_max_abs": diff, "gen_logits_norm_rel": rel,
                "gen_logits_positions": len(cpu_steps), "gen_logits_detail": detail}

    def l4(self):
        o = self.o
        prompt = data.encode(PROMPT)[None]
        kw = dict(max_new_tokens=o.gen_tokens, do_sample=False, use_cache=True, return_dict_in_generate=True,
                  output_logits=True, pad_token_id=0)
        self._side("cpu")
        self.cpu.eval()
        with self._ctx("cpu"):
            out_c = self.cpu.generate(prompt, attention_mask=torch.ones_like(prompt), **kw)
        self._side("biren")
        self.dev.load_state_dict(self.cpu.state_dict())  # the same (CPU-trained) weights on both sides
        self.dev.eval()
        p = prompt.to(o.device)
        t0 = self._sync()
        with self._ctx(o.device):
            out_d = self.dev.generate(p, attention_mask=torch.ones_like(p), **kw)
        t1 = self._sync()
        n = prompt.shape[1]
        sc, sd = out_c.sequences[0, n:].tolist(), out_d.sequences[0, n:].cpu().tolist()
        self.generation = {"prompt": PROMPT, "cpu": data.decode(sc), "biren": data.decode(sd)}
        m = {"new_tokens": len(sd), "generate_ns": t1 - t0, "identical": sc == sd, "distinct_tokens": len(set(sc))}
        t = next((i for i, (a, b) in enumerate(zip(sc + [None], sd + [None])) if a != b), None)
        # Logits at every position both sides computed from the same prefix (through the divergence):
        # they test the decode path (KV cache) even where greedy tokens cannot, e.g. a repeated token.
        compared = len(sc) if t is None else min(t + 1, len(out_c.logits), len(out_d.logits))
        m.update(self._generated_logits(out_c.logits[:compared], out_d.logits[:compared]))
        # A tiny or briefly trained model often repeats one token: then equal tokens say little.
        weak = "" if len(set(sc)) > 1 else (f"; tokens are one repeated token, so their equality is weak evidence: "
                                            f"the logits at all {compared} positions carry the check")
        logits = f"logits at {compared} positions {m['gen_logits_detail']}"
        if not m["gen_logits_ok"]:
            return "precision", f"{logits} (tokens {'identical' if t is None else f'differ from {t}'}){weak}", m
        if t is None:
            return None, f"{len(sd)} tokens identical: {self.generation['biren']!r}, {logits}{weak}", m
        m["first_divergence"] = t
        if self.bf16 and t < min(len(sc), len(sd)):
            ok, margin, noise = self._near_tie(out_c.logits[t][0], out_d.logits[t][0], sc[t], sd[t])
            m.update(near_tie=ok, margin=margin, noise=noise)
            if ok:
                return None, (f"tokens identical up to {t}, then a near-tie (CPU margin {margin:.2e} <= 2x"
                              f" logit noise {noise:.2e})"), m
        return "precision", f"tokens differ from position {t}: {self.generation['biren']!r} vs {self.generation['cpu']!r}", m

    # Performance ----------------------------------------------------------------------------------

    def _perf(self):
        from ..sim.chip import current_chip

        o = self.o
        chip = current_chip()
        steps = self.curves["step_ns"]
        step_ns = statistics.median(steps[1:]) if len(steps) > 1 else steps[0]
        tokens = o.batch * o.seq
        step_flops = flops.train_flops(self.cpu.config, o.batch, o.seq, self.params["model"])
        peak = chip.matrix_flops(torch.bfloat16)
        perf = {"chip": chip.label(), "peak_bf16_flops": peak, "step_ns": step_ns, "first_step_ns": steps[0],
                "tokens_per_step": tokens, "tokens_per_s": tokens / (step_ns * 1e-9),
                "model_flops_per_step": step_flops, "mfu": step_flops / (step_ns * 1e-9) / peak,
                "peak_memory_bytes": self.peak_bytes, "memory_capacity_bytes": int(chip.memory_bytes),
                "time_by_kind": {}, "top_ops": []}  # fmt: skip
        total = sum(r["total_ns"] for r in self.profile_rows) or 1.0
        for r in self.profile_rows:
            perf["time_by_kind"][r["kind"]] = perf["time_by_kind"].get(r["kind"], 0.0) + r["total_ns"] / total
        perf["top_ops"] = [{k: r[k] for k in ("name", "kind", "calls", "total_ns", "bound")}
                           for r in self.profile_rows[:8]]
        gen = next((r["metrics"] for r in self.rungs if r["id"] == "L4" and r["status"] == "pass"), None)
        if gen and gen.get("new_tokens"):
            perf["decode_ns_per_token"] = gen["generate_ns"] / gen["new_tokens"]
        return perf

    def _baseline(self):
        """The same training step timed on another chip (a GPU baseline), two steps, the second kept."""
        from ..sim.chip import current_chip, use_chip

        o = self.o
        try:
            with use_chip(o.baseline):
                chip = current_chip()
                opt = self._optimizer(self.dev)
                self.dev.train()
                ns = []
                for ids in self.batches[:2]:
                    t0 = self._sync()
                    self._train_step(self.dev, opt, ids, o.device)
                    ns.append(self._sync() - t0)
                step_ns = ns[-1]
                step_flops = flops.train_flops(self.cpu.config, o.batch, o.seq, self.params["model"])
                peak = chip.matrix_flops(torch.bfloat16)
                return {"chip": chip.label(), "step_ns": step_ns, "tokens_per_s": o.batch * o.seq / (step_ns * 1e-9),
                        "mfu": step_flops / (step_ns * 1e-9) / peak}
        except Exception as err:  # noqa: BLE001 - a baseline is informative only
            return {"chip": o.baseline, "error": _first_line(err)}

    # Driver -------------------------------------------------------------------------------------------

    def run(self):
        import torch_biren
        from ..sim.chip import current_chip, set_chip

        o = self.o
        wall0 = time.time()
        if o.chip:
            set_chip(o.chip)
        self.device = torch.device(o.device)
        self.dev_index = self.device.index or 0
        chip = current_chip()
        cfg = zoo.config(o.model, **o.overrides)
        self.params = flops.param_counts(cfg)
        self.batches = [b for b in data.training_batches(o.steps, o.batch, o.seq)]
        self.result = {
            "model": o.model, "dtype": o.dtype, "options": asdict(o), "tolerances": self.tol,
            "chip": chip.label(), "chip_inferred": chip.inferred(),
            "config": {k: v for k, v in cfg.to_dict().items() if isinstance(v, (int, float, str, bool, type(None)))
                       and not k.startswith("_") and k not in ("transformers_version",)},
            "params": self.params, "rungs": self.rungs, "done": False,
        }  # fmt: skip
        torch.manual_seed(o.seed)
        torch_biren.reset_op_counts()
        torch_biren._C._sim_reset(-1)
        stopped = None
        for rid, name in RUNGS.items():
            if stopped:
                self.rungs.append({"id": rid, "name": name, "status": "not reached", "kind": None,
                                   "detail": f"stopped at {stopped}", "metrics": {}})
                continue
            self.on_event("rung", rung=rid, name=name)
            before = torch_biren.op_counts()
            t0 = time.time()
            try:
                kind, detail, metrics = getattr(self, rid.lower())()
            except Exception as err:  # noqa: BLE001 - the ladder reports, classified
                kind, detail, metrics = classify(err, self.side), _first_line(err), {}
                stopped = rid
            if kind == "precision" and rid in ("L1", "L2"):
                detail += self._first_bad_op()
            rung_counts = coverage.diff(torch_biren.op_counts(), before)
            coverage.add(self.counts, rung_counts)
            self.rungs.append({"id": rid, "name": name, "status": "fail" if kind else "pass", "kind": kind,
                               "detail": detail, "metrics": metrics, "wall_s": time.time() - t0,
                               "op_kinds": coverage.by_kind(rung_counts)})  # fmt: skip
            self.on_event("rung_done", rung=rid, status=self.rungs[-1]["status"], kind=kind, detail=detail)
            self._update()
        if hasattr(self, "curves"):
            self.result["curves"] = self.curves
            self.result["perf"] = self._perf()
            if o.baseline:
                self.result["baseline"] = self._baseline()
        self.result["adaptations"] = [{"name": n, "what": w, "modules": k} for n, w, k in getattr(self, "adaptations", [])]
        self.result["generation"] = getattr(self, "generation", None)
        self.result["wall_s"] = time.time() - wall0
        self.result["done"] = True
        self._update()
        return self.result

    def _first_bad_op(self):
        """'; first op diverging from CPU: ...' for a forward that missed its tolerance."""
        from ..debug.diagnose import first_bad_op

        ids = self.batches[0]
        try:
            with torch.no_grad():
                found = first_bad_op(self.dev, lambda: self._forward(self.dev, ids, self.o.device))
        except Exception as err:  # noqa: BLE001 - a diagnosis is informative only
            return f"; (op comparison failed: {_first_line(err)})"
        return f"; {found}" if found else "; every op agrees with CPU within its dtype's tolerance"

    def _update(self):
        fam, fallback = coverage.by_family(self.counts)
        self.result["coverage"] = {"by_kind": coverage.by_kind(self.counts), "by_family": fam,
                                   "fallback_by_family": fallback, "layers": getattr(self, "layer_ops", {}),
                                   "ops": self.counts}  # fmt: skip
        self.result["ok"] = all(r["status"] == "pass" for r in self.rungs) and len(self.rungs) == len(RUNGS)
        self.on_event("result", result=self.result)


def run(opts, on_event=None):
    """Climb the ladder for one model and dtype in this process; returns the result dict."""
    return Ladder(opts, on_event).run()
