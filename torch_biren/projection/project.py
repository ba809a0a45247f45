"""project(): one training step, prefill or decode step of a full-size model on a cluster of cards,
without allocating its memory.

    r = project("qwen2.5-72b", cards=64, mode="train", batch=512, seq=4096, tp=8, pp=4)
    print(r.report())

The parts, one file each: the model by name (models.py), the parallel plan (plan.py), one
micro-batch's cost per layer, traced onto the device model (layers.py, trace.py), the collectives
(communication.py), memory per card (memory.py), and the result with its report (report.py). Here:
the 1F1B pipeline schedule (the bubble (pp-1)/(micro-batches+pp-1), shrunk by the virtual stages
of the interleaved schedule), the optimizer step, the checkpoint and the top ops. MoE routing is
assumed balanced.
"""

import torch

from ..adapt import flops as fl
from ..sim import collectives, costs
from ..sim.chip import Chip, load_chip
from . import communication, memory
from . import moe as moe_model
from .layers import layer_costs
from .models import config, dense_layers, experts, model_flops, resolve
from .plan import ProjectionError, plan
from .report import Result

MODES = ("train", "prefill", "decode")
DEFAULT_STORAGE_GBPS = 10.0


def _positive(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ProjectionError(f"{name} must be a positive integer, got {v}")


def _optimizer_ns(params, chip):
    # AdamW on fp32 master weights, one fused multi-tensor kernel: read w, g, m, v; write w, m, v, bf16 w.
    return costs.generic(12 * params, params * (4 * 3 + 2 + 4 * 3 + 2), chip).ns


def _checkpoint(cfg, storage_GBps):
    nbytes = fl.param_counts(cfg)["total"] * 14  # bf16 weights + fp32 master, m, v
    gbps = storage_GBps or DEFAULT_STORAGE_GBPS
    return {"bytes": nbytes, "storage_GBps": gbps, "save_s": nbytes / (gbps * 1e9), "restore_s": nbytes / (gbps * 1e9)}


def project(model, cards=1, mode="train", batch=1, seq=2048, chip="BR166", dp=None, tp=1, pp=1, ep=1,
            micro_batch=None, context=None, network=None, cards_per_server=8, recompute=False, zero=1,
            fused=True, storage_GBps=None, memory_mode=None, dtype=None, virtual_stages=1, moe_options=None):
    """Project one training step / prefill / decode step of `model` on `cards` cards of `chip`.
    virtual_stages > 1: the interleaved 1F1B schedule (Narayanan et al. 2021), each card holding that
    many non-adjacent chunks of layers: the bubble shrinks by that factor, pipeline sends grow by it.
    moe_options: projection.moe.Options (or a dict of its fields) for MoE models: load imbalance,
    node-limited routing, overlap of dispatch/combine, bytes on the wire."""
    name = resolve(model)
    if mode not in MODES:
        raise ProjectionError(f"mode must be one of {', '.join(MODES)}, got '{mode}'")
    _positive("seq", seq)
    try:
        chip = chip if isinstance(chip, Chip) else load_chip(chip)
        if memory_mode:
            chip = chip.with_mode(memory_mode)
    except (ValueError, FileNotFoundError) as err:
        raise ProjectionError(str(err)) from None
    cfg = config(name)
    pl = plan(cfg, cards, batch, dp, tp, pp, ep, micro_batch, mode)
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
    try:
        topo = collectives.topology(cards, chip, cards_per_server, network)
    except ValueError as err:
        raise ProjectionError(str(err)) from None
    # Tiny zoo models run live in fp32; full-size ones are projected in bf16.
    dtype = dtype or (torch.float32 if name.startswith("tiny-") else torch.bfloat16)
    lc = layer_costs(name, tp, chip, mode, pl.micro_batch, seq, context, fused, dtype, need_fwd=recompute)
    # MoE as it trains (moe.py): routed experts per expert at the busiest card's rows, hierarchical dispatch/combine.
    moe_options = moe_model.options_from(moe_options)
    moe_cost = None
    if moe_model.applies(name, cfg, moe_options):
        moe_cost = moe_model.adjust_layer_costs(lc, cfg, pl, topo, chip, mode, pl.micro_batch * seq_in,
                                                cards_per_server, dtype, moe_options)
    dense, moe = dense_layers(cfg), cfg.num_hidden_layers - dense_layers(cfg)
    # The busiest pipeline stage holds ceil(layers / pp) layers (uneven stages when pp does not divide).
    layers_stage = -(-cfg.num_hidden_layers // pp)
    share = layers_stage / cfg.num_hidden_layers  # of each kind of layer, on that stage
    per_stage = lambda d: d["base"] + (d["dense"] * dense + d["moe"] * moe) * share  # noqa: E731
    t_mb = per_stage(lc.total)  # one micro-batch through one stage (head and embedding counted once)
    if recompute and mode == "train":
        t_mb += (lc.fwd["dense"] * dense + lc.fwd["moe"] * moe) * share
    elt = dtype.itemsize
    act = pl.micro_batch * seq_in * cfg.hidden_size * elt  # one micro-batch's hidden states
    m = pl.microbatches if mode == "train" else 1
    # 1F1B: m + (pp - 1) / v micro-batch slots on the critical path (v = 1: the plain schedule)
    slots = m + (pp - 1) / v if mode == "train" else pp
    params_card = lc.params["base"] + (lc.params["dense"] * dense + lc.params["moe"] * moe) * share
    experts_card = (lc.expert_params["dense"] * dense + lc.expert_params["moe"] * moe) * share
    params_card = params_card - experts_card + experts_card / ep
    e, k = experts(cfg)
    comm = communication.per_step(pl, topo, mode, act, slots, layers_stage, moe * share, k, params_card, recompute,
                                  zero, cards_per_server, v)
    if moe_cost:
        comm = moe_model.replace_all_to_all(comm, moe_cost, slots * moe * share)
    optimizer_ns = _optimizer_ns(params_card / (pl.dp if zero >= 1 else 1), chip) if mode == "train" else 0.0
    compute = t_mb * slots if mode == "train" else per_stage(lc.total) * pp
    bubble = t_mb * (pp - 1) / v if mode == "train" else 0.0
    step = compute + sum(comm.values()) + optimizer_ns
    tokens = batch * (seq if mode != "decode" else 1)
    flops = model_flops(name, batch, seq if mode != "decode" else 1, mode, context)
    peak = chip.matrix_flops("bf16")
    mem = memory.per_card(lc, mode, pl, params_card, elt, dense, moe, layers_stage, share, act, recompute, zero)
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
    top = sorted(((n, ns) for n, ns in ops.items() if ns > 0), key=lambda x: -x[1])
    assumptions = list(topo.assumptions) if cards > 1 else []
    if moe_cost:
        assumptions += moe_cost.assumptions
    elif e:
        assumptions.append("MoE routing is balanced (every expert gets tokens x k / E rows); set by the projection")
    assumptions.append("kernels as torch_biren runs them (fused RMSNorm/SwiGLU/RoPE/attention, HF's module code)"
                       if fused else "HF's module code without the fused kernels (torch_biren.ops.patch_model)")
    if mode == "train":
        assumptions.append(f"bf16 weights and gradients, fp32 AdamW states{' sharded over dp (ZeRO-1)' if zero else ''};"
                           " gradient reduction not overlapped with compute")
    inferred = chip.inferred()
    if inferred:
        assumptions.append(f"{chip.name} numbers labelled inferred: {', '.join(inferred)}")
    ckpt = _checkpoint(cfg, storage_GBps) if mode == "train" else {}
    if ckpt and storage_GBps is None:
        assumptions.append(f"checkpoint storage {ckpt['storage_GBps']:g} GB/s aggregate (parameter --storage-GBps; "
                           "no public figure for Biren clusters)")
    return Result(name, mode, chip, topo, pl, batch, seq, context, step, tokens / step * 1e9,
                  flops / (cards * peak * step * 1e-9), flops, mem, chip.memory_bytes, comm, compute - bubble, bubble,
                  optimizer_ns, top, ckpt, assumptions, recompute and mode == "train", v, moe=moe_cost)
