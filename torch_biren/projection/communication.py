"""The communication of one step under a parallel plan and training stack, by the collective cost
model (sim/collectives.py): each kind of collective with its group (where its ranks sit: inside a
server or across the network), its volume per call, its calls per step, its time, and the part of
that time compute does not hide (exposed).

Groups follow Megatron-Core's rank order tp-cp-ep-dp-pp: a tensor-parallel group is consecutive
cards, a context-parallel group strides over tp, a data-parallel group over tp x cp, a pipeline
group over everything else.

The one place MoE communication is priced is expert_parallel() below (the grouped expert GEMMs are
priced in the trace, trace.py, at balanced per-expert row counts)."""

from dataclasses import dataclass

from ..sim import collectives


@dataclass
class Collective:
    name: str  # what it is, e.g. "tensor-parallel all-reduce"
    kind: str  # collectives.KINDS
    nbytes: float  # per call, as nccl-tests counts the buffer
    calls: float  # per step on the busiest card
    ranks: int
    per_server: int  # of the group's ranks in one server
    ns: float = 0.0  # all calls
    exposed_ns: float = 0.0  # of ns, not hidden behind compute

    @property
    def where(self):
        if self.ranks <= self.per_server:
            return "inside a server"
        return f"across {-(-self.ranks // self.per_server)} servers ({self.per_server} per server)"


def _price(c, topo):
    one = collectives.collective(c.kind, c.nbytes, c.ranks, topo, ranks_per_server=c.per_server).ns
    c.ns = c.calls * one if c.ranks > 1 else 0.0
    c.exposed_ns = c.ns
    return c


def groups(pl, cp, cards_per_server):
    """{group: ranks per server} under the tp-cp-ep-dp-pp order."""
    s = cards_per_server
    fit = lambda stride, n: max(1, min(n, s // stride)) if stride < s else 1  # noqa: E731
    return {"tp": fit(1, pl.tp), "cp": fit(pl.tp, cp), "dp": fit(pl.tp * cp, pl.dp),
            "ep": max(1, min(pl.ep, s // pl.tp)) if pl.tp < s else 1, "pp": fit(pl.tp * cp * pl.dp, pl.pp)}


def expert_parallel(pl, topo, mode, act, slots, moe_stage, experts_per_token, per_server):
    """Dispatch and combine all-to-alls of the MoE layers (balanced routing: each token's hidden
    state goes to k experts), 2 per layer forward, 2 more backward. The single place the MoE
    module replaces."""
    if pl.ep <= 1 or not moe_stage:
        return []
    n_a2a = 4 if mode == "train" else 2
    return [_price(Collective("expert-parallel all-to-all", "all_to_all", act * experts_per_token,
                              slots * moe_stage * n_a2a, pl.ep, per_server), topo)]


# Names of the backward tensor-parallel collectives Megatron runs beside a GEMM (stack.tp_backward_overlap).
BESIDE_WGRAD = "(backward, beside wgrad)"  # the weight-gradient GEMMs
TP_BESIDE_WGRAD = "tensor-parallel {} " + BESIDE_WGRAD
TP_BESIDE_DGRAD = "tensor-parallel all-gather (SP re-gather, beside dgrad)"  # the input-gradient GEMMs


def _tensor_parallel(stack, train, act, layer_passes, tp, per_server, topo):
    """Per layer and micro-batch, Megatron's f/g operators: forward, an all-reduce after the attention
    and after the MLP (sequence parallel: an all-gather before each column-parallel linear and a
    reduce-scatter after each row-parallel one), again when full recomputation re-runs the forward;
    backward, the column-parallel linears' input-gradient all-reduce (sequence parallel: the
    row-parallel linears' output-gradient all-gather and the column-parallel input-gradient
    reduce-scatter, plus the re-gather of the column-parallel inputs, which Megatron keeps split and
    gathers again for the weight gradient). With stack.tp_backward_overlap the input-gradient
    collectives and the re-gather are their own entries, hidden behind the GEMMs they run beside."""
    fwd = 4 if train and stack.recompute == "full" else 2
    bwd = 2 if train else 0
    apart = train and stack.tp_backward_overlap
    out = []
    if stack.sequence_parallel:
        gathers = fwd + bwd + (2 if train and not apart else 0)  # the re-gathers wait with the others
        out += [_price(Collective("tensor-parallel all-gather (sequence parallel)", "all_gather", act,
                                  layer_passes * gathers, tp, per_server), topo),
                _price(Collective("tensor-parallel reduce-scatter (sequence parallel)", "reduce_scatter", act,
                                  layer_passes * (fwd + (0 if apart else bwd)), tp, per_server), topo)]
        if apart:
            out += [_price(Collective(TP_BESIDE_WGRAD.format("reduce-scatter"), "reduce_scatter", act,
                                      layer_passes * bwd, tp, per_server), topo),
                    _price(Collective(TP_BESIDE_DGRAD, "all_gather", act, layer_passes * 2, tp, per_server), topo)]
    else:
        out.append(_price(Collective("tensor-parallel all-reduce", "all_reduce", act,
                                     layer_passes * (fwd + (0 if apart else bwd)), tp, per_server), topo))
        if apart:
            out.append(_price(Collective(TP_BESIDE_WGRAD.format("all-reduce"), "all_reduce", act, layer_passes * bwd,
                                         tp, per_server), topo))
    return out


def _data_parallel(stack, pl, params, ranks, per_server, topo, what=""):
    """The gradient reduction (and ZeRO's parameter gathers) of `params` parameters over `ranks`
    data-parallel replicas; `what` names a part of the model reduced over its own group."""
    if ranks <= 1 or not params:
        return []
    grads, weights, m = params * stack.grad_bytes, params * 2, pl.microbatches
    if stack.zero == 3:
        parts = [("FSDP parameter all-gather", "all_gather", weights, 2 * m),
                 ("FSDP gradient reduce-scatter", "reduce_scatter", grads, m)]
    elif stack.zero >= 1:
        parts = [("data-parallel gradient reduce-scatter", "reduce_scatter", grads, 1),
                 ("data-parallel parameter all-gather", "all_gather", weights, 1)]
    else:
        parts = [("data-parallel gradient all-reduce", "all_reduce", grads, 1)]
    return [_price(Collective(name + what, kind, nbytes, calls, ranks, per_server), topo)
            for name, kind, nbytes, calls in parts]


EXPERT_DP = " (routed experts)"  # over the expert-data-parallel group: the cards holding the same experts


def per_step(pl, topo, mode, stack, cp, act, slots, layers_stage, moe_stage, experts_per_token, params_card,
             kv_chunk, cards_per_server, virtual_stages, graphs=False, expert_params_card=0.0):
    """[Collective] of one step on the busiest card, before overlap. act: one micro-batch's hidden
    states on one card (bytes, full width); slots: micro-batch passes on the critical path;
    layers_stage / moe_stage: the layers (all / MoE) of the busiest stage; params_card: the
    parameters one card holds (before ZeRO-3 sharding), of which expert_params_card are routed
    experts' (their gradients reduce over the expert-data-parallel group, Plan.expert_dp replicas,
    the group memory.py shards their states over); kv_chunk: one card's K and V of one layer;
    graphs: the step replayed as a captured graph (decode), its collectives among its kernels."""
    g = groups(pl, cp, cards_per_server)
    out = []
    tp, pp, dp = pl.tp, pl.pp, pl.dp
    train = mode == "train"
    if tp > 1:
        out += _tensor_parallel(stack, train, act, slots * layers_stage, tp, g["tp"], topo)
    if train and stack.distributes(tp):
        # each layer's checkpointed input, kept 1/tp per rank, gathered before its recomputation
        out.append(_price(Collective("tensor-parallel all-gather (distributed saved activations)", "all_gather", act,
                                     slots * layers_stage, tp, g["tp"]), topo))
    if cp > 1:
        # ring attention: cp - 1 steps passing K/V chunks forward; K/V and their gradients backward
        per_layer = (cp - 1) * (3 if train else 1)
        out.append(_price(Collective("context-parallel K/V ring send/recv", "send_recv", kv_chunk,
                                     slots * layers_stage * per_layer, 2, g["cp"] if g["cp"] > 1 else 1), topo))
    out += expert_parallel(pl, topo, mode, act, slots, moe_stage, experts_per_token, g["ep"])
    if pp > 1:
        scatter = stack.pipeline_scatter_gather and not stack.sequence_parallel and tp > 1
        sent = act / tp if (stack.sequence_parallel or scatter) and tp > 1 else act
        per_server = 2 if g["pp"] > 1 else 1
        sends = slots * virtual_stages * (2 if train else 1)
        out.append(_price(Collective("pipeline send/recv", "send_recv", sent, sends, 2, per_server), topo))
        if scatter:  # the receiving stage rebuilds the full activation from the tp slices
            out.append(_price(Collective("pipeline all-gather (scatter/gather)", "all_gather", act, sends, tp,
                                         g["tp"]), topo))
    if train and dp > 1:
        experts = expert_params_card if pl.ep > 1 else 0.0
        out += _data_parallel(stack, pl, params_card - experts, dp, g["dp"], topo)
        # each expert's replicas spread evenly over the dp x tp cards: cards_per_server / ep to a server
        edp = pl.expert_dp
        out += _data_parallel(stack, pl, experts, edp, max(1, min(edp, cards_per_server // pl.ep)), topo, EXPERT_DP)
    if graphs:  # captured with the step's kernels: each call's launch becomes the device-side gap (trace.replay)
        saved = topo.chip.launch_ns - topo.chip.graph_kernel_gap_ns
        for c in out:
            if c.ns:
                c.ns = c.exposed_ns = max(0.0, c.ns - c.calls * saved)
    return out
