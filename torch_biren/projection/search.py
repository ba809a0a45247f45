"""--auto: the fastest parallel layouts that fit. Enumerates tp (powers of two inside a server), pp,
cp (long sequences), ep (MoE), the micro-batch and the recomputation, projects each (the traces are
memoised per tensor-parallel size, micro-batch and sequence, so most candidates cost no trace) and
keeps those that fit memory, ranked by step time; the others are counted by why they were rejected.
Stops at a time limit and says so."""

import time
from collections import Counter
from dataclasses import dataclass, field

from .models import config, experts, resolve
from .plan import ProjectionError
from .project import project
from .report import GiB

TIME_LIMIT_S = 55.0


@dataclass
class Found:
    model: str
    cards: int
    batch: int
    seq: int
    results: list  # the fastest Results that fit, best first
    rejected: Counter  # reason -> count
    tried: int
    wall_s: float
    stopped: bool = False
    notes: list = field(default_factory=list)

    def as_dict(self):
        return {"model": self.model, "cards": self.cards, "batch": self.batch, "seq": self.seq, "tried": self.tried,
                "wall_s": self.wall_s, "stopped_at_time_limit": self.stopped, "rejected": dict(self.rejected),
                "results": [r.as_dict() for r in self.results], "notes": self.notes}

    def report(self, top_ops=8):
        lines = [f"--auto: {self.model} on {self.cards} cards, global batch {self.batch} x seq {self.seq}: "
                 f"{self.tried} configurations in {self.wall_s:.1f} s"
                 f"{' (stopped at the time limit)' if self.stopped else ''}"]
        lines += [f"  {n}" for n in self.notes]
        if not self.results:
            lines.append("  nothing fits")
        for i, r in enumerate(self.results, 1):
            p = r.plan
            lines.append(f"  {i}. tp {p.tp} pp {p.pp} dp {p.dp}{f' cp {r.cp}' if r.cp > 1 else ''}"
                         f"{f' ep {p.ep}' if p.ep > 1 else ''} micro-batch {p.micro_batch}, recompute "
                         f"{r.stack.recompute}: step {r.step_ns / 1e9:.3f} s, MFU {100 * r.mfu:.1f}%, "
                         f"{sum(r.memory.values()) / GiB:,.1f} of {r.capacity / GiB:,.1f} GiB")
        lines.append("  rejected: " + (", ".join(f"{n} {why}" for why, n in self.rejected.most_common())
                                       or "none"))
        if self.results:
            lines += ["", "Best:", self.results[0].report(top_ops)]
        return "\n".join(lines)


def _pow2(limit):
    out, n = [], 1
    while n <= limit:
        out.append(n)
        n *= 2
    return out


def search(model, cards, top=5, batch=None, seq=None, mode="train", time_limit_s=TIME_LIMIT_S, **kw):
    """Found: the `top` fastest configurations of `model` on `cards` cards that fit."""
    t0 = time.perf_counter()
    name = resolve(model)
    cfg = config(name)
    seq = seq or min(2048, getattr(cfg, "max_position_embeddings", 2048) or 2048)
    notes = []
    if batch is None:
        batch = cards
        notes.append(f"global batch defaulted to {batch} (one sequence per card; set --batch)")
    per_server = kw.get("cards_per_server", 8)
    e = experts(cfg)[0]
    rejected, fits, tried, stopped = Counter(), [], 0, False
    tps = [t for t in _pow2(min(per_server, cards)) if cfg.num_attention_heads % t == 0]
    pps = [p for p in _pow2(min(cards, cfg.num_hidden_layers)) if mode == "train" or p <= 8]
    cps = [c for c in _pow2(16) if c == 1 or (mode != "decode" and seq >= 8192 * c // 2 and seq % (2 * c) == 0)]
    eps = [x for x in _pow2(min(cards, e)) if e % x == 0] if e else [1]
    mbs = (1, 2, 4) if mode == "train" else (None,)
    recomputes = ("none", "selective", "full") if mode == "train" else (None,)
    candidates = []
    for tp in tps:
        for pp in pps:
            for cp in cps:
                if cards % (tp * pp * cp):
                    continue
                dp = cards // (tp * pp * cp)
                for ep in eps:
                    if (dp * tp) % ep:
                        continue
                    for mb in mbs:
                        candidates.append((tp, pp, cp, ep, mb))
    # Cheapest traces first: the memoised layer costs depend on tp, the micro-batch and seq / cp only.
    candidates.sort(key=lambda c: (c[0], c[4] or 0, c[2]))
    for tp, pp, cp, ep, mb in candidates:
        for rc in recomputes:
            if time.perf_counter() - t0 > time_limit_s:
                stopped = True
                break
            tried += 1
            try:
                r = project(name, cards=cards, mode=mode, batch=batch, seq=seq, tp=tp, pp=pp, cp=cp, ep=ep,
                            micro_batch=mb, recompute=rc, suggest=False, **kw)
            except ProjectionError as err:
                rejected[f"invalid ({_reason(str(err))})"] += 1
                continue
            if not r.fits:
                rejected["do not fit memory"] += 1
                continue
            fits.append(r)
        if stopped:
            break
    fits.sort(key=lambda r: r.step_ns)
    # A slower configuration that fits with the same layout as a faster one is only its recompute variant.
    best, seen = [], set()
    for r in fits:
        key = (r.plan.tp, r.plan.pp, r.cp, r.plan.ep, r.plan.micro_batch)
        if key in seen:
            rejected["slower recompute variant of a listed layout"] += 1
            continue
        seen.add(key)
        if len(best) < top:
            best.append(r)
        else:
            rejected["fit but slower than the listed ones"] += 1
    return Found(name, cards, batch, seq, best, rejected, tried, time.perf_counter() - t0, stopped, notes)


def _reason(msg):
    for key in ("does not divide the global batch", "micro-batch", "heads", "experts", "layers", "sequence"):
        if key in msg:
            return {"does not divide the global batch": "dp does not divide the batch",
                    "micro-batch": "micro-batch does not divide the replica's batch", "heads": "tp vs heads",
                    "experts": "ep vs experts", "layers": "pp vs layers", "sequence": "cp vs sequence"}[key]
    return msg
