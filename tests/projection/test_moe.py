"""MoE as it trains (projection/moe.py): volumes, hierarchical all-to-all, node-limited routing,
imbalance, overlap, grouped GEMMs and expert memory, each on a small case computed by hand."""

import pytest

from torch_biren.projection import ProjectionError, project
from torch_biren.projection import moe as M
from torch_biren.projection.models import config
from torch_biren.sim import collectives, costs
from torch_biren.sim.chip import load_chip

BR166 = load_chip("BR166")
SMALL = M.MoE(hidden=1024, expert_inter=512, experts=16, top_k=2)


def _topo(cards, **kw):
    # Line-rate links and no per-step latency: times are bytes / bandwidth, by hand.
    return collectives.topology(cards, BR166, 8, "roce-200", efficiency=1.0, intra_alpha_ns=0, inter_alpha_ns=0, **kw)


def test_servers_reached_by_hand():
    assert M.servers_reached(1, 8) == 1.0
    assert M.servers_reached(2, 2) == pytest.approx(1.5)  # 2 (1 - 1/4)
    assert M.servers_reached(8, 8, node_limit=4) == pytest.approx(4 * (1 - 0.75**8))  # 3.5995


def test_dispatch_rows_by_hand():
    # 100 tokens x top-2 = 200 rows. One server of 8: 7/8 leave the card, none cross the network.
    assert M.dispatch_rows(100, 2, ep=8, per_server=8) == (0.0, 175.0)
    # 16 cards over 2 servers: 8/16 cross the network, 7/16 stay on the card links.
    assert M.dispatch_rows(100, 2, ep=16, per_server=8) == (100.0, 87.5)
    # Node-limited to 1 server: a token reaches D = 1 server, remote with probability 1/2; the
    # card links carry (g-1)/g of the rows (direct plus forwarded).
    assert M.dispatch_rows(100, 2, ep=16, per_server=8, node_limit=1) == (50.0, 175.0)


def test_dispatch_inside_one_server_by_hand():
    # 1024 tokens x 8 x 1024 hidden x 2 B; 7/8 of it over 8 x 32 GB/s BLink = 256 GB/s, plus one launch.
    m = M.MoE(hidden=1024, expert_inter=512, experts=64, top_k=8)
    r = M.layer(m, 1024, ep=8, topo=_topo(8), mode="prefill")
    assert r.volumes["dispatch card links"] == 7168 * 1024 * 2
    assert r.volumes["dispatch network"] == 0
    assert r.comm_ns["dispatch"] == pytest.approx(7168 * 1024 * 2 / 256e9 * 1e9 + 5000)
    assert r.calls == {"dispatch": 1, "combine": 1}


def test_without_node_limit_it_is_the_collective_models_hierarchical_all_to_all():
    topo = collectives.topology(64, BR166, 8)
    r = M.layer(SMALL, 4096, ep=16, topo=topo, mode="prefill")
    flat = collectives.collective("all_to_all", 4096 * 2 * 1024 * 2, 16, topo, ranks_per_server=8)
    assert r.comm_ns["dispatch"] == pytest.approx(flat.ns)
    assert (r.servers, r.per_server) == (2, 8)


def test_network_bound_dispatch_by_hand():
    # 16 cards in 2 servers: 4096 x 2 x 8/16 rows cross 25 GB/s NICs (roce-200); the card links'
    # 4096 x 2 x 7/16 rows at 256 GB/s take less, and run concurrently.
    r = M.layer(SMALL, 4096, ep=16, topo=_topo(16), mode="prefill")
    net = 4096 * 2 * 8 / 16 * 1024 * 2
    assert r.comm_ns["dispatch"] == pytest.approx(net / 25e9 * 1e9 + 5000)


def test_node_limited_routing_cuts_network_volume_deepseek_numbers():
    # DeepSeek-V3: top-8 over 64 cards in 8 servers, at most 4 servers per token: a token crosses the
    # network for 3.5995 x 7/8 = 3.15 servers on average instead of 8 x 56/64 = 7 of its experts.
    m = M.MoE.from_config(config("DeepSeek-V3-671B"))
    plain = M.layer(m, 4096, ep=64, topo=_topo(512), mode="prefill")
    limited = M.layer(m, 4096, ep=64, topo=_topo(512), mode="prefill", options=M.Options(node_limit=4))
    assert plain.volumes["dispatch network"] == pytest.approx(4096 * 7 * 7168 * 2)
    assert limited.volumes["dispatch network"] == pytest.approx(4096 * 4 * (1 - 0.75**8) * 7 / 8 * 7168 * 2)
    assert limited.comm_ns["dispatch"] < plain.comm_ns["dispatch"] / 2


def test_training_runs_four_all_to_alls_gradients_at_combine_width():
    o = M.Options(dispatch_bytes=1.0, combine_bytes=2.0)
    fwd = M.layer(SMALL, 4096, ep=16, topo=_topo(16), mode="prefill", options=o)
    train = M.layer(SMALL, 4096, ep=16, topo=_topo(16), mode="train", options=o)
    bf16 = M.layer(SMALL, 4096, ep=16, topo=_topo(16), mode="prefill")
    assert train.calls == {"dispatch": 2, "combine": 2}
    assert train.comm_ns["dispatch"] == pytest.approx(fwd.comm_ns["dispatch"] + bf16.comm_ns["dispatch"])
    assert train.comm_ns["combine"] == pytest.approx(2 * fwd.comm_ns["combine"])
    assert fwd.volumes["dispatch network"] * 2 == fwd.volumes["combine network"]


def test_imbalance_scales_the_busiest_cards_rows_and_all_to_all():
    even = M.layer(SMALL, 4096, ep=16, topo=_topo(16))
    skew = M.layer(SMALL, 4096, ep=16, topo=_topo(16), options=M.Options(imbalance=2.0))
    assert even.rows_per_expert == [4096 * 2 / 16 * 16]  # one expert per card receives all 16 cards' share
    assert skew.rows_per_expert == [2 * 4096 * 2]
    launch = 5000
    assert skew.comm_ns["dispatch"] - 2 * launch == pytest.approx(2 * (even.comm_ns["dispatch"] - 2 * launch))
    assert skew.compute_ns["routed experts"] == pytest.approx(M.expert_ns(BR166, [16384], 1024, 512))
    assert skew.compute_ns["routed experts"] > even.compute_ns["routed experts"]


def test_grouped_gemm_is_per_expert_groups_with_one_launch():
    L = BR166.launch_ns
    body = lambda m, n, k: costs.gemm(m, n, k, chip=BR166).ns - L  # noqa: E731
    rows = [100, 30, 0]  # an expert with no rows costs nothing
    want = (body(100, 1024, 1024) + body(30, 1024, 1024) + L) + (body(100, 1024, 512) + body(30, 1024, 512) + L)
    assert M.expert_ns(BR166, rows, 1024, 512, backward=False) == pytest.approx(want)
    # Few rows per expert pay a whole tile each: 16 groups of 4 rows cost more than one GEMM of 64 rows.
    assert M.expert_ns(BR166, [4] * 16, 1024, 512) > 4 * M.expert_ns(BR166, [64], 1024, 512)


def test_fewer_routed_rows_than_experts_give_some_experts_one_row_not_all_none():
    # 4 tokens x top-2 = 8 rows over 16 experts (ep 1): balanced, 8 experts get one row each and 8
    # none; rounding the mean of 0.5 rows per expert would have priced no expert at all.
    c = M.layer(SMALL, tokens=4, ep=1, chip=BR166, mode="decode")
    want = M.expert_ns(BR166, [1] * 8 + [0] * 8, SMALL.hidden, SMALL.expert_inter, backward=False)
    assert c.compute_ns["routed experts"] == pytest.approx(want) and want > 0


def test_overlap_hides_dispatch_and_combine_under_compute_minus_the_units_it_takes():
    o = M.Options(overlap=True, comm_units_share=0.2)
    plain = M.layer(SMALL, 4096, ep=16, topo=_topo(16))
    total = plain.comm_total_ns
    long = M.layer(SMALL, 4096, ep=16, topo=_topo(16), options=o, overlap_window_ns=10 * total)
    assert (long.exposed_ns, long.hidden_ns) == (0.0, pytest.approx(total))
    # The overlapped part of the window runs 1/(1 - 0.2) slower: total hidden in 0.8 x total of window.
    assert long.slowdown_ns == pytest.approx(total * 0.2)
    short = M.layer(SMALL, 4096, ep=16, topo=_topo(16), options=o, overlap_window_ns=total / 4)
    assert short.hidden_ns == pytest.approx(total / 4 / 0.8)
    assert short.exposed_ns == pytest.approx(total - total / 4 / 0.8)


def test_configs_and_expert_weight_memory():
    v3 = M.MoE.from_config(config("DeepSeek-V3-671B"))
    assert v3 == M.MoE(7168, 2048, 256, 8, shared_experts=1, shared_inter=2048)
    assert M.MoE.from_config(config("Qwen3-30B-A3B")) == M.MoE(2048, 768, 128, 8)
    # Qwen2-MoE: one shared expert of its own width (shared_expert_intermediate_size) beside the routed ones
    assert M.MoE.from_config(config("Qwen2-57B-A14B")) == M.MoE(3584, 2560, 64, 8, shared_experts=1,
                                                                  shared_inter=20480)
    r = M.layer(v3, 4096, ep=64, topo=_topo(512))
    # 4 routed experts x 3 matrices x 7168 x 2048 x 2 B, plus the shared expert's.
    assert r.expert_weight_bytes == 4 * 3 * 7168 * 2048 * 2 + 3 * 7168 * 2048 * 2
    assert "shared experts" in r.compute_ns


@pytest.mark.parametrize("kw,message", [
    (dict(options=M.Options(imbalance=0.5)), "imbalance is the busiest card's rows over the mean, >= 1"),
    (dict(options=M.Options(comm_units_share=1.0)), "comm_units_share must be in [0, 1)"),
    (dict(ep=3), "ep=3 must be a positive integer dividing the 16 experts"),
    (dict(rows_per_expert=[1, 2]), "rows_per_expert lists 2 experts; a card holds 1"),
])  # fmt: skip
def test_bad_options_name_what_is_wrong(kw, message):
    kw = {"ep": 16, **kw}
    with pytest.raises(ProjectionError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        M.layer(SMALL, 64, topo=_topo(16), **kw)


def test_project_uses_the_moe_model_and_overlap_lowers_the_step():
    kw = dict(model="qwen3-30b-a3b", cards=16, batch=16, seq=1024, ep=16)
    plain = project(**kw)
    assert M.ALL_TO_ALL in plain.comm_ns
    assert "MoE all-to-all per step" in plain.report()
    hidden = project(**kw, moe_options=dict(overlap=True))
    exposed = lambda r: {c.name: c.exposed_ns for c in r.collectives}[M.ALL_TO_ALL]  # noqa: E731
    assert hidden.comm_ns[M.ALL_TO_ALL] == plain.comm_ns[M.ALL_TO_ALL]  # the same traffic, partly hidden
    assert exposed(hidden) < exposed(plain) == plain.comm_ns[M.ALL_TO_ALL]
    assert hidden.step_ns < plain.step_ns
    with pytest.raises(ProjectionError, match="MoE options"):
        project(**kw, moe_options=dict(nope=1))


def test_decode_dispatches_one_token_per_sequence():
    kw = dict(model="qwen3-30b-a3b", cards=8, batch=64, seq=4096, tp=4, ep=2, dp=2)
    dec, pre = project(**kw, mode="decode"), project(**kw, mode="prefill")
    sent = lambda r: r.moe.volumes["dispatch card links"] + r.moe.volumes["dispatch network"]  # noqa: E731
    assert sent(pre) == pytest.approx(4096 * sent(dec), rel=1e-9)  # a prompt of 4096 tokens, one new token


def test_zero_shards_routed_experts_over_their_expert_data_parallel_group():
    # tiny-qwen3-moe: 2 layers of 4 experts x 3 x hidden 64 x moe_inter 32 = 49,152 expert parameters;
    # ep 2 leaves 24,576 on a card, replicated on dp / ep = 2 of the 4 data-parallel cards
    kw = dict(model="tiny-qwen3-moe", cards=4, ep=2, batch=4, seq=16)
    none, z1 = project(**kw, zero=0), project(**kw, zero=1)
    params = none.memory["weights"] // 4  # fp32
    experts = 2 * 4 * 3 * 64 * 32 // 2
    assert none.memory["optimizer states"] == 8 * params  # fp32 model: Adam's two moments
    assert z1.memory["optimizer states"] == int(8 * (params - experts) / 4 + 8 * experts / 2)


def test_expert_gradients_reduce_over_the_expert_data_parallel_group():
    from torch_biren.projection.communication import EXPERT_DP

    # The case above (fp32 gradients of a tiny fp32 model): the dense parameters' gradients reduce over
    # the 4 data-parallel cards, the routed experts' 24,576 over the 2 cards holding each expert.
    kw = dict(model="tiny-qwen3-moe", cards=4, ep=2, batch=4, seq=16)
    r = project(**kw)
    params, experts = r.memory["weights"] // 4, 2 * 4 * 3 * 64 * 32 // 2
    by_name = {c.name: c for c in r.collectives}
    dense = by_name["data-parallel gradient all-reduce"]
    routed = by_name["data-parallel gradient all-reduce" + EXPERT_DP]
    assert (dense.nbytes, dense.ranks) == (4 * (params - experts), 4)
    assert (routed.nbytes, routed.ranks) == (4 * experts, 2)
    topo = collectives.topology(4, BR166)
    assert routed.ns == pytest.approx(collectives.collective("all_reduce", 4 * experts, 2, topo).ns)
    # ZeRO-1: each part reduce-scattered and gathered over its own group
    z1 = {c.name: c.ranks for c in project(**kw, zero=1).collectives if "parallel" in c.name}
    assert z1["data-parallel gradient reduce-scatter" + EXPERT_DP] == 2
    assert z1["data-parallel parameter all-gather" + EXPERT_DP] == 2
    # ep = dp x tp: every card holds its own experts, so no reduction of theirs at all
    assert not [c for c in project(**{**kw, "ep": 4}).collectives if c.name.endswith(EXPERT_DP)]


def test_optimizer_step_updates_what_zero_leaves_on_the_card():
    from torch_biren.projection.project import _optimizer_ns

    # the case above: the card steps (params - experts) / 4 dense and experts / 2 routed-expert parameters
    kw = dict(model="tiny-qwen3-moe", cards=4, ep=2, batch=4, seq=16)
    none, z1 = project(**kw, zero=0), project(**kw, zero=1)
    params, experts = none.memory["weights"] // 4, 2 * 4 * 3 * 64 * 32 // 2
    st, elt = none.stack, 4  # a tiny model runs in fp32
    assert none.optimizer_ns == pytest.approx(_optimizer_ns(params, BR166, st, elt))
    assert z1.optimizer_ns == pytest.approx(_optimizer_ns((params - experts) / 4 + experts / 2, BR166, st, elt))
    assert z1.optimizer_ns == pytest.approx(_optimizer_ns(z1.memory["optimizer states"] / 8, BR166, st, elt),
                                            rel=1e-6)


def test_adjusting_the_moe_layer_leaves_the_traced_costs_alone():
    import torch

    from torch_biren.projection.layers import layer_costs
    from torch_biren.projection.plan import plan

    cfg = config("tiny-qwen3-moe")
    lc = layer_costs("tiny-qwen3-moe", 1, BR166, "train", 2, 16, dtype=torch.float32, need_fwd=True)
    before = (dict(lc.total), dict(lc.fwd), {k: dict(v) for k, v in lc.busy.items()})
    pl = plan(cfg, 2, 4, None, 1, 1, 2, 2, "train", 1, 16)
    out, cost = M.adjust_layer_costs(lc, cfg, pl, _topo(2), BR166, "train", 32, 8, torch.float32, M.Options())
    assert (lc.total, lc.fwd, lc.busy) == before
    assert out.total["moe"] != lc.total["moe"] and out.total["dense"] == lc.total["dense"]
    assert out.busy["moe"][M.TRACED_EXPERTS] - lc.busy["moe"][M.TRACED_EXPERTS] == pytest.approx(
        out.total["moe"] - lc.total["moe"])


def test_traced_experts_save_the_routed_rows_their_backward_needs():
    import torch

    from torch_biren.projection import trace

    # 10 tokens x top-3 = 30 rows, hidden 16, expert intermediate 8, 4 experts, fp32: the gathered rows
    # (30 x 16), the gate/up output (30 x 16) and the SwiGLU output (30 x 8); the layer's input is not kept
    x = torch.empty((10, 16), device="meta", requires_grad=True)
    gate_up = torch.nn.Parameter(torch.empty((4, 16, 16), device="meta"))
    down = torch.nn.Parameter(torch.empty((4, 16, 8), device="meta"))

    def step():
        y = trace._Experts.apply(x, gate_up, down, 30)
        trace.mark()
        y.sum().backward()

    t = trace.trace(step)
    assert t.saved_bytes == 30 * (16 + 16 + 8) * 4
    assert x.grad is not None and x.grad.shape == x.shape


def test_traced_attention_saves_one_logsumexp_per_batch_head_and_query():
    import torch

    from torch_biren.projection import trace

    # batch 2 x 4 heads x 8 queries x head 16, fp32: q, k, v and out (2 x 4 x 8 x 16 each), lse 2 x 4 x 8
    q, k, v = (torch.empty((2, 4, 8, 16), device="meta", requires_grad=True) for _ in range(3))

    def step():
        y = trace._SDPA.apply(q, k, v, None, True, None)
        trace.mark()
        y.sum().backward()

    assert trace.trace(step).saved_bytes == 4 * (2 * 4 * 8 * 16) * 4 + 2 * 4 * 8 * 4


def test_prefill_working_set_holds_the_routed_and_shared_experts_activations():
    # One layer's transient tensors in a prefill (project._working_set): 3 hidden-wide and 3 MLP-wide
    # per token, the MLP's width k routed experts' plus the shared expert's (64 + 2 x 32 on tiny-qwen2-moe).
    from torch_biren.projection.project import _working_set
    from torch_biren.projection.plan import plan

    cfg = config("tiny-qwen2-moe")
    pl = plan(cfg, 1, 2, mode="prefill")
    assert _working_set(cfg, pl, 16, 1, 2, True) == 2 * 16 * (3 * 64 + 3 * (2 * 32 + 64)) * 2
