"""torch.biren graphs: capture and replay (numerics identical to eager, simulated time of one launch
plus the device-side gap per kernel), CUDA's capture rules, make_graphed_callables."""

import re

import pytest
import torch
from expecttest import assert_expected_inline

from torch_biren import sim


def _block(d=32, heads=4):
    """A small MLP-with-attention step: the shape of one decoder layer."""
    torch.manual_seed(0)
    qkv, proj = torch.nn.Linear(d, 3 * d).to("biren"), torch.nn.Linear(d, d).to("biren")
    up, down = torch.nn.Linear(d, 4 * d).to("biren"), torch.nn.Linear(4 * d, d).to("biren")

    def step(x):
        b, s, _ = x.shape
        q, k, v = qkv(x).view(b, s, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        a = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        h = x + proj(a.transpose(1, 2).reshape(b, s, d))
        return h + down(torch.nn.functional.gelu(up(torch.nn.functional.layer_norm(h, (d,)))))

    return step


def _elapsed_ps(fn):
    torch.biren.synchronize()
    t0 = sim.elapsed_ps()
    fn()
    torch.biren.synchronize()
    return sim.elapsed_ps() - t0


@torch.no_grad()
def test_replay_reads_refilled_inputs_and_writes_the_captured_output():
    step = _block()
    static_x = torch.randn(2, 8, 32, device="biren")
    step(static_x)  # warm-up, as on CUDA
    g = torch.biren.BirenGraph()
    with torch.biren.graph(g):
        static_y = step(static_x)
    assert g.num_kernels() >= 9 and not torch.biren.is_current_stream_capturing()
    for seed in (1, 2):
        torch.manual_seed(seed)
        x = torch.randn(2, 8, 32, device="biren")
        static_x.copy_(x)
        g.replay()
        assert torch.equal(static_y.cpu(), step(x).cpu())
    g.reset()
    with pytest.raises(RuntimeError, match="has not been captured"):
        g.replay()


def test_replay_charges_one_launch_plus_the_gap_per_kernel():
    chip = sim.current_chip()
    step = _block()
    x = torch.randn(2, 8, 32, device="biren")
    with torch.no_grad():
        step(x)
        g = torch.biren.CUDAGraph()  # the CUDA name is an alias
        with torch.biren.graph(g):
            y = step(x)
        with sim.profile() as prof:
            eager = _elapsed_ps(lambda: step(x))
        replay = _elapsed_ps(g.replay)
    kernels = prof.records
    assert len(kernels) == g.num_kernels()
    # The host issued each eager op; replay issues one graph launch, and each kernel loses its launch
    # cost and gains the device-side gap.
    launch, gap = round(chip.launch_ns * 1000), round(chip.graph_kernel_gap_ns * 1000)
    expected = round(chip.graph_launch_ns * 1000) + sum(
        max(0, round(r.dur_ns * 1000) - launch) + gap for r in kernels)
    assert replay == expected
    # Eagerly this step is host-bound: every kernel is shorter than the host's issue interval, so the
    # step takes one issue per op plus the last kernel. What replay saves is that host-issue share.
    issue = round(chip.host_issue_ns * 1000)
    assert all(round(r.dur_ns * 1000) <= issue for r in kernels)
    assert eager == len(kernels) * issue + round(kernels[-1].dur_ns * 1000)
    assert replay < eager


def test_make_graphed_callables_matches_eager_forward_and_backward():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 4)).to("biren")
    ref = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 4)).to("biren")
    ref.load_state_dict(model.state_dict())
    sample = torch.randn(8, 16, device="biren", requires_grad=True)
    graphed = torch.biren.make_graphed_callables(model, (sample,), num_warmup_iters=1)
    model.zero_grad(set_to_none=True)
    x = torch.randn(8, 16, device="biren", requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    graphed(x).sum().backward()
    ref(x_ref).sum().backward()
    assert torch.allclose(x.grad.cpu(), x_ref.grad.cpu())
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.allclose(p.grad.cpu(), q.grad.cpu())


def _capture_error(body):
    x = torch.randn(4, device="biren")
    g = torch.biren.BirenGraph()
    with pytest.raises(RuntimeError) as info:
        with torch.biren.graph(g):
            y = x * 2
            body(y)
    assert not torch.biren.is_current_stream_capturing()
    assert (x + 1).cpu().shape == (4,)  # the device is usable after
    # the capture stream's id depends on how many streams the process made before
    return re.sub(r"\(stream \d+\)", "(stream N)", str(info.value).split("\n")[0])


def test_synchronize_during_capture_is_refused():
    assert_expected_inline(_capture_error(lambda y: torch.biren.synchronize()), """\
biren: synchronize() is not permitted while biren:0 is capturing a graph (stream N): the captured work has not run, so the host cannot wait for it or read its results (CUDA: operation not permitted when stream is capturing). The capture is invalidated; do this after the torch.biren.graph block, once replay() has run.""")


def test_host_reads_during_capture_are_refused():
    assert_expected_inline(_capture_error(lambda y: y.sum().item()), """\
biren: reading a device value on the host (.item(), .tolist(), bool()/int()/float() of a tensor) is not permitted while biren:0 is capturing a graph (stream N): the captured work has not run, so the host cannot wait for it or read its results (CUDA: operation not permitted when stream is capturing). The capture is invalidated; do this after the torch.biren.graph block, once replay() has run.""")
    assert_expected_inline(_capture_error(lambda y: y.cpu()), """\
biren: a blocking copy to the host (.cpu(), .to('cpu'), .numpy(), printing a tensor) is not permitted while biren:0 is capturing a graph (stream N): the captured work has not run, so the host cannot wait for it or read its results (CUDA: operation not permitted when stream is capturing). The capture is invalidated; do this after the torch.biren.graph block, once replay() has run.""")
    assert "is capturing a graph" in _capture_error(print)
    assert_expected_inline(_capture_error(lambda y: torch.nonzero(y)), """\
biren: aten.nonzero.default sizes its output from device values, which needs a host read: not permitted while biren:0 is capturing a graph (CUDA: operation not permitted when stream is capturing). Give the size explicitly (e.g. torch.nonzero_static) or run it outside the graph.""")


def test_a_caught_violation_still_fails_the_capture():
    g = torch.biren.BirenGraph()
    x = torch.randn(4, device="biren")
    with pytest.raises(RuntimeError, match="invalidated by an earlier error during capture"):
        with torch.biren.graph(g):
            y = x * 2
            try:
                y.sum().item()
            except RuntimeError:
                pass
    assert not torch.biren.is_current_stream_capturing()


def test_capture_needs_a_side_stream_and_no_nesting():
    g = torch.biren.BirenGraph()
    with pytest.raises(RuntimeError, match="non-default stream"):
        g.capture_begin()
    with torch.biren.graph(g):
        with pytest.raises(RuntimeError, match="already capturing"):
            torch.biren.BirenGraph().capture_begin()
    assert torch.biren.graph_pool_handle() != torch.biren.graph_pool_handle()


@torch.no_grad()
def test_hf_static_cache_decode_step_replays_like_eager():
    """A tiny HF Qwen2 decoding with a StaticCache: one decode step captured, replayed per token with
    the token and position refilled, gives eager's logits bit for bit in less simulated time."""
    pytest.importorskip("transformers")
    from transformers import StaticCache

    from torch_biren.adapt import zoo

    model = zoo.build("qwen2").to("biren").eval()
    prompt = torch.tensor([[5, 17, 42, 99]], device="biren")
    caches = [StaticCache(config=model.config, max_cache_len=16) for _ in range(2)]
    for cache in caches:
        model(prompt, cache=cache, cache_position=torch.arange(4, device="biren"), use_cache=True)
    tok = torch.tensor([[7]], device="biren")
    pos = torch.tensor([4], device="biren")

    def step(cache, t, p):
        return model(t, cache=cache, cache_position=p, position_ids=p[None], use_cache=True).logits

    static_tok, static_pos = tok.clone(), pos.clone()
    step(caches[1], static_tok, static_pos)  # warm-up (writes the same cache entry the capture rewrites)
    g = torch.biren.BirenGraph()
    with torch.biren.graph(g):
        static_logits = step(caches[1], static_tok, static_pos)
    # transformers' StaticLayer counts tokens on the device (cumulative_length, incremented in place):
    # each replay advances it, as a CUDA graph would; the capture did not (as on CUDA), the warm-up did.
    assert all(int(layer.cumulative_length) == 5 for layer in caches[1].layers)
    for layer in caches[1].layers:
        layer.cumulative_length.fill_(4)
    eager_ps, replay_ps = [], []
    for i in range(3):
        p = torch.tensor([4 + i], device="biren")
        torch.biren.synchronize()
        t0 = sim.elapsed_ps()
        logits = step(caches[0], tok, p)
        torch.biren.synchronize()
        eager_ps.append(sim.elapsed_ps() - t0)
        static_tok.copy_(tok)
        static_pos.copy_(p)
        torch.biren.synchronize()
        t0 = sim.elapsed_ps()
        g.replay()
        torch.biren.synchronize()
        replay_ps.append(sim.elapsed_ps() - t0)
        assert torch.equal(static_logits.cpu(), logits.cpu()), i
        tok = logits[:, -1:].argmax(-1)
    assert len(set(eager_ps)) == 1 and len(set(replay_ps)) == 1  # exact clocks: every step the same
    # Eager decode of a tiny model is host-bound: the step is one host issue per kernel plus the
    # last kernel. The graph removes that host-issue share: one launch, then kernels back to back.
    chip, n = sim.current_chip(), g.num_kernels()
    assert eager_ps[0] >= n * round(chip.host_issue_ns * 1000)
    assert replay_ps[0] <= round(chip.graph_launch_ns * 1000) + n * round(chip.host_issue_ns * 1000) // 2
    print(f"decode step, {n} kernels: eager {eager_ps[0] / 1e6:.3f} us, replay {replay_ps[0] / 1e6:.3f} us")


@torch.no_grad()
def test_compile_reduce_overhead_replays_a_graph():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.Linear(64, 32)).to("biren").eval()
    compiled = torch.compile(m, mode="reduce-overhead")
    times = []
    for _ in range(4):  # warm-up, capture, then replays
        x = torch.randn(4, 32, device="biren")
        torch.biren.synchronize()
        t0 = sim.elapsed_ps()
        y = compiled(x)
        torch.biren.synchronize()
        times.append(sim.elapsed_ps() - t0)
        torch.testing.assert_close(y.cpu(), m(x).cpu())  # Inductor fuses the bias into GELU's kernel
    assert times[2] == times[3] < times[0]  # replay < the eager-cost warm-up


@torch.no_grad()
def test_hf_generate_with_static_cache_and_compile_uses_graphs():
    pytest.importorskip("transformers")
    from transformers.generation.configuration_utils import CompileConfig

    from torch_biren.adapt import zoo

    model = zoo.build("qwen2").to("biren").eval()
    prompt = torch.tensor([[5, 17, 42, 99]], device="biren")

    def generate(**kw):
        torch.biren.synchronize()
        t0 = sim.elapsed_ps()
        out = model.generate(prompt, max_new_tokens=8, do_sample=False, cache_implementation="static", **kw)
        torch.biren.synchronize()
        return out.cpu(), sim.elapsed_ps() - t0

    eager, eager_ps = generate(disable_compile=True)
    config = CompileConfig()  # mode="reduce-overhead" by default
    config._compile_all_devices = True  # transformers auto-compiles only on cuda/xpu/neuron/tpu otherwise
    generate(compile_config=config)  # compiles, warms up and captures
    graphed, graphed_ps = generate(compile_config=config)
    assert torch.equal(graphed, eager) and graphed_ps < eager_ps / 2


def test_fused_kernels_below_the_dispatcher_replay_on_refilled_inputs():
    # torch_biren.ops' RoPE, SwiGLU and cross-entropy launch their kernels without an aten op, so the
    # capture's dispatch mode cannot see them: they record themselves (graphs.launch)
    from torch_biren import ops

    q, k = torch.randn(1, 2, 8, 16, device="biren"), torch.randn(1, 1, 8, 16, device="biren")
    cos, sin = torch.randn(8, 16, device="biren"), torch.randn(8, 16, device="biren")
    gate, up = torch.randn(8, 32, device="biren"), torch.randn(8, 32, device="biren")
    logits, target = torch.randn(8, 11, device="biren"), torch.randint(0, 11, (8,), device="biren")
    run = lambda: (*ops.rope(q, k, cos, sin), ops.swiglu(gate, up), ops.cross_entropy(logits, target))  # noqa: E731
    run()  # warm-up
    g = torch.biren.BirenGraph()
    with torch.biren.graph(g):
        outs = run()
    for x in (q, k, gate, up, logits):
        x.copy_(torch.randn_like(x))
    g.replay()
    for got, want in zip(outs, run()):
        assert torch.equal(got.cpu(), want.cpu())
