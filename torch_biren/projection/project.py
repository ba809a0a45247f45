"""project(): one training step, prefill or decode step of a full-size model on a cluster of cards,
without allocating its memory.

    r = project("qwen2.5-72b", cards=64, mode="train", batch=512, seq=4096, tp=8, pp=4)
    print(r.report())

The parts, one file each: the model by name (models.py), the parallel plan (plan.py), one
micro-batch's cost per layer, traced onto the device model (layers.py, trace.py), the collectives
(communication.py), memory per card (memory.py), and the result with its report (report.py). Here:
the 1F1B pipeline schedule (the bubble (pp-1)/(micro-batches+pp-1), shrunk by the virtual stages
of the interleaved schedule), the training stack's effect on each micro-batch's time (stack.py),
which communication compute hides, the optimizer step, the checkpoint and the top ops. MoE routing
is assumed balanced.
"""

import torch

from ..sim import collectives, costs
from ..sim.dtypes import key as dtypes_key
from ..sim.chip import Chip, load_chip
from ..ops.attention import ATTENTION
from ..ops.rms_norm import RMS_NORM
from . import attention as attention_path
from . import communication, memory, recipe
from . import dropout as hidden_dropout
from . import stack as stacks
from . import moe as moe_model
from .layers import layer_costs
from .models import config, dense_layers, experts, model_flops, param_counts, resolve
from .plan import ProjectionError, plan
from .report import Result

MODES = ("train", "prefill", "decode")
KV_CACHES = ("static", "dynamic")  # as HF's cache_implementation names them
DEFAULT_STORAGE_GBPS = 10.0


RESIDUAL_ADD = "aten::add.Tensor"  # the residual adds, as the trace names them


def _positive(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ProjectionError(f"{name} must be a positive integer, got {v}")


def _optimizer_ns(params, chip, st, elt=2):
    """The optimizer step over `params` parameters as Megatron-Core's MixedPrecisionOptimizer.step runs it
    (stack.py), each pass one multi-tensor kernel: (flops, bytes) per parameter. An fp32 model (elt 4)
    has fp32 gradients and is its own master copy: neither copy runs."""
    mixed = elt == 2
    passes = [(0, st.grad_bytes + 4)] if mixed and st.grad_bytes != 4 else []  # model grads -> fp32 main grads
    if st.loss_scaling:
        passes.append((1, 8))  # unscale in place, check for inf/nan
    if st.grad_clip:
        passes.append((2, 4))  # the global L2 norm: read
    passes.append((12, 12 + 4 * st.moment_bytes))  # Adam: read w, g, m, v; write w, m, v
    if mixed:
        passes.append((0, 4 + 2))  # fp32 master weights -> the model's 16-bit weights
    return sum(costs.generic(f * params, b * params, chip).ns for f, b in passes)


def _capacity_basis(chip):
    """What the chip file's memory_bytes counts: a reported device total or the datasheet's capacity."""
    return "the device's reported total" if chip.q("memory_bytes").label == "R" else "the datasheet's capacity"


def _accumulate_ns(params, elt, grad_bytes, chip):
    # One pass over the gradients: read the fresh one (the model's dtype) and the accumulated one, write the sum.
    return costs.generic(params, params * (elt + 2 * grad_bytes), chip).ns


def _column_share(cfg):
    """The column-parallel linears' share of a dense layer's linear FLOPs (q, k, v and the MLP's input
    projections beside o and the MLP's output one): the weight-gradient (and input-gradient) GEMMs the
    backward tensor-parallel collectives run beside (stack.tp_backward_overlap)."""
    h, inner = cfg.hidden_size, cfg.intermediate_size
    heads = cfg.num_attention_heads
    kv = getattr(cfg, "num_key_value_heads", None) or heads
    hd = getattr(cfg, "head_dim", None) or h // heads
    column = h * hd * (heads + 2 * kv) + 2 * h * inner  # llama-written: gate and up (GPT's fc1 as SwiGLU)
    row = heads * hd * h + inner * h
    return column / (column + row)


def _checkpoint(name, storage_GBps):
    nbytes = param_counts(name)["total"] * 14  # bf16 weights + fp32 master, m, v
    gbps = storage_GBps or DEFAULT_STORAGE_GBPS
    return {"bytes": nbytes, "storage_GBps": gbps, "save_s": nbytes / (gbps * 1e9), "restore_s": nbytes / (gbps * 1e9)}


def project(model, cards=1, mode="train", batch=None, seq=None, chip="BR166", dp=None, tp=1, pp=1, ep=1, cp=1,
            micro_batch=None, context=None, network=None, cards_per_server=8, recompute=None, zero=None,
            fused=True, storage_GBps=None, memory_mode=None, dtype=None, virtual_stages=1, stack=None,
            sequence_parallel=None, overlap_grad_reduce=None, overlap_param_gather=None, tp_comm_overlap=None,
            tp_backward_overlap=None, grad_accumulation_fusion=None, grad_bytes=None, suggest=True, moe_options=None,
            ranges=False, recompute_modules=None, fp8_activations=None, moment_bytes=None, schedule=None,
            kv_cache=None, max_cache_len=None, graphs=None):
    """Project one training step / prefill / decode step of `model` on `cards` cards of `chip`.
    model: a catalogue name or an HF config.json (or its folder). batch: default one sequence per
    data-parallel replica (x 4 pp when pipelined); seq: default 2048 (or the model's context if
    shorter). The training stack (stack.py: Megatron-Core's defaults) from `stack` and/or the
    keyword options. virtual_stages > 1: the interleaved 1F1B schedule (Narayanan et al. 2021).
    moe_options: projection.moe.Options (or a dict of its fields) for MoE models: load imbalance,
    node-limited routing, overlap of dispatch/combine, bytes on the wire. ranges: also the low-high
    range of step time, tokens/s and MFU from the chip's inferred numbers (ranges.py; result.ranges).
    kv_cache (prefill, decode): "static" (default: a cache allocated at max_cache_len tokens, each step
    writing its new K/V in place, attention over the actual length, as serving engines run) or
    "dynamic" (HF's default DynamicCache in eager mode: the cache concatenated every step);
    max_cache_len: the static cache's allocated length (default the step's: context + 1, or seq).
    graphs (decode): the step replayed as one captured graph (CUDA Graphs / torch.biren.graph), as
    serving engines run decode: one graph launch and the device-side gap per kernel instead of the
    host's issue per kernel (trace.replay). Default on for decode with the static cache, which the
    graph needs (static shapes); off for training and prefill (serving engines run prefill eagerly)."""
    name = resolve(model)
    if mode not in MODES:
        raise ProjectionError(f"mode must be one of {', '.join(MODES)}, got '{mode}'")
    st = stacks.make(stack, recompute=recompute, zero=zero, sequence_parallel=sequence_parallel,
                     overlap_grad_reduce=overlap_grad_reduce, overlap_param_gather=overlap_param_gather,
                     tp_comm_overlap=tp_comm_overlap, tp_backward_overlap=tp_backward_overlap,
                     grad_accumulation_fusion=grad_accumulation_fusion, grad_bytes=grad_bytes,
                     recompute_modules=recompute_modules,
                     fp8_activations=fp8_activations, moment_bytes=moment_bytes, schedule=schedule)
    try:
        chip = chip if isinstance(chip, Chip) else load_chip(chip)
        if memory_mode:
            chip = chip.with_mode(memory_mode)
    except (ValueError, FileNotFoundError) as err:
        raise ProjectionError(str(err)) from None
    cfg = config(name)
    limit = getattr(cfg, "max_position_embeddings", None)
    if seq is None:
        seq = min(2048, limit or 2048)
    _positive("seq", seq)
    pl = plan(cfg, cards, batch, dp, tp, pp, ep, micro_batch, mode, cp, seq)
    batch = pl.micro_batch * pl.microbatches * pl.dp
    v = virtual_stages
    _positive("virtual_stages", v)
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
    kv_cache, max_cache_len = _cache_options(mode, kv_cache, max_cache_len, context + seq_in)
    graphs = _graph_option(mode, kv_cache, graphs)
    # Tiny zoo models run live in fp32; full-size ones are projected in bf16.
    dtype = dtype or (torch.float32 if name.startswith("tiny-") else torch.bfloat16)
    inputs = dict(name=name, cfg=cfg, pl=pl, mode=mode, batch=batch, seq=seq, seq_in=seq_in, seq_local=seq // cp,
                  context=context, dtype=dtype, v=v, cp=cp, fused=fused, cards_per_server=cards_per_server,
                  storage_GBps=storage_GBps, limit=limit, network=network,
                  moe_options=moe_model.options_from(moe_options), kv_cache=kv_cache, max_cache_len=max_cache_len,
                  graphs=graphs, fused_projections=st.fused_projections)
    ctx = _priced(inputs, chip)
    r = _assemble(ctx, st)
    if suggest and not r.fits:
        r.suggestions = _suggestions(ctx, st)
    if ranges:
        from .ranges import ranges as ranges_of

        r.ranges = ranges_of(chip, lambda c: _assemble(_priced(inputs, c), st))
    return r


def _priced(inputs, chip):
    """The chip-dependent parts of a projection: the cluster's topology and the traces priced on
    `chip` (re-priced, not re-traced, for another chip: layers.py)."""
    pl, mode = inputs["pl"], inputs["mode"]
    try:
        topo = collectives.topology(pl.cards, chip, inputs["cards_per_server"], inputs["network"])
    except ValueError as err:
        raise ProjectionError(str(err)) from None
    lc = layer_costs(inputs["name"], pl.tp, chip, mode, pl.micro_batch, inputs["seq_local"], inputs["context"],
                     inputs["fused"], inputs["dtype"], need_fwd=mode == "train", kv_cache=inputs["kv_cache"],
                     graphs=inputs["graphs"], fuse_projections=inputs["fused_projections"])
    kv_read = dict(lc.kv)  # the cache the step's attention reads: its actual length
    if inputs["max_cache_len"]:  # the static cache is allocated at max_cache_len (traced at the step's length)
        for kind in lc.kv:
            lc.kv[kind] = lc.kv[kind] * inputs["max_cache_len"] // (inputs["context"] + inputs["seq_in"])
    # MoE as it trains (moe.py): routed experts per expert at the busiest card's rows, hierarchical dispatch/combine.
    moe_cost = None
    if moe_model.applies(inputs["name"], inputs["cfg"], inputs["moe_options"]):
        lc, moe_cost = moe_model.adjust_layer_costs(lc, inputs["cfg"], pl, topo, chip, mode,
                                                pl.micro_batch * inputs["seq_in"] // inputs["cp"],
                                                inputs["cards_per_server"], inputs["dtype"], inputs["moe_options"])
        if inputs["graphs"] and moe_cost.compute_ns["routed experts"]:
            # moe.py prices the decode's two grouped GEMMs (gate/up, down) as eager kernels, each with its
            # launch; inside a replayed graph each pays the device-side gap instead (trace.replay)
            lc.total["moe"] -= 2 * (chip.launch_ns - chip.graph_kernel_gap_ns)
            lc.busy["moe"][moe_model.TRACED_EXPERTS] -= 2 * (chip.launch_ns - chip.graph_kernel_gap_ns)
    return dict(inputs, chip=chip, topo=topo, lc=lc, moe_cost=moe_cost, kv_read=kv_read)


def _cache_options(mode, kv_cache, max_cache_len, length):
    """(kv_cache, max_cache_len) checked: inference defaults to the static cache at the step's length."""
    if mode == "train":
        if kv_cache is not None or max_cache_len is not None:
            raise ProjectionError("kv_cache and max_cache_len apply to prefill and decode, not to training")
        return None, None
    kv_cache = "static" if kv_cache is None else kv_cache
    if kv_cache not in KV_CACHES:
        raise ProjectionError(f"kv_cache must be one of {', '.join(KV_CACHES)}, got '{kv_cache}'")
    if kv_cache == "dynamic":
        if max_cache_len is not None:
            raise ProjectionError("max_cache_len sizes the static cache; the dynamic cache grows with the context")
        return kv_cache, None
    max_cache_len = length if max_cache_len is None else max_cache_len
    _positive("max_cache_len", max_cache_len)
    if max_cache_len < length:
        raise ProjectionError(f"max_cache_len={max_cache_len} cannot hold the step's {length} tokens"
                              f"{' (context + 1)' if mode == 'decode' else ''}")
    return kv_cache, max_cache_len


def _graph_option(mode, kv_cache, graphs):
    """graphs checked: default on for a decode step with the static cache, else off."""
    if graphs is None:
        return mode == "decode" and kv_cache == "static"
    if not isinstance(graphs, bool):
        raise ProjectionError(f"graphs must be True or False, got {graphs!r}")
    if graphs and mode != "decode":
        raise ProjectionError(f"graphs replay decode steps; a {mode} step runs eagerly (serving engines capture "
                              "decode, not prefill or training)")
    if graphs and kv_cache == "dynamic":
        raise ProjectionError("graphs need static shapes: the dynamic KV cache grows every step, so a captured "
                              "decode step cannot replay; use the static cache (kv_cache='static', --kv-cache "
                              "static) or graphs=False (--no-graphs)")
    return graphs


def _layers_op(busy, op, dense, moe):
    """One op's time over the model's layers (not the embedding and head) in a layer_costs busy dict."""
    return busy["dense"].get(op, 0.0) * dense + busy["moe"].get(op, 0.0) * moe


def _per_stage(d, dense, moe, share):
    return d["base"] + (d["dense"] * dense + d["moe"] * moe) * share


def _stage_ops(lc, dense, moe, share):
    ops = {}
    for kind, count in (("base", 1), ("dense", dense * share), ("moe", moe * share)):
        for op, ns in lc.busy[kind].items():
            ops[op] = ops.get(op, 0.0) + ns * count
    return ops


def _assemble(ctx, st):
    """Time and memory of the step under the training stack `st` (the traces are in ctx)."""
    cfg, chip, topo, pl, mode, lc = ctx["cfg"], ctx["chip"], ctx["topo"], ctx["pl"], ctx["mode"], ctx["lc"]
    tp, pp, cp, v = pl.tp, pl.pp, ctx["cp"], ctx["v"]
    train = mode == "train"
    dense, moe = dense_layers(cfg), cfg.num_hidden_layers - dense_layers(cfg)
    # The busiest pipeline stage holds ceil(layers / pp) layers (uneven stages when pp does not divide).
    layers_stage = -(-cfg.num_hidden_layers // pp)
    share = layers_stage / cfg.num_hidden_layers  # of each kind of layer, on that stage
    ops = _stage_ops(lc, dense, moe, share)  # one micro-batch through the stage, fwd + bwd (train)
    t_mb = _per_stage(lc.total, dense, moe, share)
    f_mb = _per_stage(lc.fwd, dense, moe, share) if train else t_mb
    attn_f, attn_b = ops.get(ATTENTION.name, 0.0), ops.get(ATTENTION.backward_name, 0.0)
    norm_f, norm_b = ops.get(RMS_NORM.name, 0.0), ops.get(RMS_NORM.backward_name, 0.0)
    if cp > 1:  # each card's queries meet the whole sequence's keys: cp x the traced (seq / cp) attention
        t_mb += (cp - 1) * (attn_f + attn_b)
        f_mb += (cp - 1) * attn_f
    if st.sequence_parallel and tp > 1:
        # Korthikanti et al.'s sequence-parallel region runs on seq / tp tokens: the norms and, once q, k,
        # v and gate, up are fused (a layer's only adds then: the residual adds and, in backward, the sums
        # of the residual stream's gradients), the adds; separate projections' input-gradient sums are
        # the same size and in the tensor-parallel region, so those layers' adds stay whole
        split = {RMS_NORM.name: (norm_f, norm_f), RMS_NORM.backward_name: (norm_b, 0.0)}
        if st.fused_projections:
            split[RESIDUAL_ADD] = (_layers_op(lc.busy, RESIDUAL_ADD, dense, moe) * share,
                                   _layers_op(lc.busy_fwd, RESIDUAL_ADD, dense, moe) * share)
        for op, (ns, fwd_ns) in split.items():
            t_mb -= (1 - 1 / tp) * ns
            f_mb -= (1 - 1 / tp) * fwd_ns
            if op in ops:
                ops[op] -= (1 - 1 / tp) * ns
    if st.attention == "materialised":  # attention.py: the score matrix written out, not the traced flash kernel
        if cp > 1:
            raise ProjectionError("attention='materialised' with cp > 1: ring attention needs the flash kernel")
        lk = ctx["context"] + ctx["seq_in"] if mode == "decode" else ctx["seq_local"]
        attn_f, attn_b, d_total, d_fwd = attention_path.swap(
            ops, layers_stage, pl.micro_batch, max(1, cfg.num_attention_heads // tp), ctx["seq_in"], lk,
            getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads, ctx["dtype"],
            st.attention_dropout, chip, train)
        t_mb, f_mb = t_mb + d_total, f_mb + d_fwd
    if train and st.hidden_dropout:  # dropout.py: the residual adds' masks and their backward kernels
        n = hidden_dropout.elements(pl.micro_batch * ctx["seq_in"] // cp * cfg.hidden_size, tp, st.sequence_parallel)
        drop_f, drop_b = hidden_dropout.layer_ns(n, ctx["dtype"], chip)
        ops["hidden dropout (masks beside the residual adds)"] = drop_f * layers_stage
        ops["hidden dropout backward"] = drop_b * layers_stage
        t_mb, f_mb = t_mb + (drop_f + drop_b) * layers_stage, f_mb + drop_f * layers_stage
    recompute_ns = 0.0
    if train and st.recompute == "full":
        recompute_ns = f_mb - lc.fwd["base"]
    elif train and st.recompute == "selective":
        recompute_ns = attn_f * cp
    freed = None
    if train and st.fp8_activations and ctx["dtype"].itemsize != 2:
        raise ProjectionError(f"fp8_activations caches a bf16 model's activations in FP8; this one runs in "
                              f"{ctx['dtype']}")
    if train and st.recompute != "full" and (st.recompute_modules or st.fp8_activations):  # recipe.py
        shapes = recipe.shapes(cfg, tp, st.sequence_parallel)
        tokens_mb = pl.micro_batch * ctx["seq_in"] // cp
        sp = 1 / tp if st.sequence_parallel else 1.0
        norms = {kind: lc.busy[kind].get(RMS_NORM.name, 0.0) * sp for kind in ("dense", "moe")}
        again = recipe.backward_ns(shapes, st, tokens_mb, dtypes_key(ctx["dtype"]), ctx["dtype"].itemsize, chip, norms)
        recompute_ns += (again["dense"] * dense + again["moe"] * moe) * share
        freed = recipe.freed(shapes, st, tokens_mb, ctx["dtype"].itemsize)
    t_mb += recompute_ns
    elt = ctx["dtype"].itemsize
    act = pl.micro_batch * ctx["seq_in"] // cp * cfg.hidden_size * elt  # one micro-batch's hidden states
    m = pl.microbatches if train else 1
    # 1F1B: m + (pp - 1) / v micro-batch slots on the critical path (v = 1: the plain schedule)
    slots = m + (pp - 1) / v if train else pp
    if train and st.schedule == "dualpipe":
        slots = m + _dualpipe_bubble(t_mb, f_mb, ops, pp, v) / t_mb
    base_share = 1.0 if pp == 1 else 0.5  # embedding on the first stage, head on the last
    params_card = lc.params["base"] * base_share + (lc.params["dense"] * dense + lc.params["moe"] * moe) * share
    experts_card = (lc.expert_params["dense"] * dense + lc.expert_params["moe"] * moe) * share
    params_card = params_card - experts_card + experts_card / pl.ep
    layer_params = (params_card - lc.params["base"] * base_share) / max(1, layers_stage)
    e, k = experts(cfg)
    heads_card = max(1, cfg.num_attention_heads // tp)
    kv_heads = max(1, getattr(cfg, "num_key_value_heads", cfg.num_attention_heads) // tp)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    kv_chunk = 2 * pl.micro_batch * ctx["seq_local"] * kv_heads * head_dim * elt
    copies = 2 if train and st.schedule == "dualpipe" else 1  # DualPipe: both stages' gradients and parameters
    accumulate_ns = 0.0
    if train and not st.grad_accumulation_fusion and m > 1:
        # micro-batches after the first add their gradients into the accumulated ones (stack.py)
        summed = params_card * copies / (pl.dp if st.zero == 3 else 1)
        accumulate_ns = _accumulate_ns(summed, elt, st.grad_bytes, chip) * (m - 1) / m  # per micro-batch
        t_mb += accumulate_ns
    comm = communication.per_step(pl, topo, mode, st, cp, act, slots, layers_stage, moe * share, k,
                                  params_card * copies, kv_chunk, ctx["cards_per_server"], v, graphs=ctx["graphs"],
                                  expert_params_card=experts_card / pl.ep * copies)
    _overlap(comm, st, train, slots, t_mb, f_mb, ops, attn_f + attn_b, cp, params_card * copies, pl, layers_stage,
             _column_share(cfg), chip.comm_units_share)
    if ctx["moe_cost"]:  # dispatch/combine as moe.py prices and overlaps them
        moe_model.price_all_to_all(comm, ctx["moe_cost"], slots * moe * share)
    # The parameters whose optimizer states the card holds (memory.py: routed experts over Plan.expert_dp), each copy.
    updated = memory.sharded_params(lc, pl, st, 1, params_card, dense, moe, layers_stage)
    optimizer_ns = _optimizer_ns(updated * copies, chip, st, elt) if train else 0.0
    compute = t_mb * slots if train else t_mb * pp
    bubble = t_mb * (slots - m) if train else 0.0
    exposed = sum(c.exposed_ns for c in comm)
    step = compute + exposed + optimizer_ns
    tokens = ctx["batch"] * (ctx["seq"] if mode != "decode" else 1)
    flops = model_flops(ctx["name"], ctx["batch"], ctx["seq"] if mode != "decode" else 1, mode, ctx["context"])
    peak = chip.matrix_flops("bf16")
    working = _working_set(cfg, pl, ctx["seq_in"] // cp, tp, elt, moe > 0) if not train else 0
    mem = memory.per_card(lc, mode, pl, st, params_card, layer_params, elt, dense, moe, layers_stage, act,
                          heads_card, ctx["seq_local"], v, working, freed)
    scale = slots if train else pp
    top_ops = {op: ns * scale for op, ns in ops.items()}
    if accumulate_ns:
        top_ops["(gradient accumulation: unfused adds)"] = accumulate_ns * slots
    if recompute_ns:
        recipe_only = st.recompute == "none" and not st.recompute_modules  # FP8 casts alone
        top_ops["(FP8 activation casts)" if recipe_only else "(recomputed forward)"] = recompute_ns * slots
    for c in comm:
        top_ops[f"({c.name})"] = top_ops.get(f"({c.name})", 0.0) + c.ns
    if optimizer_ns:
        top_ops["(optimizer step)"] = optimizer_ns
    top = sorted(((n, ns) for n, ns in top_ops.items() if ns > 0), key=lambda x: -x[1])
    cards = pl.cards
    assumptions = list(topo.assumptions) if cards > 1 else []
    if ctx["moe_cost"]:
        assumptions += ctx["moe_cost"].assumptions
    elif e:
        assumptions.append("MoE routing is balanced (every expert gets tokens x k / E rows); set by the projection")
    assumptions.append(("kernels as torch_biren runs them (fused RMSNorm/SwiGLU/RoPE/attention, HF's module code)"
                        if ctx["fused"] else "HF's module code without the fused kernels (torch_biren.ops.patch_model)")
                       + ("; q, k, v and gate, up as one GEMM each (Megatron's linear_qkv, linear_fc1)"
                          if st.fused_projections else ""))
    if train:
        moments = "bf16" if st.moment_bytes == 2 else "fp32"
        assumptions.append(f"bf16 weights, fp32 master weights, AdamW moments {moments}; overlapped collectives "
                           f"occupy {chip.comm_units_share:.0%} of the compute units while they run, slowing the "
                           "compute they hide behind (chip comm_units_share: a parameter)")
        if st.schedule == "dualpipe":
            assumptions.append("DualPipe: each card keeps both its stages' weights, gradients and optimizer states; "
                               "the weight gradients (W in its bubble) taken as half of the backward GEMMs")
        if st.fp8_activations and st.recompute != "full":
            assumptions.append("FP8 activation caching for memory (and its casts) only: the GEMMs are priced in BF16")
    assumptions.append("MFU counts model FLOPs with causal attention (the unmasked half, as the kernels are charged)")
    assumptions.append(f"memory per card against the chip's {chip.memory_bytes / 2**30:,.1f} GiB "
                       f"({_capacity_basis(chip)}); not counted: the driver's context (CUDA 11.7+ with lazy "
                       "loading: about 0.4 GB, pytorch#109888), communicator buffers, allocator fragmentation: a "
                       "fit with little to spare may not run")
    if ctx["kv_cache"]:
        assumptions.append(_cache_assumption(ctx))
    if mode == "decode":
        assumptions.append(_graph_assumption(ctx))
    inferred = chip.inferred()
    if inferred:
        assumptions.append(f"{chip.name} numbers labelled inferred: {', '.join(inferred)}")
    ckpt = _checkpoint(ctx["name"], ctx["storage_GBps"]) if train else {}
    if ckpt and ctx["storage_GBps"] is None:
        assumptions.append(f"checkpoint storage {ckpt['storage_GBps']:g} GB/s aggregate (parameter --storage-GBps; "
                           "no public figure for Biren clusters)")
    warnings = []
    limit = ctx["limit"]
    length = ctx["context"] + 1 if mode == "decode" else ctx["seq"]
    if limit and length > limit:
        warnings.append(f"sequence {length:,} exceeds {cfg.model_type}'s context length {limit:,} "
                        "(max_position_embeddings)")
    if pl.batch_defaulted:
        warnings.append(f"global batch defaulted to {ctx['batch']} (set --batch)")
    kv_read = (ctx["kv_read"]["dense"] * dense + ctx["kv_read"]["moe"] * moe) * layers_stage / max(1, dense + moe)
    bandwidth = (mem["weights"] + int(kv_read)) / (step * 1e-9) if mode == "decode" else 0.0
    return Result(ctx["name"], mode, chip, topo, pl, ctx["batch"], ctx["seq"], ctx["context"], step,
                  tokens / step * 1e9, flops / (cards * peak * step * 1e-9), flops, mem, chip.memory_bytes,
                  {c.name: c.ns for c in comm}, compute - bubble, bubble, optimizer_ns, top, ckpt, assumptions,
                  st.recompute == "full" and train, v, stack=st, collectives=comm, cp=cp, warnings=warnings,
                  decode_Bps=bandwidth, recompute_ns=recompute_ns * slots if train else 0.0, moe=ctx["moe_cost"])


def _dualpipe_bubble(t_mb, f_mb, ops, pp, v):
    """DualPipe's bubble (DeepSeek-V3 Table 2): (pp/2 - 1)(F&B + B - 3W), F&B (an overlapped forward and
    backward chunk) = F + B, W the weight gradients, taken as half of the backward GEMMs (a third of
    all GEMM time: the forward GEMMs are the other third)."""
    if pp % 2 or v != 1:
        raise ProjectionError(f"schedule 'dualpipe' needs an even pp and virtual_stages 1, got pp={pp}, "
                              f"virtual_stages={v}")
    w = sum(ns for op, ns in ops.items() if op in _GEMMS) / 3
    b = t_mb - f_mb
    return max(0.0, (pp / 2 - 1) * (t_mb + b - 3 * w))


_GEMMS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::_grouped_mm")


def _cache_assumption(ctx):
    if ctx["kv_cache"] == "dynamic":
        return ("KV cache dynamic (HF's DynamicCache, eager): each step concatenates the new K/V onto a copy of "
                "the whole cache (aten::cat); serving engines write in place (--kv-cache static)")
    return (f"KV cache static (the default, as serving engines run: TensorRT-LLM, vLLM, HF's StaticCache): "
            f"allocated at {ctx['max_cache_len']:,} tokens (--max-cache-len), each step writes its new K/V in "
            "place (index_copy_) and attention reads the actual length (HF's StaticCache attends over "
            "max_cache_len under a mask); HF's per-layer position and mask kernels run as live; "
            "--kv-cache dynamic for HF's default DynamicCache")


def _graph_assumption(ctx):
    chip = ctx["chip"]
    if ctx["graphs"]:
        return (f"decode step replayed as one graph (the default with the static cache, as vLLM, TensorRT-LLM and "
                f"SGLang run decode: CUDA Graphs): one graph launch ({chip.graph_launch_ns / 1e3:g} us) and "
                f"{chip.graph_kernel_gap_ns / 1e3:g} us device-side gap per kernel instead of "
                f"{chip.host_issue_ns / 1e3:g} us host issue per kernel; --no-graphs for eager issue")
    return (f"decode step issued eagerly: {chip.host_issue_ns / 1e3:g} us host issue per kernel"
            + ("" if ctx["kv_cache"] == "dynamic" else " (--graphs: replayed as one graph, as serving engines run)"))


def _overlap(comm, st, train, slots, t_mb, f_mb, ops, attention_ns, cp, params_card, pl, layers_stage, column,
             share=0.0):
    """Set each collective's exposed time: what compute hides of it under the stack's overlap options.
    column: the column-parallel linears' share of the linear GEMMs (_column_share). share: the compute
    units a collective occupies while it overlaps (chip.comm_units_share): the compute under it runs
    at 1 - share, so it hides at most budget / (1 - share) of the collective, and each hidden ns
    still costs the step share ns (the compute it slowed), as moe.py prices DualPipe's all-to-alls."""
    b_mb = t_mb - f_mb
    gemm = sum(ns for op, ns in ops.items() if op in _GEMMS)
    # Backward TP collectives beside the column-parallel linears' weight- / input-gradient GEMMs: each
    # about a third of those linears' forward + backward GEMM time, per micro-batch pass.
    beside = column * gemm / 3 * slots
    bucket = stacks.BUCKET_PARAMS if pl.dp < 40 else stacks.BUCKET_PARAMS_PER_DP * pl.dp
    tail = min(1.0, bucket / max(1.0, params_card))  # the last bucket waits for the end of backward
    budget = {"gemm": gemm * slots, "attention": attention_ns * cp * slots, "bwd": b_mb, "fwd": f_mb,
              "layers": t_mb * slots, "wgrad": beside, "dgrad": beside}
    for c in comm:
        key, hideable = None, c.ns
        if c.name.startswith("tensor-parallel") and st.tp_comm_overlap:
            key = "gemm"
        elif c.name.endswith(communication.BESIDE_WGRAD):
            key = "wgrad"
        elif c.name == communication.TP_BESIDE_DGRAD:
            key = "dgrad"
        elif c.name.startswith("context-parallel"):  # ring attention overlaps its sends with the blocks
            key = "attention"
        elif c.name.startswith("FSDP parameter all-gather") and st.overlap_param_gather:
            key, hideable = "layers", c.ns * (1 - 1 / layers_stage)
        elif c.name.startswith("FSDP gradient reduce-scatter") and st.overlap_grad_reduce:
            key, hideable = "layers", c.ns * (1 - 1 / layers_stage)
        elif c.name.startswith("data-parallel gradient") and st.overlap_grad_reduce and train:
            key, hideable = "bwd", c.ns * (1 - tail)
        elif c.name.startswith("data-parallel parameter all-gather") and st.overlap_param_gather and train:
            key, hideable = "fwd", c.ns * (1 - tail)
        hide = min(hideable, budget[key] / (1 - share)) if key else 0.0
        if key:
            budget[key] -= hide * (1 - share)
        c.exposed_ns = c.ns - hide * (1 - share)


def _working_set(cfg, pl, seq, tp, elt, is_moe):
    """Inference: one layer's transient tensors (residual and normed hidden states, the MLP's gate,
    up and product), the largest the forward holds at once besides the KV cache."""
    h = cfg.hidden_size
    if is_moe:  # each token's k routed experts and the shared ones (DeepSeek's n_shared_experts, Qwen2-MoE's one)
        m = moe_model.MoE.from_config(cfg)
        inner = m.expert_inter * m.top_k + m.shared_experts * m.shared_inter
    else:
        inner = cfg.intermediate_size
    return pl.micro_batch * seq * (3 * h + 3 * -(-inner // tp)) * elt


# What makes a non-fitting configuration fit, tried in this order, each alone then cumulatively.
_FIXES = (("sequence_parallel", True, "--sequence-parallel"), ("recompute", "selective", "--recompute selective"),
          ("zero", 1, "--zero 1 (distributed optimizer)"), ("recompute", "full", "--recompute full"),
          ("zero", 2, "--zero 2"), ("zero", 3, "--zero 3 (FSDP)"))


def _suggestions(ctx, st):
    """Options that would make the step fit, with the memory they leave; memory only, from the same traces."""
    out = []
    if ctx["mode"] != "train":  # a smaller batch shrinks the KV cache and activations, not the weights
        weights = _assemble(ctx, st).memory["weights"]
        return [_cards_needed(ctx, st) if weights >= ctx["chip"].memory_bytes else
                f"a smaller batch, or {_cards_needed(ctx, st)}"]
    cap = ctx["chip"].memory_bytes
    tp = ctx["pl"].tp
    cur = st
    for field, value, flag in _FIXES:
        if field == "sequence_parallel" and tp == 1:
            continue
        if getattr(cur, field) == value or (field == "zero" and cur.zero >= value):
            continue
        if field == "recompute" and stacks.RECOMPUTE.index(cur.recompute) >= stacks.RECOMPUTE.index(value):
            continue
        alone = _assemble(ctx, st.with_(**{field: value}))
        cur = cur.with_(**{field: value})
        both = _assemble(ctx, cur)
        if alone.fits:
            out.append(f"{flag}: {sum(alone.memory.values()) / 2**30:,.1f} GiB")
            return out
        if both.fits:
            out.append(f"{cur.describe(tp, 'train')}: {sum(both.memory.values()) / 2**30:,.1f} GiB")
            return out
    if ctx["pl"].micro_batch > 1:
        out.append("a smaller --micro-batch")
    out.append(_cards_needed(ctx, st))
    return out


def _cards_needed(ctx, st):
    """More cards, with the fewest that could hold the model states (train: weights, gradients and
    optimizer states; inference: weights) fully sharded, before activations and KV cache."""
    elt = ctx["dtype"].itemsize
    per_param = elt + ((st.grad_bytes if elt == 2 else elt) + (st.optimizer_bytes if elt == 2 else 2 * st.moment_bytes)
                       if ctx["mode"] == "train" else 0)
    states = param_counts(ctx["name"])["total"] * per_param
    cap = ctx["chip"].memory_bytes
    least = -(-states // cap)
    what = "weights, gradients and optimizer states" if ctx["mode"] == "train" else "weights"
    sharded = "tp x pp, or --zero 3 over dp" if ctx["mode"] == "train" else "tp x pp"
    if experts(ctx["cfg"])[0]:
        sharded += "; the experts over --ep"
    more = f"more cards in tensor or pipeline parallel (--tp/--pp{'/--ep' if experts(ctx['cfg'])[0] else ''}; " \
           "--auto searches them)"
    if least <= ctx["pl"].cards:  # the states would fit these cards sharded: the plan, not the count, is short
        return more
    return (f"{more}: the {what} alone are {states / 2**30:,.1f} GiB, at least {least:,} cards of "
            f"{cap / 2**30:,.1f} GiB even fully sharded ({sharded}), before activations")
