"""Costs of one micro-batch on one card, layer by layer: the model is built on the meta device with
per-card shapes, one, two or three decoder layers at a time, traced into the kernels the live device
would charge (trace.py) and replayed; the difference between traces with n and n+1 layers is one
layer's cost, so a model of any depth costs a few short traces."""

import warnings
from dataclasses import dataclass

import torch

from ..adapt import zoo
from . import trace
from .models import config, dense_layers, shard, variant


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


def _cache_bytes(cache):
    return sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values)
               if t is not None)


def _run(name, dense, moe, tp, chip, mode, mb, seq, context, fused, dtype, need_fwd):
    cfg = shard(variant(name, dense, moe), tp)
    cfg._attn_implementation = "sdpa"
    model = zoo.build_meta(cfg).to(dtype)
    model.train(mode == "train")
    ids = torch.zeros((mb, seq), dtype=torch.long, device="meta")
    kv_bytes = 0
    caches = []
    if mode == "train":
        def step():
            model(ids, labels=ids).loss.backward()
    elif mode == "prefill":
        def step():
            with torch.no_grad():
                caches.append(model(ids, use_cache=True, logits_to_keep=1).past_key_values)  # fills the KV cache
    else:
        with torch.no_grad():
            cache = model(torch.zeros((mb, context), dtype=torch.long, device="meta"), use_cache=True,
                          logits_to_keep=1).past_key_values
        kv_bytes = _cache_bytes(cache)
        ids = torch.zeros((mb, 1), dtype=torch.long, device="meta")

        def step():
            with torch.no_grad():
                model(ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
    result = trace.trace(step, chip, model, fused)
    if caches:
        kv_bytes = _cache_bytes(caches[0])
    elapsed, busy = trace.replay(result.ops, chip)
    fwd_ns = elapsed
    if mode == "train" and need_fwd:
        fwd_ns = trace.replay(trace.trace(lambda: model(ids, labels=ids).loss, chip, model, fused).ops, chip)[0]
    total, expert = _count(model)
    return fwd_ns, elapsed, busy, result.saved_bytes, kv_bytes, total, expert


_CACHE = {}


def layer_costs(name, tp, chip, mode, mb, seq, context=0, fused=True, dtype=torch.bfloat16, need_fwd=False):
    """Trace the variants (base + 1 layer of each kind, + one more of each) and take differences.
    Memoised per process on everything the traces depend on (a search re-uses them)."""
    key = (name, config(name).to_json_string(), tp, repr(chip.spec), chip.label(), mode, mb, seq, context, fused, dtype,
           need_fwd)
    hit = _CACHE.get(key)
    if hit is None:
        if len(_CACHE) > 256:
            _CACHE.clear()
        import transformers

        verbosity = transformers.logging.get_verbosity()
        with warnings.catch_warnings():  # HF's deprecation notices about its own cache API are not the user's
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            transformers.logging.set_verbosity_error()
            try:
                hit = _CACHE[key] = _layer_costs(name, tp, chip, mode, mb, seq, context, fused, dtype, need_fwd)
            finally:
                transformers.logging.set_verbosity(verbosity)
    return hit


def _layer_costs(name, tp, chip, mode, mb, seq, context, fused, dtype, need_fwd):
    cfg = config(name)
    d = dense_layers(cfg)
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
