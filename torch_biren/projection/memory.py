"""Memory per card of a projected step (the busiest pipeline stage): weights, gradients and optimizer
states (sharded over dp with ZeRO-1), activations saved for backward (all in-flight micro-batches,
or only layer inputs under full recomputation), the KV cache when decoding."""


def per_card(lc, mode, pl, params_card, elt, dense, moe, layers_stage, share, act, recompute, zero):
    """{what: bytes}. lc: the LayerCosts; act: one micro-batch's hidden states (bytes)."""
    memory = {"weights": params_card * elt}
    if mode == "train":
        m = pl.microbatches
        memory["gradients"] = params_card * elt
        memory["optimizer states"] = params_card * (12 if elt == 2 else 8) / (pl.dp if zero >= 1 else 1)
        inflight = min(pl.pp, m)
        per_layer = (lc.saved["dense"] * dense + lc.saved["moe"] * moe) / max(1, dense + moe)
        if recompute:
            acts = inflight * layers_stage * act + per_layer
        else:
            acts = inflight * layers_stage * per_layer
        memory["activations"] = acts + max(0.0, lc.saved["base"])
    else:
        memory["KV cache"] = (lc.kv["dense"] * dense + lc.kv["moe"] * moe) * share if mode == "decode" else 0.0
        memory["activations"] = max(0.0, lc.saved["base"])
    return {k: int(v) for k, v in memory.items()}
