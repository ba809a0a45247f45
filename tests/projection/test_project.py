"""Projection of full-size models: agreement with the live device on a tiny model, sanity of the
scaling, the published GPU runs fitting memory and within +-15%, and bad input (exit status 2)."""

import pytest
import torch

from torch_biren import cli
from torch_biren import projection as P
from torch_biren.projection import published_runs
from torch_biren.projection.stack import Stack


def _live_step_ns(family, patched):
    from torch_biren import sim
    from torch_biren.adapt import zoo
    from torch_biren.ops import patch_model

    model = zoo.build(family).to("biren").train()
    if patched:
        patch_model(model)
    ids = torch.randint(0, zoo.VOCAB, (2, 16)).to("biren")
    model(ids, labels=ids).loss.backward()  # warm-up
    model.zero_grad(set_to_none=True)
    torch.biren.synchronize()
    t0 = sim.elapsed_ns(0)
    model(ids, labels=ids).loss.backward()
    torch.biren.synchronize()
    return sim.elapsed_ns(0) - t0


@pytest.mark.parametrize("family,patched", [("qwen2", False), ("qwen2", True), ("llama", True)])
def test_tiny_projection_agrees_with_the_live_device(family, patched, monkeypatch):
    import transformers.models.qwen2.modeling_qwen2 as modeling

    rope = modeling.apply_rotary_pos_emb
    if not patched and getattr(rope, "_biren", False):  # patch_model routes RoPE process-wide: undo it here
        monkeypatch.setattr(modeling, "apply_rotary_pos_emb", rope._original)
    live = _live_step_ns(family, patched)
    r = P.project(f"tiny-{family}", cards=1, mode="train", batch=2, seq=16, fused=patched,
                  stack=Stack(fused_projections=False))  # the live device runs HF's separate projections
    assert r.compute_ns == pytest.approx(live, rel=0.05)


def test_doubling_batch_doubles_compute():
    one = P.project("qwen2.5-7b", cards=1, batch=1, seq=1024)
    two = P.project("qwen2.5-7b", cards=1, batch=2, seq=1024)
    assert 1.8 <= two.compute_ns / one.compute_ns <= 2.2


@pytest.mark.slow
def test_more_cards_never_add_weight_memory_per_card():
    weights = [P.project("qwen2.5-72b", cards=c, batch=64, seq=1024, tp=min(c, 8), pp=max(1, c // 8 // 2) if c > 8 else 1
                         ).memory["weights"] for c in (1, 2, 4, 8, 16, 32)]
    assert all(b <= a for a, b in zip(weights, weights[1:])), weights


def test_a_config_that_cannot_fit_says_so():
    r = P.project("qwen2.5-72b", cards=1, batch=1, seq=2048)
    assert not r.fits and "DOES NOT FIT" in r.report()
    assert P.project("qwen2.5-7b", cards=8, mode="decode", batch=8, seq=2048, tp=4, dp=2).fits


# Rows the projection misses by more than +-15% in their papers' configurations, measured, not tuned
# away: strict, so a fix shows up as an unexpected pass (benchmarks/results/validation.md explains each).
_KNOWN_MISSES = {
    "Megatron GPT-175B, 1024 A100": "projects 162 vs 140 TFLOP/s (+15.5%) as April 2021's Megatron-LM ran by "
                                    "default (materialised attention, dropouts 0.1, pipeline scatter/gather, "
                                    "synchronous backward all-reduce, unfused gradient accumulation, fp16 loss "
                                    "scaling); the paper's own Table 1 row of the same shape (145.6B, TP 8 x PP 8, 96 "
                                    "micro-batches) measured 148 and projects at +8.7%, its Table 2 runs of this "
                                    "model +9.2 to +11.0% (published_runs.ADDED); the 140 is below Table 2's 141 at "
                                    "1,536 GPUs (PP 12, the same DP 16 and 96 micro-batches), whose bubble is larger",
}


@pytest.mark.parametrize("run", [pytest.param(r, marks=pytest.mark.xfail(strict=True, reason=_KNOWN_MISSES[r.name]))
                                 if r.name in _KNOWN_MISSES else r for r in published_runs.RUNS],
                         ids=lambda run: run.name)
def test_published_gpu_runs_fit_and_come_within_15_percent(run):
    tflops, r = published_runs.tflops_per_gpu(run)
    assert r.fits, f"{run.name}: {sum(r.memory.values()) / 2**30:.1f} GiB of {r.capacity / 2**30:.1f}"
    assert tflops == pytest.approx(run.tflops_per_gpu, rel=0.15), run.name


def test_interleaved_schedule_shrinks_the_bubble():
    kw = dict(model="llama-3-405b", cards=256, chip="H100", batch=64, seq=2048, tp=8, pp=16, micro_batch=1)
    plain, inter = P.project(**kw), P.project(**kw, virtual_stages=4)
    assert inter.bubble_ns == pytest.approx(plain.bubble_ns / 4, rel=1e-6)
    assert inter.comm_ns["pipeline send/recv"] > plain.comm_ns["pipeline send/recv"]
    assert "interleaved 1F1B with 4 virtual stages" in inter.report()
    with pytest.raises(P.ProjectionError, match="needs pp > 1"):
        P.project("qwen2.5-7b", cards=1, virtual_stages=2)


def test_cluster_training_prints_mfu_communication_and_checkpoint():
    r = P.project("gpt-100b", cards=1024, batch=1024, seq=2048, tp=8, pp=8, recompute=True, storage_GBps=20)
    text = r.report()
    for part in ("MFU", "communication", "checkpoint", "restore", "data-parallel"):
        assert part in text
    assert 0 < r.comm_share < 1 and r.checkpoint["restore_s"] == pytest.approx(r.checkpoint["bytes"] / 20e9)


def test_moe_says_routing_is_balanced():
    r = P.project("qwen3-30b-a3b", cards=8, mode="decode", batch=8, seq=1024, tp=4, ep=2, dp=2)
    assert "routing is balanced" in r.report()
    assert "expert-parallel all-to-all" in r.comm_ns


@pytest.mark.parametrize("argv,message", [
    (["--model", "qwen9"], "error: unknown model 'qwen9'; known: Llama-3-8B"),
    (["--model", "qwen2.5-7b", "--chip", "BR999"], "error: unknown chip 'BR999'"),
    (["--model", "qwen2.5-7b", "--chip", "BR110"], "error: "),
    (["--model", "qwen2.5-7b", "--cards", "8", "--tp", "3"], "error: tp=3 x pp=1 does not divide 8 cards"),
    (["--model", "qwen2.5-7b", "--cards", "8", "--tp", "8"], "error: tp=8 does not divide the 28 attention heads"),
    (["--model", "qwen2.5-7b", "--cards", "4", "--batch", "6"], "error: dp=4 does not divide the global batch of 6"),
    (["--model", "qwen2.5-7b", "--cards", "0"], "error: cards must be a positive integer, got 0"),
    (["--model", "qwen2.5-7b", "--batch", "-2"], "error: batch must be a positive integer, got -2"),
    (["--model", "qwen2.5-7b", "--seq", "0"], "error: seq must be a positive integer, got 0"),
    (["--model", "qwen2.5-7b", "--mode", "serve"], "error: mode must be one of train, prefill, decode, got 'serve'"),
    (["--model", "qwen2.5-7b", "--ep", "2", "--cards", "2"], "error: ep=2 needs a mixture-of-experts model"),
    (["--model", "qwen2.5-7b", "--network", "carrier-pigeon", "--cards", "16", "--batch", "16"], "error: unknown network"),
])  # fmt: skip
def test_bad_input_exits_2_with_one_line(argv, message, capsys):
    assert cli.main(["project", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
