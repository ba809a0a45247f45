"""A projection's result and its report: step time, throughput, MFU, the breakdown into compute,
bubble, optimizer and communication, memory per card, checkpoint time, the top ops, assumptions."""

from dataclasses import dataclass, field

from ..sim.chip import Chip
from ..sim.profiler import format_time
from .plan import Plan

GiB = 2**30


def _bytes(n):
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,.0f} B"


def _end(value, end):
    """A range end as the report shows it: a factor for tables of efficiencies, else the number."""
    if isinstance(value, (list, tuple, dict)) and not isinstance(end, (list, tuple)):
        return f"x{end:g}"
    if isinstance(end, float) and (abs(end) >= 1e4 or (end and abs(end) < 1e-3)):
        return f"{end:.3g}"
    return str(end)


@dataclass
class Result:
    model: str
    mode: str
    chip: Chip
    topo: object
    plan: Plan
    batch: int
    seq: int
    context: int
    step_ns: float
    tokens_per_s: float
    mfu: float
    model_flops: float
    memory: dict  # per card, bytes
    capacity: int
    comm_ns: dict
    compute_ns: float
    bubble_ns: float
    optimizer_ns: float
    top_ops: list  # (name, ns per step on one card)
    checkpoint: dict
    assumptions: list = field(default_factory=list)
    recompute: bool = False
    virtual_stages: int = 1
    stack: object = None  # the training stack (stack.Stack)
    collectives: list = field(default_factory=list)  # [communication.Collective]
    cp: int = 1
    warnings: list = field(default_factory=list)
    decode_Bps: float = 0.0  # decode: weights + KV cache read per token step / step time
    recompute_ns: float = 0.0
    suggestions: list = field(default_factory=list)  # what would make a non-fitting step fit
    moe: object = None  # projection.moe.LayerCost of one MoE layer, for MoE models
    ranges: object = None  # projection.ranges.Ranges, when asked for (project(ranges=True))

    @property
    def fits(self):
        return sum(self.memory.values()) <= self.capacity

    @property
    def comm_share(self):
        """The exposed communication's share of the step."""
        return self.exposed_comm_ns / self.step_ns if self.step_ns else 0.0

    @property
    def exposed_comm_ns(self):
        return sum(c.exposed_ns for c in self.collectives)

    @property
    def hidden_comm_ns(self):
        return sum(c.ns - c.exposed_ns for c in self.collectives)

    def as_dict(self):
        return {
            "model": self.model, "mode": self.mode, "chip": self.chip.label(), "topology": self.topo.describe(),
            "cards": self.plan.cards, "dp": self.plan.dp, "tp": self.plan.tp, "pp": self.plan.pp, "ep": self.plan.ep,
            "micro_batch": self.plan.micro_batch, "microbatches": self.plan.microbatches, "batch": self.batch,
            "seq": self.seq, "context": self.context, "step_s": self.step_ns / 1e9, "tokens_per_s": self.tokens_per_s,
            "mfu": self.mfu, "model_flops": self.model_flops, "memory_bytes": self.memory,
            "capacity_bytes": self.capacity, "fits": self.fits, "comm_s": {k: v / 1e9 for k, v in self.comm_ns.items()},
            "comm_share": self.comm_share, "compute_s": self.compute_ns / 1e9, "bubble_s": self.bubble_ns / 1e9,
            "optimizer_s": self.optimizer_ns / 1e9, "top_ops": [(n, ns / 1e9) for n, ns in self.top_ops],
            "checkpoint": self.checkpoint, "assumptions": self.assumptions, "recompute": self.recompute,
            "virtual_stages": self.virtual_stages, "cp": self.cp,
            "stack": self.stack.__dict__ if self.stack else {}, "exposed_comm_s": self.exposed_comm_ns / 1e9,
            "hidden_comm_s": self.hidden_comm_ns / 1e9,
            "collectives": [{"name": c.name, "kind": c.kind, "ranks": c.ranks, "where": c.where,
                             "bytes_per_call": c.nbytes, "calls": c.calls, "s": c.ns / 1e9,
                             "exposed_s": c.exposed_ns / 1e9} for c in self.collectives],
            "warnings": self.warnings, "decode_GBps": self.decode_Bps / 1e9,
            "hbm_peak_GBps": self.chip.hbm_peak_Bps / 1e9, "suggestions": self.suggestions,
            **({"moe": {"per_step_s": {k: v / 1e9 for k, v in self.moe.per_step.items()}, "volumes_bytes": self.moe.volumes,
                        "expert_weight_bytes": self.moe.expert_weight_bytes}} if self.moe else {}),
            **({"ranges": self.ranges.as_dict()} if self.ranges else {}),
        }  # fmt: skip

    def _range_lines(self, unit):
        rg = self.ranges
        if not rg.moved:
            return [f"  ranges: none of {self.chip.name}'s ranged numbers moves this {unit}"]
        rows = {r.field: r for r in rg.study.rows}
        tops = []
        for f in rg.top(3):
            r = rows[f]
            tops.append(f"{f} {_end(r.value, r.range[0])} .. {_end(r.value, r.range[1])}: "
                        f"{format_time(r.low['step_s'] * 1e9)} .. {format_time(r.high['step_s'] * 1e9)}")
        return [f"  ranges (in brackets): {len(rg.moved)} of {self.chip.name}'s inferred numbers move the {unit}, each "
                "set alone to its range's low and high end and the changes added in quadrature (uncorrelated "
                "inputs, GUM 5.1.2)",
                f"    most sensitive to: {'; '.join(tops)}",
                f"    every number at its worse end at once: {unit} {format_time(rg.worst['step_s'] * 1e9)}; at its "
                f"better end: {format_time(rg.best['step_s'] * 1e9)}"]

    def report(self, top=8):
        p = self.plan
        lines = [f"Projection: {self.model} {self.mode} on {p.cards} x {self.chip.label()}"
                 f" (dp {p.dp} x tp {p.tp} x pp {p.pp}{f' x cp {self.cp}' if self.cp > 1 else ''}"
                 f"{f', ep {p.ep}' if p.ep > 1 else ''})",
                 f"  topology: {self.topo.describe()}"]
        lines += [f"  WARNING: {w}" for w in self.warnings]
        what = {"train": f"global batch {self.batch} x seq {self.seq}, micro-batch {p.micro_batch} x {p.microbatches}",
                "prefill": f"batch {self.batch} x prompt {self.seq}",
                "decode": f"batch {self.batch}, one token with {self.context} cached"}[self.mode]
        interleaved = f", interleaved 1F1B with {self.virtual_stages} virtual stages" if self.virtual_stages > 1 else ""
        lines.append(f"  {what}{interleaved}")
        described = self.stack.describe(p.tp, self.mode) if self.stack else ""
        if described:
            lines.append(f"  training stack: {described}" if self.mode == "train" else f"  {described}")
        unit = "step" if self.mode == "train" else "token step" if self.mode == "decode" else "prefill"
        rg = self.ranges
        span = (lambda m, fmt: f" ({fmt(rg.low[m])} to {fmt(rg.high[m])})") if rg else (lambda m, fmt: "")
        seconds = lambda s: format_time(s * 1e9)  # noqa: E731
        rate = (f"HBM {self.decode_Bps / 1e9:,.0f} GB/s{span('hbm_GBps', lambda v: f'{v:,.0f}')} achieved "
                f"({100 * self.decode_Bps / self.chip.hbm_peak_Bps:.0f}% of peak: weights + KV cache per token step)"
                if self.mode == "decode" else f"MFU {100 * self.mfu:.1f}%{span('mfu', lambda v: f'{100 * v:.1f}%')}")
        lines.append(f"  {unit} time {format_time(self.step_ns)}{span('step_s', seconds)}   tokens/s "
                     f"{self.tokens_per_s:,.0f}{span('tokens_per_s', lambda v: f'{v:,.0f}')}   {rate}   "
                     f"exposed communication {100 * self.comm_share:.1f}% of the step")
        if rg:
            lines += self._range_lines(unit)
        parts = [("compute", self.compute_ns), ("pipeline bubble", self.bubble_ns),
                 ("of which recomputation", self.recompute_ns), ("optimizer", self.optimizer_ns),
                 ("exposed communication", self.exposed_comm_ns), ("hidden communication", self.hidden_comm_ns)]
        lines.append("  breakdown: " + ", ".join(f"{k} {format_time(v)}" for k, v in parts if v > 0))
        if self.collectives:
            lines.append("  collectives per step on one card (group placement, volume per call):")
            width = max(50, *(len(c.name) for c in self.collectives))
            for c in self.collectives:
                lines.append(f"    {c.name:<{width}} {c.ranks:>5} ranks {c.where:<32} {_bytes(c.nbytes):>10} x {c.calls:>7,.0f}"
                             f"  {format_time(c.ns):>10}, exposed {format_time(c.exposed_ns)}")
        if self.moe:
            from .moe import describe

            lines.append("  " + describe(self.moe))
        mem = ", ".join(f"{k} {v / GiB:,.1f}" for k, v in self.memory.items() if v)
        total = sum(self.memory.values())
        verdict = f"fits, {(self.capacity - total) / GiB:,.1f} spare" if self.fits else "DOES NOT FIT"
        lines.append(f"  memory per card (GiB): {mem}; total {total / GiB:,.1f} of {self.capacity / GiB:,.1f}: {verdict}")
        lines += [f"  would fit with: {s}" for s in self.suggestions]
        if self.checkpoint:
            c = self.checkpoint
            lines.append(f"  checkpoint: {c['bytes'] / 1e12:,.2f} TB; save {c['save_s']:,.0f} s, restore "
                         f"{c['restore_s']:,.0f} s at {c['storage_GBps']:g} GB/s storage")
        lines.append(f"  top ops per {unit} on one card:")
        busy = sum(ns for _, ns in self.top_ops) or 1.0
        width = max([64] + [len(name) for name, _ in self.top_ops[:top]])
        for name, ns in self.top_ops[:top]:
            lines.append(f"    {name:<{width}} {format_time(ns):>10}  {100 * ns / busy:5.1f}%")
        lines += [f"  assumption: {a}" for a in self.assumptions]
        return "\n".join(lines)
