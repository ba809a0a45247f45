"""The training stack (projection/stack.py): each option changes time and memory in the documented
direction and amount on small cases computed by hand; config.json models; --auto; planner output."""

import json

import pytest

from torch_biren import cli
from torch_biren import projection as P
from torch_biren.adapt import zoo
from torch_biren.projection import search

# tiny-llama: hidden 64, 2 layers, fp32; batch 2 x seq 16 on one replica -> one micro-batch of 2
TINY = dict(model="tiny-llama", cards=2, tp=2, batch=2, seq=16)
ACT = 2 * 16 * 64 * 4  # one micro-batch's hidden states, bytes


def test_sequence_parallel_splits_the_norm_activations_and_keeps_the_volume():
    from torch_biren.projection.stack import Stack

    off, on = P.project(**TINY), P.project(**TINY, sequence_parallel=True)
    # 4 hidden-size tensors per layer (norm inputs and outputs) split over tp=2: 2 layers x 4 x ACT / 2
    assert off.memory["activations"] - on.memory["activations"] == 2 * 4 * ACT // 2
    calls = {c.name: c.calls for c in on.collectives}
    assert calls == {"tensor-parallel all-gather (sequence parallel)": 2 * 4,  # 2 layers x (2 forward + 2 backward)
                     "tensor-parallel reduce-scatter (sequence parallel)": 2 * 2,  # forward
                     # backward, beside GEMMs (tp_backward_overlap): the input-gradient reduce-scatters and the
                     # re-gathers of the column-parallel inputs, which Megatron keeps split
                     "tensor-parallel reduce-scatter (backward, beside wgrad)": 2 * 2,
                     "tensor-parallel all-gather (SP re-gather, beside dgrad)": 2 * 2}
    assert all(c.nbytes == ACT for c in on.collectives)
    assert "sequence parallel on" in on.report()
    # the norms and the residual adds (forward adds, backward gradient sums: 4 a layer) run on seq / tp
    # tokens: half their time at tp=2, in the step and in the report's ops
    from torch_biren.ops.rms_norm import RMS_NORM

    import torch

    from torch_biren.projection.layers import layer_costs
    from torch_biren.sim.chip import load_chip

    ops_off, ops_on = dict(off.top_ops), dict(on.top_ops)
    for op in (RMS_NORM.name, RMS_NORM.backward_name):
        assert ops_on[op] == pytest.approx(ops_off[op] / 2), op
    lc = layer_costs("tiny-llama", 2, load_chip("BR166"), "train", 2, 16, dtype=torch.float32, need_fwd=True)
    adds = 2 * lc.busy["dense"]["aten::add.Tensor"]  # 2 layers' (the head's add stays whole)
    assert ops_off["aten::add.Tensor"] - ops_on["aten::add.Tensor"] == pytest.approx(adds / 2)
    separate = P.project(**TINY, stack=Stack(sequence_parallel=True, fused_projections=False))
    separate_off = P.project(**TINY, stack=Stack(fused_projections=False))
    # separate projections: their input gradients' sums are adds of the same size in the TP region, so
    # no add is split
    assert dict(separate.top_ops)["aten::add.Tensor"] == pytest.approx(dict(separate_off.top_ops)["aten::add.Tensor"])


def test_full_recompute_keeps_layer_inputs_and_reruns_the_forward():
    import torch

    from torch_biren.projection.layers import layer_costs
    from torch_biren.sim.chip import load_chip

    none, full = P.project(**TINY), P.project(**TINY, recompute="full")
    lc = layer_costs("tiny-llama", 2, load_chip("BR166"), "train", 2, 16, dtype=torch.float32, need_fwd=True)
    layer, base = lc.saved["dense"], lc.saved["base"]
    assert none.memory["activations"] == int(2 * layer + base)  # 2 layers, 1 micro-batch in flight
    assert full.memory["activations"] == int(2 * ACT + layer + base)  # 2 layer inputs + one layer's working set
    assert full.recompute_ns > 0
    assert full.compute_ns == pytest.approx(none.compute_ns + full.recompute_ns)
    tp_calls = lambda r: sum(c.calls for c in r.collectives)  # noqa: E731
    assert tp_calls(full) == tp_calls(none) * 6 / 4  # 2 more all-reduces per layer re-running the forward


def test_selective_recompute_frees_only_the_attention_statistics():
    none, sel = P.project(**TINY), P.project(**TINY, recompute="selective")
    heads_card = 4 // 2
    assert none.memory["activations"] - sel.memory["activations"] == 2 * 4 * 2 * heads_card * 16  # fp32 lse
    assert sel.step_ns > none.step_ns


@pytest.mark.parametrize("zero", [0, 1, 2, 3])
def test_zero_stages_shard_what_they_say(zero):
    kw = dict(model="qwen2.5-7b", cards=2, batch=2, seq=256)
    base, r = P.project(**kw, zero=0), P.project(**kw, zero=zero)
    params = base.memory["weights"] / 2  # bf16
    assert base.memory["optimizer states"] == pytest.approx(12 * params, rel=1e-6)
    assert base.memory["gradients"] == pytest.approx(4 * params, rel=1e-6)
    assert r.memory["optimizer states"] == pytest.approx(12 * params / (2 if zero >= 1 else 1), rel=1e-6)
    assert r.memory["gradients"] == pytest.approx(4 * params / (2 if zero >= 2 else 1), rel=1e-6)
    if zero == 3:
        assert r.memory["weights"] < base.memory["weights"] * 0.6
        assert "FSDP parameter all-gather" in r.comm_ns
    elif zero:
        assert set(r.comm_ns) == {"data-parallel gradient reduce-scatter", "data-parallel parameter all-gather"}
    else:
        assert set(r.comm_ns) == {"data-parallel gradient all-reduce"}


def test_overlap_hides_dp_reduction_behind_backward():
    kw = dict(model="qwen2.5-7b", cards=16, batch=16, seq=1024, zero=1)
    plain, over = P.project(**kw), P.project(**kw, overlap_grad_reduce=True, overlap_param_gather=True)
    assert plain.hidden_comm_ns == 0 and over.hidden_comm_ns > 0
    assert over.step_ns == pytest.approx(plain.step_ns - over.hidden_comm_ns, rel=1e-9)
    assert sum(over.comm_ns.values()) == pytest.approx(sum(plain.comm_ns.values()))
    assert "hidden communication" in over.report()


def test_context_parallel_halves_the_activations_and_multiplies_attention():
    kw = dict(model="qwen2.5-7b", batch=1, seq=8192)
    one, two = P.project(**kw, cards=1), P.project(**kw, cards=2, cp=2)
    assert two.cp == 2 and "context-parallel K/V ring send/recv" in two.comm_ns
    assert two.memory["activations"] < 0.6 * one.memory["activations"]
    with pytest.raises(P.ProjectionError, match="2 x cp chunks"):
        P.project("qwen2.5-7b", cards=2, cp=2, seq=1001)


def test_config_json_round_trip_matches_the_catalogue(tmp_path):
    family, values = zoo.PUBLISHED["Qwen2.5-7B"]
    (tmp_path / "config.json").write_text(json.dumps({**values, "model_type": "qwen2",
                                                      "architectures": ["Qwen2ForCausalLM"]}))
    kw = dict(cards=4, batch=4, seq=512, tp=2)
    a, b = P.project("qwen2.5-7b", **kw), P.project(str(tmp_path), **kw)
    assert a.step_ns == b.step_ns and a.memory == b.memory and a.model_flops == b.model_flops


@pytest.mark.parametrize("name,model_type", [("Qwen2-57B-A14B", "qwen2_moe"), ("Mixtral-8x7B", "mixtral")])
def test_moe_config_json_round_trip_matches_the_catalogue(tmp_path, name, model_type):
    family, values = zoo.PUBLISHED[name]
    (tmp_path / "config.json").write_text(json.dumps({**values, "model_type": model_type}))
    kw = dict(cards=8, batch=4, seq=512, tp=2, ep=4)
    a, b = P.project(name.lower(), **kw), P.project(str(tmp_path), **kw)
    assert a.step_ns == b.step_ns and a.memory == b.memory and a.model_flops == b.model_flops
    assert a.moe is not None and a.comm_ns["expert-parallel all-to-all"] > 0


def test_gpt2_style_config_json(tmp_path):
    f = tmp_path / "config.json"
    f.write_text(json.dumps({"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257,
                             "n_positions": 1024}))
    r = P.project(str(f), cards=1, batch=1, seq=512)
    assert r.fits and r.step_ns > 0


def test_unknown_architecture_and_missing_fields_exit_2(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.json").write_text(json.dumps({"model_type": "gpt_oss", "architectures": ["G"]}))
    assert cli.main(["project", "--model", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "model_type 'gpt_oss' (G) is not an architecture the projection can build" in err and err.count("\n") == 1
    (tmp_path / "b.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    assert cli.main(["project", "--model", str(tmp_path / "b.json")]) == 2
    assert "lacks 'vocab_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads'" in capsys.readouterr().err
    # a Mixtral without its expert count is not given the HF class's default of 8
    mixtral = dict(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                   num_attention_heads=32, num_experts_per_tok=2)
    (tmp_path / "c.json").write_text(json.dumps({"model_type": "mixtral", **mixtral}))
    assert cli.main(["project", "--model", str(tmp_path / "c.json")]) == 2
    assert "(mixtral) lacks 'num_local_experts'" in capsys.readouterr().err
    assert cli.main(["project", "--model", str(tmp_path / "none")]) == 2
    assert "no such config.json or folder" in capsys.readouterr().err


def test_defaults_work_without_batch_and_say_what_would_fit(capsys):
    assert cli.main(["project", "--model", "qwen2.5-72b", "--cards", "8", "--tp", "8"]) == 0
    out = capsys.readouterr().out
    assert "global batch defaulted to 1" in out and "DOES NOT FIT" in out and "would fit with:" in out
    assert "Warning" not in out


def test_a_fix_suggested_for_a_non_fitting_step_fits():
    r = P.project("qwen2.5-7b", cards=8, tp=8 // 2, batch=64, seq=4096, dp=2)
    if not r.fits:
        assert r.suggestions
    r = P.project("llama-3-405b", cards=8192, chip="H100", batch=2048, seq=8192, tp=8, pp=16, micro_batch=1,
                  virtual_stages=8, sequence_parallel=True, zero=2)
    assert not r.fits and r.suggestions == [s for s in r.suggestions if "recompute full" in s or "zero" in s]
    assert P.project("llama-3-405b", cards=8192, chip="H100", batch=2048, seq=8192, tp=8, pp=16, micro_batch=1,
                     virtual_stages=8, sequence_parallel=True, zero=2, recompute="full").fits


def test_prefill_counts_kv_cache_and_decode_reports_bandwidth():
    pre = P.project("qwen2.5-7b", cards=1, mode="prefill", batch=1, seq=200_000)
    assert pre.memory["KV cache"] >= 28 * 2 * 200_000 * 4 * 128 * 2  # layers x K,V x tokens x kv heads x dim x bf16
    assert sum(pre.memory.values()) > pre.memory["weights"] + pre.memory["KV cache"]  # + the activations
    assert any("exceeds" in w for w in P.project("qwen2.5-7b", cards=1, mode="prefill", batch=1,
                                                  seq=200_000).warnings)
    dec = P.project("qwen2.5-7b", cards=1, mode="decode", batch=1, seq=2048)
    assert "GB/s achieved" in dec.report() and "MFU" not in dec.report().splitlines()[3]


def test_mfu_counts_causal_attention():
    r = P.project("qwen2.5-7b", cards=1, mode="prefill", batch=1, seq=32768)
    from torch_biren.projection.models import model_flops

    assert r.model_flops < model_flops("Qwen2.5-7B", 1, 32768, "prefill", 0, causal=False)


def test_auto_lists_fitting_configurations_and_rejections():
    found = search.search("qwen2.5-7b", cards=8, batch=8, seq=1024)
    assert found.results and all(r.fits for r in found.results)
    steps = [r.step_ns for r in found.results]
    assert steps == sorted(steps)
    assert "rejected:" in found.report()


def test_materialised_attention_kernels_move_the_score_matrix():
    from torch_biren.projection import attention
    from torch_biren.sim.chip import load_chip

    # 2 sequences x 2 heads, 16 queries x 16 keys, head dim 16, fp32: n = 1024 scores
    fwd, bwd = attention.kernels(2, 2, 16, 16, 16, "fp32", 0.1, load_chip("BR166"))
    n = 2 * 2 * 16 * 16
    assert fwd["attention QK^T (bmm)"].flops == 2 * 4 * 16 * 16 * 16  # the full matrix: no causal tile skipped
    assert fwd["attention softmax (fused scale-mask-softmax)"].bytes == n * 4 * 2  # read and write the scores
    assert fwd["attention dropout"].bytes == bwd["attention dropout backward"].bytes == n * (4 + 4 + 1)
    assert bwd["attention softmax backward"].bytes == n * 4 * 3  # read y and dy, write dx
    bmm = ("attention dP (bmm)", "attention dV (bmm)", "attention dQ (bmm)", "attention dK (bmm)")
    assert [bwd[k].flops for k in bmm] == [2 * 4 * 16 * 16 * 16] * 4  # twice the forward's two
    no_drop, _ = attention.kernels(2, 2, 16, 16, 16, "fp32", 0.0, load_chip("BR166"))
    assert "attention dropout" not in no_drop


def test_materialised_attention_replaces_the_flash_kernel_in_time_and_memory():
    from torch_biren.projection import attention
    from torch_biren.projection.stack import Stack
    from torch_biren.sim.chip import load_chip

    flash = P.project(**TINY)
    mat = P.project(**TINY, stack=Stack(attention="materialised", attention_dropout=0.1))
    # 2 layers keep, per micro-batch of 2 x 2 heads x 16 x 16 = 1024 fp32 scores: softmax out 4 B, dropout out
    # 4 B and mask 1 B, instead of the flash kernel's fp32 logsumexp (2 x 2 x 16 x 4 B)
    assert mat.memory["activations"] - flash.memory["activations"] == 2 * (1024 * 9 - 256)
    ops = dict(mat.top_ops)
    assert "attention softmax (fused scale-mask-softmax)" in ops
    assert not any("fused_attention" in op for op in ops)
    fwd, bwd = attention.kernels(2, 2, 16, 16, 16, "fp32", 0.1, load_chip("BR166"))
    flash_ops = dict(flash.top_ops)
    flash_ns = sum(ns for op, ns in flash_ops.items() if "fused_attention" in op)
    mat_ns = 2 * sum(c.ns for c in (*fwd.values(), *bwd.values()))  # 2 layers, one micro-batch
    assert mat.compute_ns - flash.compute_ns == pytest.approx(mat_ns - flash_ns, rel=1e-9)
    assert "attention materialised (dropout 0.1)" in mat.report()
    with pytest.raises(P.ProjectionError, match="attention must be one of flash, materialised"):
        Stack(attention="eager")
    with pytest.raises(P.ProjectionError, match="needs attention='materialised'"):
        Stack(attention_dropout=0.1)


def test_distributed_saved_activations_split_the_checkpoints_over_tp():
    from torch_biren.projection.stack import Stack

    st = Stack(distribute_saved_activations=True)
    full = P.project(**TINY, recompute="full")
    dist = P.project(**TINY, recompute="full", stack=st)
    assert full.memory["activations"] - dist.memory["activations"] == 2 * ACT // 2  # 2 layer inputs, half each
    gather = next(c for c in dist.collectives if c.name == "tensor-parallel all-gather (distributed saved activations)")
    assert gather.nbytes == ACT and gather.calls == 2  # one per layer before its recomputation
    assert dist.step_ns > full.step_ns
    none = P.project(**TINY, stack=st)  # no full recomputation: nothing is checkpointed, nothing changes
    assert none.memory == P.project(**TINY).memory and "saved activations" not in none.report()


def test_pipeline_scatter_gather_sends_a_tp_slice_and_gathers_it_inside_the_server():
    from torch_biren.projection.stack import Stack

    # tiny-llama on 4 cards: tp 2 x pp 2, one micro-batch of 2 x 16 tokens; 1F1B: 1 + 1 slots, 2 sends each
    kw = dict(model="tiny-llama", cards=4, tp=2, pp=2, batch=2, seq=16, micro_batch=2)
    plain, sg = P.project(**kw), P.project(**kw, stack=Stack(pipeline_scatter_gather=True))
    send = lambda r: next(c for c in r.collectives if c.name == "pipeline send/recv")  # noqa: E731
    assert send(plain).nbytes == ACT and send(sg).nbytes == ACT / 2 and send(sg).calls == send(plain).calls == 4
    gather = next(c for c in sg.collectives if c.name == "pipeline all-gather (scatter/gather)")
    assert gather.nbytes == ACT and gather.calls == 4 and gather.ranks == 2
    assert "pipeline scatter/gather" in sg.report()
    sp = P.project(**kw, stack=Stack(pipeline_scatter_gather=True, sequence_parallel=True))
    assert not any("scatter/gather" in c.name for c in sp.collectives)  # already split by sequence parallelism


# tiny-deepseek-v3 (fp32): hidden 64, 1 dense + 1 MoE layer, MLA with 4 heads, q_lora 32, kv_lora 32,
# qk nope 16 + rope 8, v 16; 4 experts (moe_inter 32), top-2, 1 shared; 2 x 16 = 32 tokens, one micro-batch
MLA = dict(model="tiny-deepseek-v3", cards=1, batch=2, seq=16)


def test_recomputing_norms_and_mla_up_projections_frees_their_outputs_and_reruns_them():
    import torch

    from torch_biren.ops.rms_norm import RMS_NORM
    from torch_biren.projection.layers import layer_costs
    from torch_biren.sim import costs
    from torch_biren.sim.chip import load_chip

    none = P.project(**MLA)
    norm = P.project(**MLA, recompute_modules="layernorm")
    up = P.project(**MLA, recompute_modules=["mla_up_proj"])
    # per layer: the two norms' outputs (64 wide) and MLA's q_a / kv_a norms' (32 + 32), 32 tokens, fp32
    assert none.memory["activations"] - norm.memory["activations"] == 2 * 32 * (2 * 64 + 32 + 32) * 4
    # per layer: q and k (4 heads x 24) and kv_b_proj's output (4 x (16 + 16)), v a view of it
    assert none.memory["activations"] - up.memory["activations"] == 2 * 32 * (4 * 24 + 4 * 24 + 4 * 32) * 4
    chip = load_chip("BR166")
    lc = layer_costs("tiny-deepseek-v3", 1, chip, "train", 2, 16, dtype=torch.float32)
    assert norm.recompute_ns == pytest.approx(lc.busy["dense"][RMS_NORM.name] + lc.busy["moe"][RMS_NORM.name])
    again = costs.gemm(32, 96, 32, dtype="fp32", chip=chip).ns + costs.gemm(32, 128, 32, dtype="fp32", chip=chip).ns \
        + 2 * costs.copy(32 * 96 * 4, "d2d", chip).ns  # q_b_proj, kv_b_proj, and q and k assembled again
    assert up.recompute_ns == pytest.approx(2 * again)
    assert norm.step_ns == pytest.approx(none.step_ns + norm.recompute_ns)
    assert "recompute modules mla_up_proj" in up.report()


def test_recomputing_the_moe_activation_frees_the_experts_swiglu_outputs():
    from torch_biren.sim import costs
    from torch_biren.sim.chip import load_chip

    none, act = P.project(**MLA), P.project(**MLA, recompute_modules="moe_act")
    # the MoE layer only: 32 tokens x top-2 rows x moe_inter 32, and the shared expert's 32 x 32
    assert none.memory["activations"] - act.memory["activations"] == (32 * 2 * 32 + 32 * 32) * 4
    chip = load_chip("BR166")
    assert act.recompute_ns == pytest.approx(costs.swiglu(64 * 32, "fp32", chip).ns + costs.swiglu(32 * 32, "fp32",
                                                                                                    chip).ns)
    with pytest.raises(P.ProjectionError, match="recompute_modules takes layernorm, mla_up_proj, moe_act; got mlp"):
        P.project(**MLA, recompute_modules="mlp")
    full = P.project(**MLA, recompute="full", recompute_modules="moe_act")  # full keeps layer inputs only
    assert full.memory == P.project(**MLA, recompute="full").memory


def test_fp8_activation_caching_halves_linear_inputs_and_costs_casts():
    import torch

    kw = dict(MLA, dtype=torch.bfloat16)
    none, fp8 = P.project(**kw), P.project(**kw, fp8_activations=True)
    # bf16 -> 1 byte: dense layer norm outputs 32 x 192, MLP SwiGLU output 32 x 128; attention output
    # 32 x 64 in E5M6 (half a byte saved); MoE layer: norms 32 x 192, gathered rows 64 x 64, routed SwiGLU
    # inputs 64 x 64 and output 64 x 32, shared inputs 32 x 64 and output 32 x 32, attention output
    dense = 32 * 192 + 32 * 128 + 32 * 64 / 2
    moe = 32 * 192 + 64 * 64 + 64 * 64 + 64 * 32 + 32 * 64 + 32 * 32 + 32 * 64 / 2
    assert none.memory["activations"] - fp8.memory["activations"] == dense + moe
    from torch_biren.sim import costs
    from torch_biren.sim.chip import load_chip

    chip = load_chip("BR166")
    fp8_n = [32 * 192, 32 * 128, 32 * 192, 64 * 64, 64 * 64, 64 * 32, 32 * 64, 32 * 32]
    casts = sum(2 * costs.generic(n, n * 3, chip).ns for n in fp8_n) \
        + 2 * 2 * costs.generic(32 * 64, 32 * 64 * 3.5, chip).ns  # one cast each way; E5M6 1.5 bytes
    assert fp8.recompute_ns == pytest.approx(casts)  # the GEMMs stay bf16
    assert fp8.step_ns == pytest.approx(none.step_ns + casts)
    assert "activations cached in FP8 (GEMMs BF16)" in fp8.report()
    with pytest.raises(P.ProjectionError, match="fp8_activations caches a bf16 model's activations"):
        P.project(**MLA, fp8_activations=True)


def test_bf16_adam_moments_shrink_the_states_and_the_step():
    from torch_biren.sim import costs
    from torch_biren.sim.chip import load_chip

    kw = dict(model="qwen2.5-7b", cards=2, batch=2, seq=256)
    fp32, bf16 = P.project(**kw), P.project(**kw, moment_bytes=2)
    params = fp32.memory["weights"] / 2
    assert bf16.memory["optimizer states"] == pytest.approx(8 * params, rel=1e-6)  # fp32 master + 2 x bf16
    chip = load_chip("BR166")
    # the gradients' norm (read 4 bytes), Adam (read master, grad, m, v; write master, m, v: 28 bytes per
    # parameter, 20 with bf16 moments), the master weights copied to the bf16 ones (read 4, write 2)
    norm, copy = costs.generic(2 * params, 4 * params, chip).ns, costs.generic(0, 6 * params, chip).ns
    assert fp32.optimizer_ns == pytest.approx(norm + costs.generic(12 * params, 28 * params, chip).ns + copy, rel=1e-6)
    assert bf16.optimizer_ns == pytest.approx(norm + costs.generic(12 * params, 20 * params, chip).ns + copy, rel=1e-6)
    assert "AdamW moments bf16" in bf16.report()


def test_the_optimizer_step_runs_megatrons_passes():
    from torch_biren.projection.stack import Stack
    from torch_biren.sim import costs
    from torch_biren.sim.chip import load_chip

    kw = dict(model="qwen2.5-7b", cards=2, batch=2, seq=256)
    base = P.project(**kw)
    fp16 = P.project(**kw, grad_bytes=2, stack=Stack(loss_scaling=True))
    unclipped = P.project(**kw, stack=Stack(grad_clip=False))
    params, chip = base.memory["weights"] / 2, load_chip("BR166")
    g = lambda f, b: costs.generic(f * params, b * params, chip).ns  # noqa: E731  (per-parameter flops, bytes)
    # fp16 training: the fp16 gradients copied to fp32 main ones (read 2, write 4), unscaled and checked
    # (read and write 4), their norm (read 4), Adam (28), the master weights copied back (read 4, write 2)
    assert fp16.optimizer_ns == pytest.approx(g(0, 6) + g(1, 8) + g(2, 4) + g(12, 28) + g(0, 6), rel=1e-6)
    assert base.optimizer_ns - unclipped.optimizer_ns == pytest.approx(g(2, 4), rel=1e-6)
    assert "fp16 loss scaling" in fp16.report() and "no gradient clipping" in unclipped.report()


def test_dualpipe_doubles_the_parameters_holds_pp_plus_one_and_shrinks_the_bubble():
    import torch

    from torch_biren.projection.layers import layer_costs
    from torch_biren.projection.project import _dualpipe_bubble, _optimizer_ns
    from torch_biren.sim.chip import load_chip

    # by hand: pp 4, F 4, B 6, GEMMs 6 (W = 2): (4/2 - 1) x (F + B + B - 3W) = 10
    assert _dualpipe_bubble(10.0, 4.0, {"aten::mm": 6.0, "aten::add": 1.0}, 4, 1) == 10.0
    with pytest.raises(P.ProjectionError, match="schedule 'dualpipe' needs an even pp"):
        _dualpipe_bubble(10.0, 4.0, {}, 3, 1)
    # tiny-llama, pp 2 (one layer per stage), 4 micro-batches: 1F1B holds 2 in flight, DualPipe 3
    kw = dict(model="tiny-llama", cards=2, pp=2, batch=4, seq=16, micro_batch=1)
    one, dual = P.project(**kw), P.project(**kw, schedule="dualpipe")
    for what in ("weights", "gradients", "optimizer states"):
        assert dual.memory[what] == 2 * one.memory[what]
    lc = layer_costs("tiny-llama", 1, load_chip("BR166"), "train", 1, 16, dtype=torch.float32, need_fwd=True)
    layer, base = lc.saved["dense"], lc.saved["base"]
    assert one.memory["activations"] == int(2 * layer + base) and dual.memory["activations"] == int(3 * layer + base)
    assert dual.bubble_ns == 0.0 < one.bubble_ns  # pp / 2 - 1 = 0: DualPipe's bubble vanishes at pp 2
    assert dual.compute_ns == pytest.approx(one.compute_ns)  # the same micro-batches' work
    assert "DualPipe schedule" in dual.report()
    # dp 2: both stages' gradients reduced, and both stepped by the optimizer
    kw = dict(kw, cards=4, batch=8)
    one, dual = P.project(**kw), P.project(**kw, schedule="dualpipe")
    grads = lambda r: next(c for c in r.collectives if c.name.startswith("data-parallel gradient"))  # noqa: E731
    assert grads(dual).nbytes == 2 * grads(one).nbytes
    params = one.memory["optimizer states"] / 8  # fp32 model: two moments per parameter
    assert dual.optimizer_ns == pytest.approx(_optimizer_ns(2 * params, load_chip("BR166"), dual.stack, 4))


def _gemm_ns(r):
    from torch_biren.projection.project import _GEMMS

    return sum(ns for op, ns in r.top_ops if op in _GEMMS)


def test_backward_tp_collectives_run_beside_the_column_parallel_gemms():
    from torch_biren.projection.stack import Stack

    on, off = P.project(**TINY), P.project(**TINY, stack=Stack(tp_backward_overlap=False))
    by = lambda r: {c.name: c for c in r.collectives}  # noqa: E731
    main_on, main_off = by(on)["tensor-parallel all-reduce"], by(off)["tensor-parallel all-reduce"]
    beside = by(on)["tensor-parallel all-reduce (backward, beside wgrad)"]
    assert (main_off.calls, main_on.calls, beside.calls) == (2 * 4, 2 * 2, 2 * 2)  # 2 layers x 2 backward moved
    assert main_on.ns + beside.ns == pytest.approx(main_off.ns) and main_on.exposed_ns == main_on.ns
    # tiny-llama's column-parallel linears (q, k, v: 64 x 16 x (4 + 2 + 2); gate, up: 2 x 64 x 128) against the
    # row-parallel ones (o: 64 x 64, down: 128 x 64): 2/3 of the linear FLOPs; their weight-gradient GEMMs a
    # third of that, which the backward all-reduces hide behind, at 1 - share of the compute units
    share = on.chip.comm_units_share
    hidden = min(beside.ns, 2 / 3 * _gemm_ns(on) / 3 / (1 - share))
    assert beside.exposed_ns == pytest.approx(beside.ns - hidden * (1 - share))
    assert off.step_ns - on.step_ns == pytest.approx(beside.ns - beside.exposed_ns)
    assert "TP backward beside GEMMs on" in on.report() and "TP backward beside GEMMs off" in off.report()
    # sequence parallel without it: the re-gathers wait with the other all-gathers
    sp = P.project(**TINY, stack=Stack(tp_backward_overlap=False, sequence_parallel=True))
    assert {c.name: c.calls for c in sp.collectives} == {"tensor-parallel all-gather (sequence parallel)": 2 * 6,
                                                         "tensor-parallel reduce-scatter (sequence parallel)": 2 * 4}


def test_unfused_gradient_accumulation_adds_every_micro_batch_after_the_first():
    from torch_biren.projection.models import param_counts
    from torch_biren.projection.project import _accumulate_ns
    from torch_biren.projection.stack import Stack
    from torch_biren.sim.chip import load_chip

    kw = dict(model="tiny-llama", cards=1, batch=8, seq=16, micro_batch=2)  # 4 micro-batches of 2 sequences
    unfused = Stack(grad_accumulation_fusion=False)
    fused, plain = P.project(**kw), P.project(**kw, stack=unfused)
    params = param_counts("tiny-llama")["total"]
    chip = load_chip("BR166")
    # fp32 model (tiny) and fp32 accumulation: read 4 + 4 bytes, write 4, per parameter and micro-batch after the first
    add = _accumulate_ns(params, 4, 4, chip)
    assert add > params * 12 / chip.hbm_peak_Bps * 1e9  # one memory-bound pass, at most the peak bandwidth
    assert plain.step_ns - fused.step_ns == pytest.approx(3 * add)
    assert dict(plain.top_ops)["(gradient accumulation: unfused adds)"] == pytest.approx(3 * add)
    assert "gradient accumulation unfused" in plain.report() and "gradient accumulation" not in fused.report()
    one = dict(kw, micro_batch=8)  # one micro-batch: nothing to accumulate
    assert P.project(**one, stack=unfused).step_ns == P.project(**one).step_ns
    # FSDP reduce-scatters every micro-batch: each card accumulates its shard
    sharded = dict(kw, cards=2, batch=16, zero=3)
    assert dict(P.project(**sharded, stack=unfused).top_ops)["(gradient accumulation: unfused adds)"] == \
        pytest.approx(3 * _accumulate_ns(params / 2, 4, 4, chip))


def test_overlapped_collectives_slow_the_compute_they_hide_behind():
    from torch_biren.sim.chip import load_chip

    # FSDP's gathers and reduce-scatters hidden behind the layers (tiny-llama over 2 cards, each layer's behind
    # the other's): with a share s of the units serving them, the compute under them runs at 1 - s, so each
    # hidden ns still costs s ns of the step
    kw = dict(model="tiny-llama", cards=2, batch=2, seq=16, zero=3, overlap_grad_reduce=True, overlap_param_gather=True)
    free = P.project(**kw, chip=load_chip("BR166").replace(comm_units_share=0.0))
    busy = P.project(**kw, chip=load_chip("BR166").replace(comm_units_share=0.25))
    hidden = sum(c.ns - c.exposed_ns for c in free.collectives)
    assert hidden > 0 and [c.ns for c in busy.collectives] == [c.ns for c in free.collectives]
    assert all(c.exposed_ns == pytest.approx(c.ns / 2) for c in free.collectives)  # half: 1 - 1 / 2 layers
    exposed = lambda r: sum(c.exposed_ns for c in r.collectives)  # noqa: E731
    assert exposed(busy) - exposed(free) == pytest.approx(0.25 * hidden)
    assert busy.step_ns - free.step_ns == pytest.approx(0.25 * hidden)
    assert "occupy 25% of the compute units" in "\n".join(busy.assumptions)


def test_hidden_dropout_writes_and_applies_two_masks_a_layer():
    from torch_biren.projection.stack import Stack
    from torch_biren.sim import costs
    from torch_biren.sim.chip import load_chip

    chip = load_chip("BR166")
    off, on = P.project(**TINY), P.project(**TINY, stack=Stack(hidden_dropout=0.1))
    n = 2 * 16 * 64  # one micro-batch's hidden states on each tp rank (no sequence parallelism: all of them)
    # per layer: forward, the two masks' 1-byte writes beside the residual adds; backward, two kernels
    # reading the fp32 gradient and the mask and writing the gradient (tiny-llama: fp32, 2 layers)
    fwd, bwd = 2 * costs.memory_ns(n, chip), 2 * costs.generic(n, n * (2 * 4 + 1), chip).ns
    assert on.step_ns - off.step_ns == pytest.approx(2 * (fwd + bwd))
    assert on.memory["activations"] - off.memory["activations"] == 2 * 2 * n  # 2 layers x 2 masks of 1 B
    assert "hidden dropout 0.1" in on.report()
    sp_off = P.project(**TINY, sequence_parallel=True)
    sp_on = P.project(**TINY, stack=Stack(hidden_dropout=0.1, sequence_parallel=True))
    assert sp_on.memory["activations"] - sp_off.memory["activations"] == 2 * 2 * n // 2  # 1/tp of the tokens
    with pytest.raises(P.ProjectionError, match="hidden_dropout"):
        Stack(hidden_dropout=1.0)


def test_fused_projections_run_q_k_v_and_gate_up_as_one_gemm_each():
    import torch

    from torch_biren.projection import layers
    from torch_biren.projection.models import config
    from torch_biren.projection.stack import Stack

    cfg = config("tiny-llama")
    h, heads, kv = cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads
    hd, inner = h // heads, cfg.intermediate_size
    runs = {f: [layers._run("tiny-llama", n, 0, 1, "train", 2, 16, 0, True, torch.float32, fuse_projections=f)
                for n in (1, 2)] for f in (False, True)}

    def layer(f, name):  # one layer's kernels of `name`: the 2-layer trace less the 1-layer one
        one, two = runs[f]
        return sum(k.name == name for k in two.kernels) - sum(k.name == name for k in one.kernels)

    def forward_mm_outputs(f):  # the GEMMs' output widths in one layer's forward
        one, two = runs[f]
        fwd = [k for k in two.kernels[:two.forward] if k.name == "aten::mm"]
        widths = [k.args[1][1].shape[1] for k in fwd]
        return widths[:len(widths) - sum(k.name == "aten::mm" for k in one.kernels[:one.forward])]

    # HF's module code: q, k, v, o, gate, up, down; fused: qkv, o, gate-up, down
    assert sorted(forward_mm_outputs(False)) == sorted([heads * hd, kv * hd, kv * hd, h, inner, inner, h])
    assert sorted(forward_mm_outputs(True)) == sorted([(heads + 2 * kv) * hd, h, 2 * inner, h])
    assert layer(False, "aten::mm") == 3 * 7 and layer(True, "aten::mm") == 3 * 4  # forward, dgrad, wgrad
    # backward: HF adds q's, k's and v's input gradients (2 adds) and gate's and up's (1); fused, the
    # two splits' backward each concatenate instead
    assert layer(False, "aten::add.Tensor") - layer(True, "aten::add.Tensor") == 3
    assert layer(True, "aten::cat") - layer(False, "aten::cat") == 2
    kw = dict(model="tiny-llama", cards=1, batch=2, seq=16)
    fused, separate = P.project(**kw), P.project(**kw, stack=Stack(fused_projections=False))
    assert fused.step_ns < separate.step_ns
    assert fused.memory == separate.memory  # the same weights, gradients and saved activations
    assert "fused QKV and gate-up" in fused.report()
    assert "q, k, v and gate, up as separate GEMMs" in separate.report()


def test_materialised_attention_runs_at_the_chips_measured_fraction_of_the_modelled_time():
    from torch_biren.projection import attention
    from torch_biren.sim.chip import load_chip

    a100, br166 = load_chip("A100"), load_chip("BR166")
    shape = (2, 2, 16, 16, 16, "fp32", 0.1)
    fwd, bwd = attention.kernels(*shape, a100)
    mf, mb = attention._modelled(*shape, a100)
    eff = a100.spec["materialised_attention_efficiency"].value  # fitted to FlashAttention's measurement
    assert all(fwd[k].ns == pytest.approx(mf[k].ns / eff["fwd"]) for k in mf)
    assert all(bwd[k].ns == pytest.approx(mb[k].ns / eff["bwd"]) for k in mb)
    assert all(fwd[k].bytes == mf[k].bytes for k in mf)  # the work is the model's
    # no measurement for BR166: the model as is; a spec (or an override) gives one
    assert attention.kernels(*shape, br166)[0]["attention softmax (fused scale-mask-softmax)"].ns == \
        attention._modelled(*shape, br166)[0]["attention softmax (fused scale-mask-softmax)"].ns
    half = br166.replace(materialised_attention_efficiency={"fwd": 0.5, "bwd": 0.25})
    assert attention.kernels(*shape, half)[1]["attention dV (bmm)"].ns == \
        pytest.approx(4 * attention._modelled(*shape, br166)[1]["attention dV (bmm)"].ns)
