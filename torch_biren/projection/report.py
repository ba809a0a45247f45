"""A projection's result and its report: step time, throughput, MFU, the breakdown into compute,
bubble, optimizer and communication, memory per card, checkpoint time, the top ops, assumptions."""

from dataclasses import dataclass, field

from ..sim.chip import Chip
from ..sim.profiler import _time
from .plan import Plan

GiB = 2**30


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
    moe: object = None  # projection.moe.LayerCost of one MoE layer, for MoE models

    @property
    def fits(self):
        return sum(self.memory.values()) <= self.capacity

    @property
    def comm_share(self):
        return sum(self.comm_ns.values()) / self.step_ns if self.step_ns else 0.0

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
            "virtual_stages": self.virtual_stages,
            **({"moe": {"per_step_s": {k: v / 1e9 for k, v in self.moe.per_step.items()}, "volumes_bytes": self.moe.volumes,
                        "expert_weight_bytes": self.moe.expert_weight_bytes}} if self.moe else {}),
        }  # fmt: skip

    def report(self, top=8):
        p = self.plan
        lines = [f"Projection: {self.model} {self.mode} on {p.cards} x {self.chip.label()}"
                 f" (dp {p.dp} x tp {p.tp} x pp {p.pp}{f', ep {p.ep}' if p.ep > 1 else ''})",
                 f"  topology: {self.topo.describe()}"]
        what = {"train": f"global batch {self.batch} x seq {self.seq}, micro-batch {p.micro_batch} x {p.microbatches}",
                "prefill": f"batch {self.batch} x prompt {self.seq}",
                "decode": f"batch {self.batch}, one token with {self.context} cached"}[self.mode]
        interleaved = f", interleaved 1F1B with {self.virtual_stages} virtual stages" if self.virtual_stages > 1 else ""
        lines.append(f"  {what}{', full activation recomputation' if self.recompute else ''}{interleaved}")
        unit = "step" if self.mode == "train" else "token step" if self.mode == "decode" else "prefill"
        lines.append(f"  {unit} time {_time(self.step_ns)}   tokens/s {self.tokens_per_s:,.0f}   "
                     f"MFU {100 * self.mfu:.1f}%   communication {100 * self.comm_share:.1f}% of the step")
        parts = [("compute", self.compute_ns), ("pipeline bubble", self.bubble_ns), ("optimizer", self.optimizer_ns),
                 *((f"comm: {k}", v) for k, v in self.comm_ns.items())]
        lines.append("  breakdown: " + ", ".join(f"{k} {_time(v)}" for k, v in parts if v > 0))
        if self.moe:
            from .moe import describe

            lines.append("  " + describe(self.moe))
        mem = ", ".join(f"{k} {v / GiB:,.1f}" for k, v in self.memory.items() if v)
        total = sum(self.memory.values())
        verdict = "fits" if self.fits else "DOES NOT FIT"
        lines.append(f"  memory per card (GiB): {mem}; total {total / GiB:,.1f} of {self.capacity / GiB:,.1f}: {verdict}")
        if self.checkpoint:
            c = self.checkpoint
            lines.append(f"  checkpoint: {c['bytes'] / 1e12:,.2f} TB; save {c['save_s']:,.0f} s, restore "
                         f"{c['restore_s']:,.0f} s at {c['storage_GBps']:g} GB/s storage")
        lines.append(f"  top ops per {unit} on one card:")
        busy = sum(ns for _, ns in self.top_ops) or 1.0
        for name, ns in self.top_ops[:top]:
            lines.append(f"    {name:<64} {_time(ns):>10}  {100 * ns / busy:5.1f}%")
        lines += [f"  assumption: {a}" for a in self.assumptions]
        return "\n".join(lines)
