"""Projection of full-size models on clusters of cards, without allocating their memory.

    r = project("qwen2.5-72b", cards=64, mode="train", batch=512, seq=4096, tp=8, pp=4)
    print(r.report())

How: the model's HF module tree is built on the meta device with per-card shapes (tensor parallel
shards heads, KV heads, MLP width and vocabulary), one, two or three decoder layers at a time; one
micro-batch is traced (torch_biren.sim.trace) into the kernels the live biren device would charge,
priced by the same cost functions, and replayed on the device timeline. The difference between
traces with n and n+1 layers is one layer's cost, so a full model of any depth costs a few short
traces. Parallelism adds the collective cost model (collectives.py): tensor-parallel all-reduces
per layer (2 forward, 2 backward, 2 more when activations are recomputed), expert-parallel
all-to-alls (dispatch and combine), pipeline sends and the 1F1B bubble (pp-1)/(micro-batches+pp-1),
and the data-parallel gradient all-reduce (reduce-scatter + all-gather with a distributed
optimizer), not overlapped with compute. MoE routing is assumed balanced.
"""

from dataclasses import dataclass, field

import torch

from . import collectives, costs, trace
from .chip import Chip, load_chip

MODES = ("train", "prefill", "decode")
GiB = 2**30

# Models of the published runs (published-runs.md) and a 100B-class dense model, as zoo "llama"
# configs. GPT's 4h GELU MLP (2 matrices, 8h^2 weights) is written as a SwiGLU MLP of width 8h/3
# (3 matrices, the same 8h^2 weights and FLOPs); attention is multi-head (kv heads = heads).
EXTRA = {
    "GPT-175B": dict(vocab_size=51200, hidden_size=12288, intermediate_size=32768, num_hidden_layers=96,
                     num_attention_heads=96, num_key_value_heads=96, max_position_embeddings=2048),
    "GPT-1T": dict(vocab_size=51200, hidden_size=25600, intermediate_size=68264, num_hidden_layers=128,
                   num_attention_heads=160, num_key_value_heads=160, max_position_embeddings=2048),
    "GPT-100B": dict(vocab_size=51200, hidden_size=10240, intermediate_size=27304, num_hidden_layers=80,
                     num_attention_heads=80, num_key_value_heads=80, max_position_embeddings=4096),
    "Llama-3-405B": dict(vocab_size=128256, hidden_size=16384, intermediate_size=53248, num_hidden_layers=126,
                         num_attention_heads=128, num_key_value_heads=8, max_position_embeddings=131072,
                         rope_theta=500000.0),
}  # fmt: skip
ALIASES = {"deepseek-v3": "DeepSeek-V3-671B", "gpt-1008b": "GPT-1T", "llama3-405b": "Llama-3-405B"}


class ProjectionError(ValueError):
    """Bad projection input; the message is one line for the user."""


def model_names():
    from ..adapt import zoo

    return [*zoo.PUBLISHED, *EXTRA, *(f"tiny-{n}" for n in zoo.names())]


def resolve(name):
    """Canonical model name for a case-insensitive name or alias; ProjectionError if unknown."""
    low = str(name).lower()
    low = ALIASES.get(low, low).lower()
    for n in model_names():
        if n.lower() == low:
            return n
    raise ProjectionError(f"unknown model '{name}'; known: {', '.join(model_names())}")


def _config(name, **layers):
    """HF config of a model by canonical name, with layer-count overrides."""
    from ..adapt import zoo

    if name.startswith("tiny-"):
        return zoo.config(name[5:], **layers)
    if name in EXTRA:
        cfg = zoo._make("llama", {**EXTRA[name], **layers, "tie_word_embeddings": False}, ())
        return cfg
    return zoo.published_config(name, **layers)


def _experts(cfg):
    e = getattr(cfg, "num_experts", None) or getattr(cfg, "n_routed_experts", None) or 0
    return e, (cfg.num_experts_per_tok if e else 0)


def _dense_layers(cfg):
    """Leading dense layers of a MoE model (DeepSeek's first_k_dense_replace); all for dense models."""
    if not _experts(cfg)[0]:
        return cfg.num_hidden_layers
    return min(getattr(cfg, "first_k_dense_replace", 0) or 0, cfg.num_hidden_layers)


def _variant(name, dense, moe):
    """Config with `dense` dense and `moe` MoE layers."""
    base = _config(name)
    if _experts(base)[0] and hasattr(base, "first_k_dense_replace"):
        return _config(name, num_hidden_layers=dense + moe, first_k_dense_replace=dense)
    return _config(name, num_hidden_layers=dense + moe)


def _shard(cfg, tp):
    """Per-card shapes under tensor parallelism of degree tp (set in place)."""
    heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads
    if not getattr(cfg, "head_dim", None) and not hasattr(cfg, "kv_lora_rank"):
        cfg.head_dim = cfg.hidden_size // heads
    if tp == 1:
        return cfg
    cfg.num_attention_heads = heads // tp
    cfg.num_key_value_heads = max(1, kv // tp)  # fewer KV heads than cards: each card keeps one
    cfg.intermediate_size = -(-cfg.intermediate_size // tp)
    cfg.vocab_size = -(-cfg.vocab_size // tp)
    return cfg


@dataclass
class Plan:
    """Parallel layout: cards = dp x tp x pp; ep divides dp x tp (experts spread over those cards)."""

    cards: int
    dp: int
    tp: int
    pp: int
    ep: int
    micro_batch: int
    microbatches: int


def plan(cfg, cards, batch, dp=None, tp=1, pp=1, ep=1, micro_batch=None, mode="train"):
    for n, v in (("cards", cards), ("batch", batch), ("tp", tp), ("pp", pp), ("ep", ep)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ProjectionError(f"{n} must be a positive integer, got {v}")
    if cards % (tp * pp):
        raise ProjectionError(f"tp={tp} x pp={pp} does not divide {cards} cards")
    dp = dp or cards // (tp * pp)
    if dp * tp * pp != cards:
        raise ProjectionError(f"dp={dp} x tp={tp} x pp={pp} = {dp * tp * pp}, not the {cards} cards")
    if cfg.num_attention_heads % tp:
        raise ProjectionError(f"tp={tp} does not divide the {cfg.num_attention_heads} attention heads")
    kv = cfg.num_key_value_heads
    if kv > tp and kv % tp:
        raise ProjectionError(f"tp={tp} does not divide the {kv} key/value heads")
    if pp > cfg.num_hidden_layers:
        raise ProjectionError(f"pp={pp} exceeds the {cfg.num_hidden_layers} layers")
    experts = _experts(cfg)[0]
    if ep > 1 and not experts:
        raise ProjectionError(f"ep={ep} needs a mixture-of-experts model")
    if ep > 1 and (experts % ep or (dp * tp) % ep):
        raise ProjectionError(f"ep={ep} must divide the {experts} experts and dp x tp = {dp * tp}")
    if batch % dp:
        raise ProjectionError(f"dp={dp} does not divide the global batch of {batch}")
    local = batch // dp
    mb = micro_batch or (1 if mode == "train" and pp > 1 else local)
    if local % mb:
        raise ProjectionError(f"micro-batch {mb} does not divide the per-replica batch of {local}")
    return Plan(cards, dp, tp, pp, ep, mb, local // mb)


@dataclass
class LayerCosts:
    """Costs of one micro-batch on one card: base (embedding, head, loss) plus per-layer deltas."""

    fwd: dict  # {"base": ns, "dense": ns, "moe": ns}
    total: dict  # fwd + bwd (train) or fwd (inference)
    busy: dict  # {"base"|"dense"|"moe": {op: ns}}
    saved: dict  # activation bytes saved for backward
    kv: dict  # KV-cache bytes (inference)
    params: dict  # parameters on the card
    expert_params: dict


def _count(model):
    total = expert = 0
    for name, p in model.named_parameters():
        total += p.numel()
        if ".experts." in name and p.dim() == 3:
            expert += p.numel()
    return total, expert


def _run(name, dense, moe, tp, chip, mode, mb, seq, context, fused, dtype, need_fwd):
    from ..adapt import zoo

    cfg = _shard(_variant(name, dense, moe), tp)
    cfg._attn_implementation = "sdpa"
    model = zoo.build_meta(cfg).to(dtype)
    model.train(mode == "train")
    ids = torch.zeros((mb, seq), dtype=torch.long, device="meta")
    kv_bytes = 0
    if mode == "train":
        def step():
            model(ids, labels=ids).loss.backward()
    elif mode == "prefill":
        def step():
            with torch.no_grad():
                model(ids, use_cache=True, logits_to_keep=1)  # a serving prefill fills the KV cache
    else:
        with torch.no_grad():
            cache = model(torch.zeros((mb, context), dtype=torch.long, device="meta"), use_cache=True,
                          logits_to_keep=1).past_key_values
        kv_bytes = sum(t.numel() * t.element_size() for layer in cache.layers
                       for t in (layer.keys, layer.values) if t is not None)
        ids = torch.zeros((mb, 1), dtype=torch.long, device="meta")

        def step():
            with torch.no_grad():
                model(ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
    result = trace.trace(step, chip, model, fused)
    elapsed, busy = trace.replay(result.ops, chip)
    fwd_ns = elapsed
    if mode == "train" and need_fwd:
        fwd_ns = trace.replay(trace.trace(lambda: model(ids, labels=ids).loss, chip, model, fused).ops, chip)[0]
    total, expert = _count(model)
    return fwd_ns, elapsed, busy, result.saved_bytes, kv_bytes, total, expert


def layer_costs(name, tp, chip, mode, mb, seq, context=0, fused=True, dtype=torch.bfloat16, need_fwd=False):
    """Trace the variants (base + 1 layer of each kind, + one more of each) and take differences."""
    cfg = _config(name)
    d = _dense_layers(cfg)
    moe = cfg.num_hidden_layers - d
    kinds = ([("dense", 1)] if d else []) + ([("moe", 1)] if moe else [])
    start = {"dense": 1 if d else 0, "moe": 1 if moe else 0}
    runs = {"start": _run(name, start["dense"], start["moe"], tp, chip, mode, mb, seq, context, fused, dtype, need_fwd)}
    for kind, _ in kinds:
        n = dict(start)
        n[kind] += 1
        runs[kind] = _run(name, n["dense"], n["moe"], tp, chip, mode, mb, seq, context, fused, dtype, need_fwd)
    out = LayerCosts({}, {}, {}, {}, {}, {}, {})
    s = runs["start"]
    fields = ((out.fwd, 0), (out.total, 1), (out.saved, 3), (out.kv, 4), (out.params, 5), (out.expert_params, 6))
    for kind in ("dense", "moe"):
        r = runs.get(kind)
        for target, i in fields:
            target[kind] = (r[i] - s[i]) if r else 0
        out.busy[kind] = {k: r[2].get(k, 0.0) - s[2].get(k, 0.0) for k in r[2]} if r else {}
    for target, i in fields:
        target["base"] = s[i] - sum(target[k] * start[k] for k in ("dense", "moe"))
    out.busy["base"] = {k: v - sum(out.busy[kind].get(k, 0.0) * start[kind] for kind in ("dense", "moe"))
                        for k, v in s[2].items()}
    return out


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
        }  # fmt: skip

    def report(self, top=8):
        from .profiler import _time

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


def _model_flops(name, batch, seq, mode, context):
    from ..adapt import flops

    cfg = _config(name)
    n = flops.param_counts(cfg)["model"]
    if mode == "train":
        return flops.train_flops(cfg, batch, seq, n)
    if mode == "prefill":
        return flops.flops_per_token(cfg, seq, n, training=False) * batch * seq
    return flops.flops_per_token(cfg, context + 1, n, training=False) * batch


def project(model, cards=1, mode="train", batch=1, seq=2048, chip="BR166", dp=None, tp=1, pp=1, ep=1,
            micro_batch=None, context=None, network=None, cards_per_server=8, recompute=False, zero=1,
            fused=True, storage_GBps=None, memory_mode=None, dtype=None, virtual_stages=1):
    """Project one training step / prefill / decode step of `model` on `cards` cards of `chip`.
    virtual_stages > 1: the interleaved 1F1B schedule (Narayanan et al. 2021), each card holding that
    many non-adjacent chunks of layers: the bubble shrinks by that factor, pipeline sends grow by it."""
    name = resolve(model)
    if mode not in MODES:
        raise ProjectionError(f"mode must be one of {', '.join(MODES)}, got '{mode}'")
    for n, v in (("seq", seq),):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ProjectionError(f"{n} must be a positive integer, got {v}")
    try:
        chip = chip if isinstance(chip, Chip) else load_chip(chip)
        if memory_mode:
            chip = chip.with_mode(memory_mode)
    except (ValueError, FileNotFoundError) as err:
        raise ProjectionError(str(err)) from None
    cfg = _config(name)
    pl = plan(cfg, cards, batch, dp, tp, pp, ep, micro_batch, mode)
    v = virtual_stages
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ProjectionError(f"virtual_stages must be a positive integer, got {v}")
    if v > 1 and (pp == 1 or mode != "train"):
        raise ProjectionError("virtual_stages > 1 (the interleaved schedule) needs pp > 1 and mode train")
    if v > -(-cfg.num_hidden_layers // pp):
        raise ProjectionError(f"virtual_stages={v} exceeds the {-(-cfg.num_hidden_layers // pp)} layers of a stage")
    if mode == "decode":
        context = seq if context is None else context
        seq_in = 1
    else:
        context = 0
        seq_in = seq
    try:
        topo = collectives.topology(cards, chip, cards_per_server, network)
    except ValueError as err:
        raise ProjectionError(str(err)) from None
    # Tiny zoo models run live in fp32; full-size ones are projected in bf16.
    dtype = dtype or (torch.float32 if name.startswith("tiny-") else torch.bfloat16)
    lc = layer_costs(name, tp, chip, mode, pl.micro_batch, seq, context, fused, dtype, need_fwd=recompute)
    dense, moe = _dense_layers(cfg), cfg.num_hidden_layers - _dense_layers(cfg)
    # The busiest pipeline stage holds ceil(layers / pp) layers (uneven stages when pp does not divide).
    layers_stage = -(-cfg.num_hidden_layers // pp)
    share = layers_stage / cfg.num_hidden_layers  # of each kind of layer, on that stage
    per_stage = lambda d: d["base"] + (d["dense"] * dense + d["moe"] * moe) * share  # noqa: E731
    t_mb = per_stage(lc.total)  # one micro-batch through one stage (head and embedding counted once)
    if recompute and mode == "train":
        t_mb += (lc.fwd["dense"] * dense + lc.fwd["moe"] * moe) * share
    h, elt = cfg.hidden_size, dtype.itemsize
    act = pl.micro_batch * seq_in * h * elt  # one micro-batch's hidden states
    comm = {}

    def coll(kind, nbytes, ranks, per_server=None):
        return collectives.collective(kind, nbytes, ranks, topo, ranks_per_server=per_server).ns if ranks > 1 else 0.0

    passes = (4 + (2 if recompute else 0)) if mode == "train" else 2
    m = pl.microbatches if mode == "train" else 1
    # 1F1B: m + (pp - 1) / v micro-batch slots on the critical path (v = 1: the plain schedule)
    slots = m + (pp - 1) / v if mode == "train" else pp
    if tp > 1:
        comm["tensor-parallel all-reduce"] = slots * layers_stage * passes * coll("all_reduce", act, tp)
    e, k = _experts(cfg)
    if ep > 1 and moe:
        rows = act * k
        per_server = max(1, min(ep, cards_per_server // tp))
        n_a2a = 4 if mode == "train" else 2
        comm["expert-parallel all-to-all"] = slots * (moe * share) * n_a2a * coll("all_to_all", rows, ep, per_server)
    if pp > 1:
        across = 1 if tp * pl.dp >= cards_per_server else 2
        n_p2p = 2 if mode == "train" else 1
        comm["pipeline send/recv"] = slots * v * n_p2p * coll("send_recv", act, 2, across)
    params_card = lc.params["base"] + (lc.params["dense"] * dense + lc.params["moe"] * moe) * share
    experts_card = (lc.expert_params["dense"] * dense + lc.expert_params["moe"] * moe) * share
    params_card = params_card - experts_card + experts_card / ep
    optimizer_ns = 0.0
    if mode == "train" and pl.dp > 1:
        per_server = max(1, cards_per_server // (tp * pp)) if tp * pp < cards_per_server else 1
        grad = params_card * 2
        if zero >= 1:
            comm["data-parallel reduce-scatter + all-gather"] = (coll("reduce_scatter", grad, pl.dp, per_server)
                                                                 + coll("all_gather", grad, pl.dp, per_server))
        else:
            comm["data-parallel all-reduce"] = coll("all_reduce", grad, pl.dp, per_server)
    if mode == "train":
        shard = params_card / (pl.dp if zero >= 1 else 1)
        # AdamW on fp32 master weights, one fused multi-tensor kernel: read w, g, m, v; write w, m, v, bf16 w.
        optimizer_ns = costs.generic(12 * shard, shard * (4 * 3 + 2 + 4 * 3 + 2) / 1, chip).ns
    compute = t_mb * slots if mode == "train" else per_stage(lc.total) * pp
    bubble = t_mb * (pp - 1) / v if mode == "train" else 0.0
    compute_net = compute - bubble
    step = compute + sum(comm.values()) + optimizer_ns
    tokens = batch * (seq if mode != "decode" else 1)
    flops = _model_flops(name, batch, seq if mode != "decode" else 1, mode, context)
    peak = chip.matrix_flops("bf16")
    # Memory per card (the busiest pipeline stage)
    weights = params_card * elt
    memory = {"weights": weights}
    if mode == "train":
        memory["gradients"] = params_card * elt
        memory["optimizer states"] = params_card * (12 if elt == 2 else 8) / (pl.dp if zero >= 1 else 1)
        inflight = min(pp, m)
        per_layer = lambda d: (d["dense"] * dense + d["moe"] * moe) / max(1, dense + moe)  # noqa: E731
        if recompute:
            acts = inflight * layers_stage * act + per_layer(lc.saved)
        else:
            acts = inflight * layers_stage * per_layer(lc.saved)
        memory["activations"] = acts + max(0.0, lc.saved["base"])
    else:
        memory["KV cache"] = (lc.kv["dense"] * dense + lc.kv["moe"] * moe) * share if mode == "decode" else 0.0
        memory["activations"] = max(0.0, lc.saved["base"])
    memory = {k: int(v) for k, v in memory.items()}
    # Top ops per step on one card
    scale = slots if mode == "train" else pp
    ops = {}
    for kind, count in (("base", 1), ("dense", dense * share), ("moe", moe * share)):
        for op, ns in lc.busy[kind].items():
            ops[op] = ops.get(op, 0.0) + ns * count * scale
    for c, ns in comm.items():
        ops[f"({c})"] = ns
    if optimizer_ns:
        ops["(optimizer: fused AdamW)"] = optimizer_ns
    top = sorted(((n, v) for n, v in ops.items() if v > 0), key=lambda x: -x[1])
    assumptions = list(topo.assumptions) if cards > 1 else []
    if e:
        assumptions.append("MoE routing is balanced (every expert gets tokens x k / E rows); set by the projection")
    assumptions.append("kernels as torch_biren runs them (fused RMSNorm/SwiGLU/RoPE/attention, HF's module code)"
                       if fused else "HF's module code without the fused kernels (torch_biren.ops.patch_model)")
    if mode == "train":
        assumptions.append(f"bf16 weights and gradients, fp32 AdamW states{' sharded over dp (ZeRO-1)' if zero else ''};"
                           " gradient reduction not overlapped with compute")
    inferred = chip.inferred()
    if inferred:
        assumptions.append(f"{chip.name} numbers labelled inferred: {', '.join(inferred)}")
    ckpt = {}
    if mode == "train":
        from ..adapt import flops as fl

        total_params = fl.param_counts(cfg)["total"]
        gbps = storage_GBps or DEFAULT_STORAGE_GBPS
        nbytes = total_params * 14  # bf16 weights + fp32 master, m, v
        ckpt = {"bytes": nbytes, "storage_GBps": gbps, "save_s": nbytes / (gbps * 1e9),
                "restore_s": nbytes / (gbps * 1e9)}
        if storage_GBps is None:
            assumptions.append(f"checkpoint storage {gbps:g} GB/s aggregate (parameter --storage-GBps; no public "
                               "figure for Biren clusters)")
    return Result(name, mode, chip, topo, pl, batch, seq, context, step, tokens / step * 1e9,
                  flops / (cards * peak * step * 1e-9), flops, memory, chip.memory_bytes, comm, compute_net, bubble,
                  optimizer_ns, top, ckpt, assumptions, recompute and mode == "train", v)


DEFAULT_STORAGE_GBPS = 10.0

