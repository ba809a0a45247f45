"""A decode step replayed as one graph (project(graphs=...)): the default with the static KV cache,
as serving engines run decode. It equals the live device replaying the captured step
(torch.biren.graph over HF's StaticCache), and it is the eager step's kernels with one graph launch
and a device-side gap each instead of a host issue each, by hand."""

import pytest
import torch

from torch_biren import cli
from torch_biren import projection as P
from torch_biren.projection import trace
from torch_biren.projection.stack import Stack
from torch_biren.sim.chip import load_chip, use_chip

# The live device runs HF's module code: q, k, v (gate, up) as separate GEMMs.
LIVE = Stack(fused_projections=False)


@pytest.fixture
def live_chip():
    """use_chip that reaches the live runtime (the isolation below keeps it away otherwise)."""
    return use_chip


@pytest.fixture(autouse=True)
def _chip_isolated(request):
    if "live_chip" not in request.fixturenames:
        request.getfixturevalue("isolated_chip")


def _live_graph_step_ns(batch, context):
    """tiny-llama on biren after a prefill of `context` tokens into HF's StaticCache sized to the
    step: one decode step captured with torch.biren.graph, then replayed; the replay's time."""
    import transformers

    from torch_biren import sim
    from torch_biren.adapt import zoo
    from torch_biren.ops import patch_model

    model = zoo.build("llama").to("biren").eval()
    patch_model(model)
    ids = torch.randint(0, zoo.VOCAB, (batch, context)).to("biren")
    token = torch.randint(0, zoo.VOCAB, (batch, 1)).to("biren")
    with torch.no_grad():
        cache = transformers.StaticCache(config=model.config, max_cache_len=context + 1)
        model(ids, cache=cache, use_cache=True, logits_to_keep=1)
        g = torch.biren.BirenGraph()
        with torch.biren.graph(g):
            model(token, cache=cache, use_cache=True, logits_to_keep=1)
        torch.biren.synchronize()
        t0 = sim.elapsed_ps()
        g.replay()
        torch.biren.synchronize()
        return sim.elapsed_ps() - t0


def test_graph_decode_step_is_the_live_replay(live_chip):
    chip = load_chip("BR166")
    with live_chip(chip):
        live = _live_graph_step_ns(2, 16)
    r = P.project("tiny-llama", mode="decode", batch=2, seq=16, stack=LIVE)
    # the same kernels and the same integer-picosecond sums (the projection's layer differences are
    # floating point in ns, hence the rounding)
    assert round(r.step_ns * 1000) == live
    assert r.step_ns < P.project("tiny-llama", mode="decode", batch=2, seq=16, graphs=False).step_ns


def _step_kernels(batch, context, chip):
    """The decode step's kernels of the full tiny-llama (the projection traces 1-3 layers; tiny-llama's
    own depth is 2, the 'dense' variant's), priced on chip."""
    from torch_biren.projection import layers

    assert P.models.config("tiny-llama").num_hidden_layers == 2
    run = layers._traces("tiny-llama", 1, "decode", batch, 1, context, True, torch.float32, "static")["dense"]
    return trace.price(run.kernels, chip)


def test_graph_step_by_hand_from_the_chip_numbers():
    # Host-bound eager step (every kernel shorter than its host issue): n issues plus the last
    # kernel. Replayed as a graph: one graph launch, then every kernel less its launch cost plus the
    # device-side gap. So graph = eager - n x host_issue - last + graph_launch + sum(kernel - launch + gap).
    chip = load_chip("BR166")
    ops = _step_kernels(2, 16, chip)
    n = len(ops)
    assert all(op.cost.ns < chip.host_issue_ns for op in ops)  # host-bound
    eager = P.project("tiny-llama", mode="decode", batch=2, seq=16, graphs=False).step_ns
    assert eager == pytest.approx(n * chip.host_issue_ns + ops[-1].cost.ns, abs=1e-3)
    assert n > 50  # HF's StaticCache step: the model's kernels and its position/mask bookkeeping
    graph = P.project("tiny-llama", mode="decode", batch=2, seq=16, graphs=True).step_ns
    kernels = sum(op.cost.ns for op in ops)
    by_hand = (eager - n * chip.host_issue_ns - ops[-1].cost.ns + chip.graph_launch_ns
               + kernels - n * chip.launch_ns + n * chip.graph_kernel_gap_ns)
    ps = n * 1e-3  # each kernel is rounded to whole picoseconds on the clock, by hand it is not
    assert graph == pytest.approx(by_hand, abs=ps)
    # With no launch cost in the kernels, the brief's form: eager - n x issue + launch + n x gap (+ kernels - last)
    saved = eager - graph
    assert saved == pytest.approx(n * (chip.host_issue_ns + chip.launch_ns - chip.graph_kernel_gap_ns)
                                  - chip.graph_launch_ns - (kernels - ops[-1].cost.ns), abs=ps)


def test_graph_numbers_move_the_step_and_have_ranges():
    chip = load_chip("BR166")
    base = P.project("tiny-llama", mode="decode", batch=2, seq=16, chip=chip)
    n = len(_step_kernels(2, 16, chip))
    for field, per in (("graph_launch_ns", 1), ("graph_kernel_gap_ns", n)):
        moved = P.project("tiny-llama", mode="decode", batch=2, seq=16, chip=chip.replace(**{field: getattr(chip, field) + 1000}))
        assert moved.step_ns - base.step_ns == pytest.approx(per * 1000, abs=1e-3), field
    # host issue no longer matters to a graph-mode decode step
    assert P.project("tiny-llama", mode="decode", batch=2, seq=16,
                     chip=chip.replace(host_issue_ns=30000.0)).step_ns == base.step_ns
    r = P.project("tiny-llama", mode="decode", batch=2, seq=16, ranges=True)
    assert "graph_kernel_gap_ns" in r.ranges.moved and "host_issue_ns" not in r.ranges.moved
    assert "host_issue_ns" in P.project("tiny-llama", mode="decode", batch=2, seq=16, graphs=False,
                                        ranges=True).ranges.moved


def test_defaults_and_assumptions():
    on = P.project("tiny-llama", mode="decode", batch=2, seq=16)
    assert on.step_ns == P.project("tiny-llama", mode="decode", batch=2, seq=16, graphs=True).step_ns
    assert any(a.startswith("decode step replayed as one graph (the default") for a in on.assumptions)
    dyn = P.project("tiny-llama", mode="decode", batch=2, seq=16, kv_cache="dynamic")
    assert any(a.startswith("decode step issued eagerly") for a in dyn.assumptions)
    for mode in ("train", "prefill"):  # eager: no graph line, the same step as before
        r = P.project("tiny-llama", mode=mode, batch=2, seq=16)
        assert not any(a.startswith("decode step") for a in r.assumptions)


def test_the_cli_flags(capsys):
    argv = ["project", "--model", "tiny-llama", "--mode", "decode", "--batch", "2", "--seq", "16", "--no-ranges"]
    assert cli.main(argv) == 0
    assert "assumption: decode step replayed as one graph" in capsys.readouterr().out
    assert cli.main([*argv, "--no-graphs"]) == 0
    assert "assumption: decode step issued eagerly: 20 us host issue per kernel (--graphs" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["--mode", "decode", "--kv-cache", "dynamic", "--graphs"],
     "error: graphs need static shapes: the dynamic KV cache grows every step, so a captured decode step cannot "
     "replay; use the static cache (kv_cache='static', --kv-cache static) or graphs=False (--no-graphs)"),
    (["--mode", "prefill", "--graphs"],
     "error: graphs replay decode steps; a prefill step runs eagerly (serving engines capture decode, not prefill "
     "or training)"),
    (["--graphs"], "error: graphs replay decode steps; a train step runs eagerly (serving engines capture decode, "
                   "not prefill or training)"),
])  # fmt: skip
def test_bad_graph_options_exit_2_with_one_line(argv, message, capsys):
    assert cli.main(["project", "--model", "tiny-llama", "--batch", "2", "--seq", "16", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


def test_moe_grouped_gemms_pay_the_gap_not_the_launch_in_a_graph():
    # moe.py prices the routed experts' two grouped GEMMs (gate/up, down) per MoE layer as eager
    # kernels; replayed, each pays the device-side gap instead of its launch, as every traced kernel does.
    chip = load_chip("BR166")
    kw = dict(model="qwen3-30b-a3b", cards=1, mode="decode", batch=64, seq=1024, chip=chip)
    eager, graph = (dict(P.project(**kw, graphs=g).top_ops) for g in (False, True))
    layers = P.models.config(P.models.resolve("qwen3-30b-a3b")).num_hidden_layers
    assert eager["aten::_grouped_mm"] - graph["aten::_grouped_mm"] == pytest.approx(
        layers * 2 * (chip.launch_ns - chip.graph_kernel_gap_ns), abs=1e-3)


def test_collectives_in_a_graph_pay_the_gap_not_the_launch():
    # A tensor-parallel decode step's all-reduces are captured with its kernels (NCCL calls inside a CUDA
    # graph): replayed, each call pays the device-side gap instead of its launch.
    chip = load_chip("BR166")
    kw = dict(model="tiny-llama", cards=2, tp=2, mode="decode", batch=4, seq=32, chip=chip)
    eager, graph = (P.project(**kw, graphs=g) for g in (False, True))
    (ar_eager,), (ar_graph,) = eager.collectives, graph.collectives
    assert ar_eager.name == "tensor-parallel all-reduce" and ar_eager.calls == ar_graph.calls == 2 * 2  # 2 layers
    assert ar_eager.ns - ar_graph.ns == pytest.approx(ar_eager.calls * (chip.launch_ns - chip.graph_kernel_gap_ns))
    assert ar_graph.exposed_ns == ar_graph.ns
