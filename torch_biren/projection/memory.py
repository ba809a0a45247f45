"""Memory per card of a projected step (the busiest pipeline stage), under the training stack:

- weights (bf16 2 B/param), gradients (stack.grad_bytes), fp32 master weights + Adam moments
  (12 B/param), sharded over dp by ZeRO-1 (optimizer), -2 (+ gradients), -3/FSDP (+ weights, which
  then need the gathered weights of the layer running and the one prefetched); routed experts' states
  over their expert-data-parallel group, dp x tp / ep cards (Plan.expert_dp); AdamW's moments in
  bf16 (stack.moment_bytes 2): 8 B/param of optimizer states; DualPipe: two stages per card, twice
  all three;
- activations saved for backward, per layer as the trace measured them (HF's module code with the
  fused kernels), for the micro-batches in flight on the first stage (1F1B: pp; interleaved:
  pp + (pp - 1) / v, Megatron-Core's warm-up count; DualPipe: pp + 1, the report's Table 2),
  less what recompute_modules and FP8 caching free (recipe.py), adjusted per Korthikanti et al. 2022:
  sequence parallelism splits the norms' inputs and outputs (4 hidden-size tensors) over tp,
  selective recomputation frees the attention kernel's logsumexp statistics (the flash kernel keeps
  no softmax; materialised attention's score-sized tensors, attention.py, are kept otherwise), full
  recomputation keeps each layer's input (1/tp of it, distributed saved activations) and one
  layer's working set;
- inference: the KV cache (prefill: of the prompt; decode: of the context) and one layer's
  working set (hidden states and the MLP's intermediate)."""

from . import attention, dropout

GiB = 2**30


def per_card(lc, mode, pl, stack, params_card, layer_params, elt, dense, moe, layers_stage, act, heads_card,
             seq_local, virtual_stages, working_set, freed=None):
    """{what: bytes}. lc: the LayerCosts; params_card: parameters of the busiest stage on one card;
    layer_params: one layer's parameters on one card; act: one micro-batch's hidden states (bytes);
    freed: {"dense"|"moe": bytes} one layer's recipe no longer saves (recipe.freed)."""
    memory = {}
    dp = pl.dp
    if mode != "train":
        memory["weights"] = params_card * elt
        kv = (lc.kv["dense"] * dense + lc.kv["moe"] * moe) * layers_stage / max(1, dense + moe)
        memory["KV cache"] = kv
        memory["activations"] = working_set + max(0.0, lc.saved["base"])
        return {k: int(v) for k, v in memory.items()}
    copies = 2 if stack.schedule == "dualpipe" else 1  # DualPipe: stages i and pp-1-i on each card
    memory["weights"] = copies * sharded_params(lc, pl, stack, 3, params_card, dense, moe, layers_stage) * elt + \
        (2 * layer_params * elt if stack.zero >= 3 and dp > 1 else 0)
    memory["gradients"] = copies * sharded_params(lc, pl, stack, 2, params_card, dense, moe, layers_stage) * \
        (stack.grad_bytes if elt == 2 else elt)
    memory["optimizer states"] = copies * sharded_params(lc, pl, stack, 1, params_card, dense, moe, layers_stage) * \
        (stack.optimizer_bytes if elt == 2 else 2 * stack.moment_bytes)
    memory["activations"] = activations(lc, pl, stack, dense, moe, layers_stage, act, heads_card, seq_local,
                                        virtual_stages, elt, freed)
    return {k: int(v) for k, v in memory.items()}


def sharded_params(lc, pl, stack, stage, params_card, dense, moe, layers_stage):
    """Parameters of one card's (one copy of its) stage whose state ZeRO-`stage` keeps on the card
    (stage 1: the optimizer states, which the optimizer step updates; 2: gradients; 3: weights).
    ZeRO shards a parameter over the cards that hold a replica of it: dp for the dense ones, the
    expert-data-parallel group (Plan.expert_dp of them) for routed experts, which ep already spreads."""
    if stack.zero < stage:
        return params_card
    experts = (lc.expert_params["dense"] * dense + lc.expert_params["moe"] * moe) * layers_stage / max(1, dense + moe)
    experts /= pl.ep
    return (params_card - experts) / pl.dp + experts / pl.expert_dp


def in_flight(pp, microbatches, virtual_stages, schedule="1f1b"):
    """Micro-batches whose activations the first stage holds at once (Megatron-Core's warm-up + 1;
    DualPipe: pp + 1, DeepSeek-V3's Table 2)."""
    v = virtual_stages
    if schedule == "dualpipe":
        n = pp + 1
    else:
        n = pp if v == 1 else pp + (pp - 1) / v
    return min(n, microbatches)


def per_layer(lc, pl, stack, dense, moe, act, heads_card, seq_local, elt=2, freed=None):
    """Activation bytes one layer saves for one micro-batch, under sequence parallelism and
    selective recomputation (before full recomputation), less what the recipe frees (`freed`).
    Materialised attention (attention.py) keeps its score-sized tensors unless selective
    recomputation frees them."""
    saved = (lc.saved["dense"] * dense + lc.saved["moe"] * moe) / max(1, dense + moe)
    if freed:
        saved -= (freed["dense"] * dense + freed["moe"] * moe) / max(1, dense + moe)
    if stack.sequence_parallel and pl.tp > 1:
        saved -= 4 * act * (1 - 1 / pl.tp)
    if stack.recompute == "selective":
        saved -= 4 * pl.micro_batch * heads_card * seq_local  # fp32 logsumexp per query row and head
    elif stack.attention == "materialised":
        saved += attention.saved_bytes(pl.micro_batch, heads_card, seq_local, seq_local, elt, stack.attention_dropout)
    if stack.hidden_dropout:
        saved += dropout.saved_bytes(dropout.elements(act // elt, pl.tp, stack.sequence_parallel))
    return max(0.0, saved)


def activations(lc, pl, stack, dense, moe, layers_stage, act, heads_card, seq_local, virtual_stages, elt=2,
                freed=None):
    layer = per_layer(lc, pl, stack, dense, moe, act, heads_card, seq_local, elt, freed)
    n = in_flight(pl.pp, pl.microbatches, virtual_stages, stack.schedule)
    if stack.recompute == "full":
        split = (stack.sequence_parallel and pl.tp > 1) or stack.distributes(pl.tp)
        kept = act / pl.tp if split else act
        acts = n * layers_stage * kept + layer
    else:
        acts = n * layers_stage * layer
    return acts + max(0.0, lc.saved["base"])
