"""The communication of one step under a parallel plan, by the collective cost model
(sim/collectives.py), not overlapped with compute: tensor-parallel all-reduces per layer (2
forward, 2 backward, 2 more when activations are recomputed), expert-parallel all-to-alls
(dispatch and combine), pipeline sends, and the data-parallel gradient reduction
(reduce-scatter + all-gather with a distributed optimizer, else an all-reduce)."""

from ..sim import collectives


def _collective(kind, nbytes, ranks, topo, per_server=None):
    return collectives.collective(kind, nbytes, ranks, topo, ranks_per_server=per_server).ns if ranks > 1 else 0.0


def per_step(pl, topo, mode, act, slots, layers_stage, moe_stage, experts_per_token, params_card, recompute, zero,
             cards_per_server, virtual_stages):
    """{what: ns} of one step on the busiest card. act: one micro-batch's hidden states (bytes);
    slots: micro-batch slots on the critical path; layers_stage / moe_stage: the layers (all / MoE)
    of the busiest stage; params_card: the parameters one card holds."""
    comm = {}
    tp, ep, pp = pl.tp, pl.ep, pl.pp
    passes = (4 + (2 if recompute else 0)) if mode == "train" else 2
    if tp > 1:
        comm["tensor-parallel all-reduce"] = slots * layers_stage * passes * _collective("all_reduce", act, tp, topo)
    if ep > 1 and moe_stage:
        rows = act * experts_per_token
        per_server = max(1, min(ep, cards_per_server // tp))
        n_a2a = 4 if mode == "train" else 2
        comm["expert-parallel all-to-all"] = slots * moe_stage * n_a2a * _collective("all_to_all", rows, ep, topo,
                                                                                     per_server)
    if pp > 1:
        across = 1 if tp * pl.dp >= cards_per_server else 2
        n_p2p = 2 if mode == "train" else 1
        comm["pipeline send/recv"] = slots * virtual_stages * n_p2p * _collective("send_recv", act, 2, topo, across)
    if mode == "train" and pl.dp > 1:
        per_server = max(1, cards_per_server // (tp * pp)) if tp * pp < cards_per_server else 1
        grad = params_card * 2
        if zero >= 1:
            comm["data-parallel reduce-scatter + all-gather"] = (
                _collective("reduce_scatter", grad, pl.dp, topo, per_server)
                + _collective("all_gather", grad, pl.dp, topo, per_server))
        else:
            comm["data-parallel all-reduce"] = _collective("all_reduce", grad, pl.dp, topo, per_server)
    return comm
