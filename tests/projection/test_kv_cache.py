"""The KV cache of a prefill/decode projection (project(kv_cache=, max_cache_len=)): "static" (the
default, as serving engines run: allocated at max_cache_len, each step writing its new K/V in place,
attention over the actual length) or "dynamic" (HF's DynamicCache: the cache concatenated every
step). Each agrees with the live device running HF with that cache; the difference between them is
the concatenation's bytes, by hand."""

import pytest
import torch

from torch_biren import cli
from torch_biren import projection as P
from torch_biren.projection.models import config
from torch_biren.projection.stack import Stack
from torch_biren.sim.chip import load_chip, use_chip

# The live device runs HF's module code: q, k, v (gate, up) as separate GEMMs.
LIVE = Stack(fused_projections=False)

CFG = config("tiny-llama")
LAYERS, KV_HEADS = CFG.num_hidden_layers, CFG.num_key_value_heads
HEAD_DIM = CFG.hidden_size // CFG.num_attention_heads
ELT = 4  # tiny models are projected in fp32, as they run live


@pytest.fixture
def live_chip():
    """use_chip that reaches the live runtime (the isolation below keeps it away otherwise)."""
    return use_chip


@pytest.fixture(autouse=True)
def _chip_isolated(request):
    """tests/projection/conftest.py's isolation, except for a test that runs the live device on a chip
    of its own (use_chip restores the process's chip after it)."""
    if "live_chip" not in request.fixturenames:
        request.getfixturevalue("isolated_chip")


def _live_decode_ns(kv_cache, batch, context):
    """One greedy decode step of tiny-llama on biren after a prefill of `context` tokens, with HF's
    StaticCache sized to the step (context + 1 tokens) or its DynamicCache."""
    import transformers

    from torch_biren import sim
    from torch_biren.adapt import zoo
    from torch_biren.ops import patch_model

    model = zoo.build("llama").to("biren").eval()
    patch_model(model)
    ids = torch.randint(0, zoo.VOCAB, (batch, context)).to("biren")
    token = torch.randint(0, zoo.VOCAB, (batch, 1)).to("biren")
    with torch.no_grad():
        cache = (transformers.StaticCache(config=model.config, max_cache_len=context + 1) if kv_cache == "static"
                 else transformers.DynamicCache(config=model.config))
        model(ids, cache=cache, use_cache=True, logits_to_keep=1)
        torch.biren.synchronize()
        t0 = sim.elapsed_ps()  # the clock's integer: the step's time does not depend on where it starts
        model(token, cache=cache, use_cache=True, logits_to_keep=1)
        torch.biren.synchronize()
        return (sim.elapsed_ps() - t0) / 1000


@pytest.mark.parametrize("kv_cache", ["static", "dynamic"])
def test_decode_step_is_the_live_step_with_the_same_cache(kv_cache, live_chip):
    # Host-bound (every kernel shorter than its host issue): the same kernels, one for one, issued
    # eagerly as the live step here is (graph replay: test_decode_graphs.py).
    with live_chip(load_chip("BR166")):
        live = _live_decode_ns(kv_cache, 2, 16)
    assert P.project("tiny-llama", mode="decode", batch=2, seq=16, kv_cache=kv_cache, graphs=False,
                     stack=LIVE).step_ns == live
    # Without host issue the step is the kernels' own time: the same prices too, to the picosecond.
    fast = load_chip("BR166").replace(host_issue_ns=0.0)
    with live_chip(fast):
        live = _live_decode_ns(kv_cache, 4, 64)
    got = P.project("tiny-llama", mode="decode", batch=4, seq=64, kv_cache=kv_cache, chip=fast, graphs=False,
                    stack=LIVE).step_ns
    assert got == pytest.approx(live, abs=1e-6)


def _memory_ns(nbytes, chip):
    return nbytes / (chip.hbm_peak_Bps * chip.mem_efficiency(nbytes)) * 1e9


def test_static_cache_saves_the_concatenation_bytes_by_hand():
    # No launch or host-issue cost: the step is its kernels' memory and compute time, so what the
    # static cache saves is the bytes DynamicCache's two cats per layer move, less the bytes the
    # in-place writes move (A100: no die link).
    chip = load_chip("A100").replace(launch_ns=0.0, host_issue_ns=0.0)
    b, L = 8, 4096  # one token after L cached
    static, dynamic = (P.project("tiny-llama", mode="decode", batch=b, seq=L, chip=chip, kv_cache=k, graphs=False)
                       for k in ("static", "dynamic"))
    ops_s, ops_d = dict(static.top_ops), dict(dynamic.top_ops)
    row = b * KV_HEADS * HEAD_DIM * ELT  # one token's K (or V) of one layer, all sequences
    # DynamicCache: cat(cache of L tokens, the new one) reads L + 1 tokens and writes L + 1
    cat = _memory_ns(2 * (L + 1) * row, chip)
    assert cat > (L + 1) * row / ELT / chip.vector_flops * 1e9  # memory-bound, as the roofline takes it
    assert ops_d["aten::cat"] - ops_s["aten::cat"] == pytest.approx(2 * LAYERS * cat, abs=1e-2)  # K and V
    # StaticCache: index_copy_ reads the new token and its int64 position and writes the token
    write = _memory_ns(2 * row + 8, chip)
    assert ops_s["aten::index_copy_"] == pytest.approx(2 * LAYERS * write, abs=1e-2)
    # Attention reads the actual L + 1 tokens in both (here bound by its padded query tile, so the
    # static cache's additive mask, b x (L + 1) fp32, does not move it)
    attention = "aten::_scaled_dot_product_fused_attention_overrideable"
    assert ops_s[attention] == ops_d[attention]
    # sdpa's conversion of the boolean mask, per layer: reads b x (L + 1) bools and two scalars, writes fp32
    where = _memory_ns(b * (L + 1) * (1 + ELT) + 2 * ELT, chip)
    assert ops_s["aten::where.self"] == pytest.approx(LAYERS * where, abs=1e-2)
    # The rest: HF's position and mask bookkeeping, int64 positions and bools over the L + 1 tokens
    # (here about 1% of the cats: bytes per token, not per token x head x dim)
    rest = sum(ops_s.get(k, 0.0) - ops_d.get(k, 0.0) for k in set(ops_s) | set(ops_d)
               if k not in ("aten::cat", "aten::index_copy_", "aten::where.self"))
    assert 0 < rest < 0.02 * 2 * LAYERS * cat
    saved = dynamic.step_ns - static.step_ns  # (busy times are whole picoseconds, as the live clock keeps them)
    assert saved == pytest.approx(2 * LAYERS * (cat - write) - LAYERS * where - rest, abs=1e-2)
    # Memory: both hold the L + 1 tokens; a static cache allocated longer holds all of its length,
    # and the step still reads (and is priced for) the actual length.
    per_token = LAYERS * 2 * KV_HEADS * HEAD_DIM * ELT  # K and V of every layer
    assert static.memory["KV cache"] == dynamic.memory["KV cache"] == b * per_token * (L + 1)
    longer = P.project("tiny-llama", mode="decode", batch=b, seq=L, chip=chip, max_cache_len=8192, graphs=False)
    assert longer.memory["KV cache"] == b * per_token * 8192
    assert longer.step_ns == static.step_ns and longer.decode_Bps == static.decode_Bps


def test_static_is_the_default_for_inference_and_says_so():
    r = P.project("tiny-llama", mode="decode", batch=2, seq=16)
    assert r.step_ns == P.project("tiny-llama", mode="decode", batch=2, seq=16, kv_cache="static").step_ns
    assert any(a.startswith("KV cache static (the default") and "17 tokens" in a for a in r.assumptions)
    assert any(a.startswith("KV cache dynamic") for a in
               P.project("tiny-llama", mode="prefill", batch=2, seq=16, kv_cache="dynamic").assumptions)
    assert not any("KV cache" in a for a in P.project("tiny-llama", batch=2, seq=16).assumptions)  # training


def test_a_static_prefill_writes_the_prompt_into_the_cache():
    # StaticCache's prefill copies the prompt's K/V into the cache (index_copy_) where DynamicCache
    # keeps the tensors it was given; both hold the prompt.
    static, dynamic = (P.project("tiny-llama", mode="prefill", batch=2, seq=16, kv_cache=k)
                       for k in ("static", "dynamic"))
    assert "aten::index_copy_" in dict(static.top_ops) and "aten::index_copy_" not in dict(dynamic.top_ops)
    assert static.memory["KV cache"] == dynamic.memory["KV cache"] == 2 * LAYERS * 2 * KV_HEADS * HEAD_DIM * 16 * ELT


def test_the_cli_flags(capsys):
    argv = ["project", "--model", "tiny-llama", "--mode", "decode", "--batch", "2", "--seq", "16", "--no-ranges"]
    assert cli.main([*argv, "--kv-cache", "dynamic"]) == 0
    assert "assumption: KV cache dynamic (HF's DynamicCache, eager)" in capsys.readouterr().out
    assert cli.main([*argv, "--max-cache-len", "64"]) == 0
    assert "allocated at 64 tokens (--max-cache-len)" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--kv-cache", "dynamic"], ["--max-cache-len", "64"], []])
def test_auto_searches_decode_with_the_cache_options(argv, capsys):
    base = ["project", "--model", "tiny-llama", "--cards", "2", "--batch", "2", "--seq", "16", "--auto"]
    assert cli.main([*base, "--mode", "decode", *argv]) == 0
    out = capsys.readouterr().out
    assert "KV cache dynamic" in out if argv[:1] == ["--kv-cache"] else "KV cache static" in out
    if not argv:  # training: --recompute is the search's own (it was also passed through: exit 1)
        assert cli.main(base) == 0


@pytest.mark.parametrize("argv,message", [
    (["--mode", "decode", "--seq", "16", "--max-cache-len", "16"],
     "error: max_cache_len=16 cannot hold the step's 17 tokens (context + 1)"),
    (["--mode", "decode", "--kv-cache", "dynamic", "--max-cache-len", "64"],
     "error: max_cache_len sizes the static cache; the dynamic cache grows with the context"),
    (["--kv-cache", "static"], "error: kv_cache and max_cache_len apply to prefill and decode, not to training"),
    (["--mode", "prefill", "--max-cache-len", "0"], "error: max_cache_len must be a positive integer, got 0"),
])  # fmt: skip
def test_bad_cache_options_exit_2_with_one_line(argv, message, capsys):
    assert cli.main(["project", "--model", "tiny-llama", "--batch", "2", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
    with pytest.raises(P.ProjectionError, match="kv_cache must be one of static, dynamic, got 'paged'"):
        P.project("tiny-llama", mode="decode", batch=2, kv_cache="paged")
