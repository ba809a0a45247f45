"""Costs of one micro-batch on one card, layer by layer: the model is built on the meta device with
per-card shapes, one, two or three decoder layers at a time, traced into the kernels the live device
would charge (trace.py), priced on the chip and replayed; the difference between traces with n and
n+1 layers is one layer's cost, so a model of any depth costs a few short traces. The traces are
chip-free: pricing them on another chip (a range end, another card) needs no new trace."""

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..adapt import zoo
from . import trace
from .models import config, config_json, dense_layers, shard, variant


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
    busy_fwd: dict  # busy of the forward's kernels alone (train with need_fwd; else busy's)

    def copy(self):
        """A copy whose dicts can be changed without touching the cached trace."""
        return LayerCosts(dict(self.fwd), dict(self.total), {k: dict(v) for k, v in self.busy.items()},
                          dict(self.saved), dict(self.kv), dict(self.params), dict(self.expert_params),
                          {k: dict(v) for k, v in self.busy_fwd.items()})


def _count(model):
    total = expert = 0
    for name, p in model.named_parameters():
        total += p.numel()
        if ".experts." in name and p.dim() == 3:
            expert += p.numel()
    return total, expert


def _cache_bytes(cache):
    return sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values)
               if t is not None)


class _Run(NamedTuple):
    """One traced variant (chip-free): its kernels, how many of them are the forward, and its sizes."""

    kernels: list
    forward: int  # kernels of the forward (train: before backward; inference: all)
    saved: int
    kv: int
    params: int
    expert: int


def _new_cache(cfg, kv_cache, length):
    """The KV cache an inference step runs with, as HF names them (cache_implementation): "dynamic"
    (DynamicCache: each step concatenates the new K/V onto a copy of the cache) or "static"
    (StaticCache: allocated at `length` tokens, each step writes its K/V in place with index_copy_).
    The static cache is sized to the step's own length, so attention reads the actual length, as
    serving engines do; HF's StaticCache attends over its max_cache_len under a mask."""
    import transformers

    if kv_cache == "static":
        return transformers.StaticCache(config=cfg, max_cache_len=length)
    return transformers.DynamicCache(config=cfg)


def _run(name, dense, moe, tp, mode, mb, seq, context, fused, dtype, kv_cache="dynamic", fuse_projections=True):
    cfg = shard(variant(name, dense, moe), tp)
    cfg._attn_implementation = "sdpa"
    model = zoo.build_meta(cfg).to(dtype)
    model.train(mode == "train")
    ids = torch.zeros((mb, seq), dtype=torch.long, device="meta")
    kv_bytes = 0
    caches = []
    if mode == "train":
        def step():
            loss = model(ids, labels=ids).loss
            trace.mark()  # the forward ends here: its time is the replay up to this kernel
            loss.backward()
    elif mode == "prefill":
        def step():
            with torch.no_grad():  # fills the KV cache
                caches.append(model(ids, past_key_values=_new_cache(cfg, kv_cache, seq), use_cache=True,
                                    logits_to_keep=1).past_key_values)
    else:
        def fill():
            with torch.no_grad():
                caches.append(model(torch.zeros((mb, context), dtype=torch.long, device="meta"),
                                    past_key_values=_new_cache(cfg, kv_cache, context + 1), use_cache=True,
                                    logits_to_keep=1).past_key_values)

        # The context's prefill, through the same stand-ins (HF's own expert code needs bf16 for its
        # grouped GEMM); its kernels are not the step's.
        trace.trace(fill, model, fused, fuse_projections)
        cache = caches[0]  # measured after the step: it holds the context and the new token
        ids = torch.zeros((mb, 1), dtype=torch.long, device="meta")

        def step():
            with torch.no_grad():
                model(ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
    result = trace.trace(step, model, fused, fuse_projections)
    if caches:
        kv_bytes = _cache_bytes(caches[0])
    total, expert = _count(model)
    forward = result.marks[0] if result.marks else len(result.kernels)
    return _Run(result.kernels, forward, result.saved_bytes, kv_bytes, total, expert)


def _priced(run, chip, memo, need_fwd, graphs=False):
    ops = trace.price(run.kernels, chip, memo)
    elapsed, busy = trace.replay(ops, chip, graph=graphs)
    fwd_ns, busy_fwd = trace.replay(ops[:run.forward], chip) if need_fwd and run.forward < len(ops) else (elapsed, busy)
    return fwd_ns, elapsed, busy, run.saved, run.kv, run.params, run.expert, busy_fwd


_TRACES = {}  # chip-free traces: everything they depend on -> {variant: _Run}
_CACHE = {}  # priced: (traces' key, chip, need_fwd) -> LayerCosts
_PRICES = {}  # chip -> {(cost function, arguments): Cost}, shared by every trace priced on that chip


def layer_costs(name, tp, chip, mode, mb, seq, context=0, fused=True, dtype=torch.bfloat16, need_fwd=False,
                kv_cache="dynamic", graphs=False, fuse_projections=True):
    """Trace the variants (base + 1 layer of each kind, + one more of each) and take differences,
    priced on `chip`. The traces do not depend on the chip and are kept per process on everything
    they depend on, so another chip (a range end, a search's candidate) only re-prices them.
    need_fwd (train): also the forward's time alone, from the same trace (else fwd = total).
    kv_cache (inference): "dynamic" or "static", the cache the step runs with (_new_cache).
    graphs: each variant's step priced as one graph replay (trace.replay(graph=True)): the same trace,
    so the launch is in "base" and each layer's delta is its kernels' device time and gaps.
    fuse_projections: q, k, v and gate, up as one GEMM each (stack.fused_projections; trace._fuse)."""
    kv_cache = kv_cache if mode != "train" else None
    key = (name, config_json(name), tp, mode, mb, seq, context, fused, dtype, kv_cache, fuse_projections)
    priced_key = (key, chip, need_fwd, graphs)
    hit = _CACHE.get(priced_key)
    if hit is None:
        for cache in (_TRACES, _CACHE, _PRICES):
            if len(cache) > 256:
                cache.clear()
        runs = _TRACES.get(key)
        if runs is None:
            runs = _TRACES[key] = _traces(name, tp, mode, mb, seq, context, fused, dtype, kv_cache, fuse_projections)
        memo = _PRICES.setdefault(chip, {})
        hit = _CACHE[priced_key] = _differences(config(name), {k: _priced(r, chip, memo, need_fwd, graphs)
                                                                for k, r in runs.items()})
    return hit.copy()


def _traces(name, tp, mode, mb, seq, context, fused, dtype, kv_cache=None, fuse_projections=True):
    import transformers

    cfg = config(name)
    d = dense_layers(cfg)
    moe = cfg.num_hidden_layers - d
    start = {"dense": 1 if d else 0, "moe": 1 if moe else 0}
    variants = {"start": start}
    for kind in ("dense", "moe"):
        if start[kind]:
            variants[kind] = {**start, kind: start[kind] + 1}
    verbosity = transformers.logging.get_verbosity()
    with warnings.catch_warnings():  # HF's deprecation notices about its own cache API are not the user's
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        transformers.logging.set_verbosity_error()
        try:
            return {k: _run(name, n["dense"], n["moe"], tp, mode, mb, seq, context, fused, dtype, kv_cache,
                            fuse_projections) for k, n in variants.items()}
        finally:
            transformers.logging.set_verbosity(verbosity)


def _differences(cfg, runs):
    d = dense_layers(cfg)
    moe = cfg.num_hidden_layers - d
    start = {"dense": 1 if d else 0, "moe": 1 if moe else 0}
    out = LayerCosts({}, {}, {}, {}, {}, {}, {}, {})
    s = runs["start"]
    fields = ((out.fwd, 0), (out.total, 1), (out.saved, 3), (out.kv, 4), (out.params, 5), (out.expert_params, 6))
    for kind in ("dense", "moe"):
        r = runs.get(kind)
        for target, i in fields:
            target[kind] = (r[i] - s[i]) if r else 0
        for busy, i in ((out.busy, 2), (out.busy_fwd, 7)):
            busy[kind] = {k: r[i].get(k, 0.0) - s[i].get(k, 0.0) for k in r[i]} if r else {}
    for target, i in fields:
        target["base"] = s[i] - sum(target[k] * start[k] for k in ("dense", "moe"))
    for busy, i in ((out.busy, 2), (out.busy_fwd, 7)):
        busy["base"] = {k: v - sum(busy[kind].get(k, 0.0) * start[kind] for kind in ("dense", "moe"))
                        for k, v in s[i].items()}
    return out
