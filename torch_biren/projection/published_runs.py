"""Published GPU runs: RUNS (reference/published-runs.md), which a projection must reproduce within
+-15% while fitting memory, each with its published model, parallelism, batch and training stack and
the FLOPs its per-GPU figure counts; ADDED, further runs found and sourced for issue 13 (training and
inference, A100 and H100, dense and MoE), whose errors are reported as they come. No BR166
measurement is public; these check the projection method on chips whose specs are known."""

import os
from typing import Callable, NamedTuple

from .project import project
from .stack import Stack

HERE = os.path.dirname(os.path.abspath(__file__))


def megatron_flops(batch, seq, layers, hidden, vocab):
    """Narayanan et al. 2021, eq. 3 (with activation recomputation), the FLOPs their per-GPU figure counts."""
    return 96 * batch * seq * layers * hidden**2 * (1 + seq / (6 * hidden) + vocab / (16 * layers * hidden))


class Run(NamedTuple):
    name: str
    kwargs: dict  # project() arguments: the model, parallelism, batch and training stack the paper describes
    tflops_per_gpu: float  # published
    flops: Callable  # Result -> FLOPs counted by the published figure
    settings: str = ""  # where the settings come from, and what the paper leaves unsaid


# Narayanan et al. 2021: fp16 (gradients all-reduced in fp16, Megatron's default without
# --accumulate-allreduce-grads-in-fp32), full activation recomputation, no distributed optimizer (it
# came later), the data-parallel all-reduce after backward; Table 1's TP x PP, batch and GPUs. No flash
# attention (2022): Megatron's CoreAttention materialises the scores, with its fused scale-mask-softmax
# and attention dropout at Megatron's default --attention-dropout 0.1 (megatron/arguments.py), hidden
# dropout at its default --hidden-dropout 0.1 (bias_dropout_add after attention and the MLP). Pipeline
# sends scattered over the TP ranks and gathered inside the receiving server (sec. 4.1): Megatron-LM's
# default (--no-scatter-gather-tensors-in-pipeline is store_false into scatter_gather_tensors_in_pipeline;
# p2p_communication.py splits every send by the TP size unless sequence parallelism already did). The
# plain 1F1B schedule: sec. 5.1 says its runs use the interleaved schedule but gives no factor, so the rows
# run without it (benchmarks/validation.py shows them interleaved by 2 and 4). The code of April 2021
# (NVIDIA/Megatron-LM history) had neither the asynchronous backward all-reduce beside the weight-gradient
# GEMM (async_tensor_model_parallel_allreduce, September 2021) nor gradient accumulation fusion (February
# 2022): each micro-batch's fp16 gradients were added into the accumulated ones (stack.py). Korthikanti et
# al. 2022 ran the same code path a year later (still without flash attention): ADDED's Megatron 2022 rows.
MEGATRON_2021 = Stack(attention="materialised", attention_dropout=0.1, hidden_dropout=0.1, pipeline_scatter_gather=True,
                      tp_backward_overlap=False, grad_accumulation_fusion=False, loss_scaling=True)
_MEGATRON = dict(chip="A100", seq=2048, tp=8, micro_batch=1, recompute="full", grad_bytes=2, stack=MEGATRON_2021)
_MEGATRON_NOTE = ("full recompute, fp16 grads and loss scaling, no overlap, materialised attention (dropout 0.1), hidden dropout "
                  "0.1, pipeline scatter/gather (Megatron-LM's default), gradient accumulation unfused (April 2021's "
                  "code)")
# Llama 3 (Dubey et al. 2024, sec. 3.3.2): TP 8, PP 16, an interleaved 1F1B schedule (126 layers in
# 16 x 8 one-layer virtual stages), 16M tokens per batch, FSDP sharding optimizer states and gradients
# but not resharding weights after forward (ZeRO-2 here), communication overlapped. The paper does
# not state the recomputation: without it the projection does not fit 80 GB (80.3 GiB), so these
# rows use full recomputation, the projection's own suggestion.
_LLAMA3 = dict(model="llama-3-405b", chip="H100", seq=8192, tp=8, pp=16, micro_batch=1, virtual_stages=8,
               sequence_parallel=True, zero=2, overlap_grad_reduce=True, overlap_param_gather=True,
               tp_comm_overlap=True, recompute="full")
_LLAMA3_NOTE = ("TP 8, PP 16 interleaved x 8, SP, ZeRO-2 (FSDP without resharding), overlap on; recompute full "
                "(paper silent; none does not fit)")

RUNS = [
    Run("Megatron GPT-175B, 1024 A100", dict(_MEGATRON, model="gpt-175b", cards=1024, batch=1536, pp=8), 140,
        lambda r: megatron_flops(1536, 2048, 96, 12288, 51200), "TP 8, PP 8, " + _MEGATRON_NOTE),
    Run("Megatron GPT-1T, 3072 A100", dict(_MEGATRON, model="gpt-1t", cards=3072, batch=3072, pp=64), 163,
        lambda r: megatron_flops(3072, 2048, 128, 25600, 51200), "TP 8, PP 64, " + _MEGATRON_NOTE),
    Run("Llama 3 405B, 8192 H100 (DP 64)", dict(_LLAMA3, cards=8192, batch=2048), 430, lambda r: r.model_flops,
        _LLAMA3_NOTE),
    Run("Llama 3 405B, 16384 H100 (DP 128)", dict(_LLAMA3, cards=16384, batch=2048), 400, lambda r: r.model_flops,
        _LLAMA3_NOTE),
    Run("Llama 3 405B, 16384 H100 (CP 16, seq 131072)", dict(_LLAMA3, cards=16384, batch=128, seq=131072, cp=16), 380,
        lambda r: r.model_flops, _LLAMA3_NOTE + "; CP 16, 16M tokens per batch"),
    # MegaScale (Jiang et al. 2024): 175B on 12,288 GPUs, batch 6144, 55.2% MFU (of 312 TFLOP/s), Megatron
    # with sequence parallelism and TP/PP/DP communication overlapped; the paper's table gives GPUs and
    # batch, not the TP x PP split (TP 8 x PP 8 assumed, no recomputation stated).
    Run("MegaScale 175B, 12288 A100", dict(model="gpt-175b", cards=12288, chip="A100", batch=6144, seq=2048, tp=8,
                                           pp=8, micro_batch=1, sequence_parallel=True, zero=1,
                                           overlap_grad_reduce=True, overlap_param_gather=True,
                                           tp_comm_overlap=True), 0.552 * 312, lambda r: r.model_flops,
        "TP 8 x PP 8 assumed (not in the paper's table), SP, distributed optimizer, overlap on, no recompute"),
]  # fmt: skip


def tflops_per_gpu(run):
    """(projected TFLOP/s per GPU, the projection's Result) for `run`."""
    r = project(**run.kwargs)
    return run.flops(r) / (r.step_ns * 1e-9) / run.kwargs["cards"] / 1e12, r


# Runs added for issue 13 item 5, each with its source; projected as their papers describe them, nothing
# tuned on them, their errors reported as they come (not asserted within a tolerance).
class Added(NamedTuple):
    name: str
    kwargs: dict  # project() arguments (generation rows: also "generate": (prompt tokens, new tokens))
    figure: float  # published
    unit: str  # UNITS
    source: str
    setup: str  # hardware, model, parallel configuration as published, and what the projection assumes
    flops: Callable = None  # Result -> FLOPs counted by the published figure (TFLOP/s rows)


UNITS = ("TFLOP/s per GPU", "tokens/s per GPU", "output tokens/s per GPU", "s per iteration")


def _config(name):
    """A model shipped as an HF config.json in published/ beside this file (project() takes the path)."""
    return os.path.join(HERE, "published", f"{name}.json")


# BLOOM (bigscience-workshop/bigscience train/tr11-176B-ml/tr11-176B-ml.slurm): TP 4, PP 12, micro-batch 2,
# global batch 2048, --checkpoint-activations, bf16 with DeepSpeed's BF16 optimizer (its own ZeRO-1),
# vocabulary padded to 250,880; no dropout (BLOOM's config: attention_dropout 0.0), Megatron-DeepSpeed's
# fused softmax (no flash attention in 2022). Its mpu layers run the backward all-reduce synchronously
# (copy_to_tensor_model_parallel_region), and DeepSpeed's BF16 optimizer adds each micro-batch's bf16
# gradients into fp32 ones (unfused accumulation, fp32 gradients).
_BLOOM = dict(model="bloom-176b", cards=384, chip="A100", batch=2048, seq=2048, tp=4, pp=12, micro_batch=2,
              recompute=True, zero=1, stack=Stack(attention="materialised", tp_backward_overlap=False,
                                                  grad_accumulation_fusion=False))
# OPT (facebookresearch/metaseq metaseq/launcher/opt_baselines.py, opt_job_constants.py): 175b with
# --model-parallel-size 8, --ddp-backend fully_sharded --no-reshard-after-forward (parameters gathered once
# per step and kept for backward: ZeRO-2 semantics), --update-freq 1 (no gradient accumulation),
# --checkpoint-activations --distribute-checkpointed-activations, --memory-efficient-fp16 (fp16 gradients),
# --dropout 0.1 --attention-dropout 0.1; the paper's 2M-token batch on 124 replicas: 8 sequences each.
_OPT = dict(model="gpt-175b", cards=992, chip="A100", batch=992, seq=2048, tp=8, micro_batch=8, recompute=True,
            zero=2, grad_bytes=2, overlap_param_gather=True, overlap_grad_reduce=True,
            stack=Stack(attention="materialised", attention_dropout=0.1, hidden_dropout=0.1,
                        distribute_saved_activations=True,
                        tp_backward_overlap=False))  # assumed: metaseq's 2021 Megatron fork (fairseq_v2 branch)
# MPT (mosaicml/llm-foundry scripts/train/benchmarking/README.md, "H100 80GB BF16" table): FSDP FULL_SHARD,
# amp_bf16, the rows without activation checkpointing; MPT is GPT-style (4h GELU MLP, ALiBi, tied embeddings,
# vocabulary 50,368), written as a GPT-2-style config.json.
_MPT = dict(chip="H100", seq=2048, zero=3, overlap_param_gather=True, overlap_grad_reduce=True)
# TensorRT-LLM docs/source/performance.md (v0.6.1), "A100 GPUs (FP16)" peak-throughput table:
# gptSessionBenchmark, a static batch (the prompts prefilled together, then the new tokens decoded
# together); LLaMA 7B's shape as Llama-2-7B's config.json. Eager decode steps (graphs=False): that
# gptSessionBenchmark runs its GptSession with CUDA graphs only under --enable_cuda_graph (off by
# default), and the document's benchmark commands do not pass it.
_TRT = dict(model=_config("llama_7b"), cards=1, chip="A100", graphs=False)

# Korthikanti et al. 2022 (arXiv 2205.05198), Table 3's GPT models on Selene's A100 80GB with Megatron-LM
# (fp16, seq 2048, vocabulary 51,200, TP 8, micro-batch 1 (22B: 4), data-parallel size 1): end-to-end
# iteration times with full recomputation and with sequence parallelism + selective recomputation, as
# calculon-ai/calculon's calculon/megatron/validation.py quotes them from the paper (kProfile) beside the
# execution files it validates (validation/<model>_{full,seqsel}.json: GPUs, TP, PP, batch, micro-batch,
# interleaving). Legacy Megatron-LM's code path as in the 2021 rows: materialised attention (Megatron's
# default dropout 0.1), the scatter/gather of pipeline sends (unused under sequence parallelism); by then
# the backward all-reduce (sequence parallel: reduce-scatter, and the input's re-gather) ran beside the
# GEMMs by default, and gradient accumulation fusion, merged in spring 2022, applied only with fp32
# accumulation (--accumulate-allreduce-grads-in-fp32) until September 2022: these fp16 runs add each
# micro-batch's gradients unfused.
MEGATRON_2022 = MEGATRON_2021.with_(tp_backward_overlap=True)
_KORTHIKANTI = {  # model, GPUs, PP, batch, micro-batch, virtual stages, (full, seq+sel) seconds per iteration
    "22B": (_config("megatron_22b"), 8, 1, 4, 4, 1, (1.42, 1.10)),
    "175B": ("gpt-175b", 64, 8, 64, 1, 3, (18.13, 13.75)),
    "530B": (_config("megatron_530b"), 280, 35, 280, 1, 3, (49.05, 37.83)),
    "1T": ("gpt-1t", 512, 64, 512, 1, 1, (94.42, 71.49)),
}
_KORTHIKANTI_SOURCE = ("Korthikanti et al. 2022, Reducing Activation Recomputation in Large Transformer Models, arXiv "
                       "2205.05198 (Table 3's configurations; iteration times as calculon-ai/calculon "
                       "calculon/megatron/validation.py quotes them, with its validation/*.json execution files)")


def _korthikanti(name, mode, dp=1, seconds=None):
    model, gpus, pp, batch, mb, v, times = _KORTHIKANTI[name]
    full = mode == "full"
    cards, batch = gpus * dp, batch * dp
    kw = dict(model=model, cards=cards, chip="A100", seq=2048, tp=8, pp=pp, batch=batch, micro_batch=mb,
              virtual_stages=v, grad_bytes=2, stack=MEGATRON_2022, recompute="full" if full else "selective",
              sequence_parallel=not full)
    how = "full recompute" if full else "sequence parallel + selective recompute"
    sched = f"interleaved x {v}" if v > 1 else ("1F1B" if pp > 1 else "no pipeline")
    where = "Korthikanti 2022" if dp == 1 else f"DP {dp}; Korthikanti 2022 sec. 6.3"
    return Added(f"Megatron GPT-{name}, {cards} A100 ({how}; {where})", kw,
                 seconds or times[0 if full else 1], "s per iteration", _KORTHIKANTI_SOURCE,
                 f"{cards} x A100 80GB, TP 8 x PP {pp} ({sched}), DP {dp}, batch {batch}, micro-batch {mb}, {how}, "
                 "fp16, materialised attention (dropout 0.1), hidden dropout 0.1, backward TP collectives beside the "
                 "GEMMs, gradient accumulation unfused" + ("" if not full or pp == 1 else ", pipeline scatter/gather")
                 + "; GPT's 4h GELU MLP written as SwiGLU of the same FLOPs")


# Korthikanti et al. 2022, Table 4: the forward + backward of one transformer layer of the 22B model (Table
# 3: TP 8, micro-batch 4, seq 2048), in ms, by (recompute, sequence parallel): a kernel-level check below
# the iteration times, without pipeline or data parallelism.
KORTHIKANTI_LAYER_MS = {("none", False): 19.6, ("none", True): 19.0, ("full", False): 27.2,
                        ("selective", False): 20.9, ("selective", True): 20.3}


def layer_ms(recompute, sequence_parallel):
    """The projection's forward + backward of one layer in Table 4's setting, in ms: the 22B model's step
    less a 24-layer copy's, over the 24 layers between, each without the optimizer step (which grows
    with the layers' parameters); what a layer adds, its tensor-parallel collectives' exposed time too."""
    import json
    import tempfile

    with open(_config("megatron_22b")) as f:
        raw = json.load(f)
    steps = []
    with tempfile.TemporaryDirectory() as tmp:
        for layers in (raw["n_layer"], raw["n_layer"] // 2):
            path = os.path.join(tmp, f"{layers}.json")
            with open(path, "w") as f:
                json.dump(dict(raw, n_layer=layers), f)
            kw = dict(_korthikanti("22B", "full").kwargs, model=path, recompute=recompute,
                      sequence_parallel=sequence_parallel)
            r = project(**kw)
            steps.append(r.step_ns - r.optimizer_ns)
    return (steps[0] - steps[1]) / (raw["n_layer"] - raw["n_layer"] // 2) / 1e6


# Narayanan et al. 2021 (arXiv 2104.04473) measured beyond the two reference rows: Table 1 (sec. 5.1,
# weak scaling from 1.7B to 1T parameters; its last row is the reference GPT-1T row) and Table 2's PTD-P
# rows (sec. 5.2, GPT-3 175B and the 530B model at a fixed batch on 1, 2 and 4 times the GPUs,
# micro-batch 1), run as the reference rows are (MEGATRON_2021). The paper's text was read in a
# transcription found in the code index. Table 1 gives TP, PP, GPUs and batch but not the micro-batch
# (micro-batch 1 here, as Table 2 and sec. 5.3-5.4 use; sec. 5.5 finds 2 best for a 91B model); sec. 5.1
# names the interleaved schedule without its factor, so these rows run plain 1F1B as the reference rows
# do (benchmarks/validation.py shows interleaving's effect).
_NARAYANAN_T1 = [  # model, heads, hidden, layers, TP, PP, GPUs, batch, TFLOP/s per GPU
    ("1.7b", 24, 2304, 24, 1, 1, 32, 512, 137), ("3.6b", 32, 3072, 30, 2, 1, 64, 512, 138),
    ("7.5b", 32, 4096, 36, 4, 1, 128, 512, 142), ("18.4b", 48, 6144, 40, 8, 1, 256, 1024, 135),
    ("39.1b", 64, 8192, 48, 8, 2, 512, 1536, 138), ("76.1b", 80, 10240, 60, 8, 4, 1024, 1792, 140),
    ("145.6b", 96, 12288, 80, 8, 8, 1536, 2304, 148), ("310.1b", 128, 16384, 96, 8, 16, 1920, 2160, 155),
    ("529.6b", 128, 20480, 105, 8, 35, 2520, 2520, 163),
]
_NARAYANAN_T2 = [  # model, hidden, layers, PP, batch, ((GPUs, TFLOP/s per GPU), ...); TP 8, micro-batch 1
    ("175B", 12288, 96, 12, 1536, ((384, 153), (768, 149), (1536, 141))),
    ("530B", 20480, 105, 35, 2240, ((560, 171), (1120, 167), (2240, 159))),
]
_NARAYANAN_SOURCE = ("Narayanan et al. 2021, Efficient Large-Scale Language Model Training on GPU Clusters Using "
                     "Megatron-LM, arXiv 2104.04473")


def _narayanan(label, model, hidden, layers, tp, pp, gpus, batch, tflops, table):
    kw = dict(_MEGATRON, model=model, cards=gpus, batch=batch, tp=tp, pp=pp)
    dp = gpus // (tp * pp)
    return Added(f"Megatron GPT-{label}, {gpus} A100 (Narayanan 2021 {table})", kw, tflops, "TFLOP/s per GPU",
                 f"{_NARAYANAN_SOURCE}, {table}",
                 f"{gpus} x A100 80GB, TP {tp} x PP {pp} x DP {dp}, batch {batch}, micro-batch 1"
                 f"{' (not stated in Table 1)' if table == 'Table 1' else ''}, " + _MEGATRON_NOTE
                 + ("; the plain 1F1B schedule (sec. 5.1's interleaving factor is not given)" if pp > 1 else ""),
                 lambda r, b=batch, l=layers, h=hidden: megatron_flops(b, 2048, l, h, 51200))


_NARAYANAN = [_narayanan(name.upper(), _config("megatron_530b" if name == "529.6b" else f"megatron_{name}"), h, l, tp,
                         pp, n, b, t, "Table 1") for name, _, h, l, tp, pp, n, b, t in _NARAYANAN_T1]
_NARAYANAN += [_narayanan(name, "gpt-175b" if name == "175B" else _config("megatron_530b"), h, l, 8, pp, n, b, t,
                          "Table 2, PTD-P") for name, h, l, pp, b, points in _NARAYANAN_T2 for n, t in points]


ADDED = [
    Added("BLOOM-176B, 384 A100 (Megatron-DeepSpeed)", _BLOOM, 150, "TFLOP/s per GPU",
          "bigscience-workshop/bigscience train/tr11-176B-ml (tr11-176B-ml.slurm; README: about 150 TFLOPs at "
          "global batch 2048); BLOOM paper arXiv 2211.05100 (48 nodes x 8 A100 80GB)",
          "384 x A100 80GB, TP 4 x PP 12 x DP 8, micro-batch 2, batch 2048, seq 2048, full recompute, ZeRO-1 "
          "(DeepSpeed BF16 optimizer), materialised attention without dropout; the figure in Megatron's convention "
          "(recomputed forward counted, padded vocabulary); ALiBi written as RoPE",
          lambda r: megatron_flops(2048, 2048, 70, 14336, 250880)),
    Added("OPT-175B, 992 A100 (metaseq, FSDP + Megatron TP)", _OPT, 147, "TFLOP/s per GPU",
          "Zhang et al. 2022, OPT, arXiv 2205.01068 (992 80GB A100, up to 147 TFLOP/s per GPU, FSDP with "
          "Megatron-LM tensor parallelism, 2M-token batch); facebookresearch/metaseq metaseq/launcher/"
          "opt_baselines.py and opt_job_constants.py (the training flags)",
          "992 x A100 80GB, TP 8 x DP 124, 8 sequences of 2048 per replica in one micro-batch, FSDP without "
          "resharding after forward (ZeRO-2 here), overlapped gathers and reduce-scatters, full recompute with the "
          "checkpoints distributed over TP, fp16 gradients, materialised attention with dropout 0.1, hidden dropout "
          "0.1; the backward all-reduce waiting (assumed: metaseq's Megatron fork); OPT's shape as GPT-175B (vocabulary 51,200 for 50,272; ReLU written as SwiGLU of the same FLOPs); model FLOPs "
          "convention assumed (the paper does not state it)",
          lambda r: r.model_flops),
    Added("DeepSeek-V3, 2048 H800 (EP 64, PP 16)",
          dict(model="deepseek-v3", cards=2048, chip="H800", batch=15360, seq=4096, pp=16, ep=64, micro_batch=1,
               zero=1, moe_options=dict(node_limit=4, overlap=True, comm_units_share=20 / 132, dispatch_bytes=1.0),
               schedule="dualpipe", recompute_modules=("layernorm", "mla_up_proj", "moe_act"), fp8_activations=True,
               moment_bytes=2),
          1e12 / (180e3 * 3600), "tokens/s per GPU",
          "DeepSeek-V3 technical report, arXiv 2412.19437: 180K H800 GPU hours per trillion tokens; 2048 H800, "
          "PP 16 (DualPipe), EP 64 over 8 nodes, ZeRO-1 DP, node-limited routing to 4 nodes, batch 15,360 x 4096",
          "BF16 GEMMs (the report's are FP8), DeepSeek's MoE recipe (projection.moe.DEEPSEEK_V3) and its memory "
          "recipe: DualPipe (sec. 3.2.1, Table 2: two stages per rank, PP + 1 micro-batches in flight), "
          "recomputation of RMSNorm and the MLA up-projections (sec. 3.2.3) and of the MoE SwiGLU output "
          "(sec. 3.3), Linear and MoE SwiGLU inputs cached in FP8, the attention output in E5M6, BF16 AdamW "
          "moments (sec. 3.3); FP8 caching modelled for memory only"),
    Added("MPT-7B, 8 H100 (llm-foundry FSDP)", dict(_MPT, model=_config("mpt_7b"), cards=8, batch=48, micro_batch=6),
          10643, "tokens/s per GPU",
          "mosaicml/llm-foundry scripts/train/benchmarking/README.md, H100 80GB BF16: 7b, seq 2048, 8 GPUs, "
          "micro-batch 6, no gradient accumulation, global batch 48, FULL_SHARD, no activation checkpointing: "
          "10,643 tokens/s per GPU (46.4% MFU)",
          "8 x H100 80GB, FSDP (ZeRO-3) with overlapped gathers and reduce-scatters, no recompute, fp32 gradient "
          "reduction; MPT-7B (d 4096, 32 layers, 32 heads) as a GPT-2-style config.json (GELU MLP written as "
          "SwiGLU of the same FLOPs, ALiBi as RoPE)"),
    Added("MPT-13B, 64 H100 (llm-foundry FSDP)",
          dict(_MPT, model=_config("mpt_13b"), cards=64, batch=128, micro_batch=2), 4800, "tokens/s per GPU",
          "mosaicml/llm-foundry scripts/train/benchmarking/README.md, H100 80GB BF16: 13b, seq 2048, 64 GPUs, "
          "micro-batch 2, no gradient accumulation, global batch 128, FULL_SHARD, no activation checkpointing: "
          "4,800 tokens/s per GPU (39.9% MFU)",
          "64 x H100 80GB (8 servers), FSDP (ZeRO-3) over all 64, overlapped, no recompute; MPT-13B (d 5120, 40 "
          "layers, 40 heads) as a GPT-2-style config.json"),
    # The same README's "A100 80GB" table, same code and settings (amp_bf16, FULL_SHARD, the rows without
    # activation checkpointing): the H100 rows' A100 counterparts.
    Added("MPT-7B, 8 A100 (llm-foundry FSDP)",
          dict(_MPT, chip="A100", model=_config("mpt_7b"), cards=8, batch=96, micro_batch=6), 4641,
          "tokens/s per GPU",
          "mosaicml/llm-foundry scripts/train/benchmarking/README.md, A100 80GB: 7b, seq 2048, 8 GPUs, micro-batch "
          "6, gradient accumulation 2, global batch 96, FULL_SHARD, no activation checkpointing: 4,641 tokens/s per "
          "GPU (64.2% MFU)",
          "8 x A100 80GB, FSDP (ZeRO-3) with overlapped gathers and reduce-scatters, no recompute; MPT-7B as in the "
          "H100 row"),
    Added("MPT-13B, 8 A100 (llm-foundry FSDP)",
          dict(_MPT, chip="A100", model=_config("mpt_13b"), cards=8, batch=48, micro_batch=2), 2262,
          "tokens/s per GPU",
          "mosaicml/llm-foundry scripts/train/benchmarking/README.md, A100 80GB: 13b, seq 2048, 8 GPUs, "
          "micro-batch 2, gradient accumulation 3, global batch 48, FULL_SHARD, no activation checkpointing: "
          "2,262 tokens/s per GPU (59.6% MFU)",
          "8 x A100 80GB, FSDP (ZeRO-3) with overlapped gathers and reduce-scatters, no recompute; MPT-13B as in "
          "the H100 row"),
    Added("LLaMA-7B generation, 1 A100 (TensorRT-LLM, batch 384, 128 -> 128)",
          dict(_TRT, batch=384, generate=(128, 128)), 5586, "output tokens/s per GPU",
          "NVIDIA/TensorRT-LLM docs/source/performance.md (v0.6.1), A100 GPUs (FP16): LLaMA 7B, batch 384, TP 1, "
          "input 128, output 128: 5,586 output tokens/s",
          "1 x A100 80GB, FP16 (projected in BF16: the same peak), the 384 prompts prefilled, then 128 decode "
          "steps over the growing KV cache (decode time integrated over the context by Simpson's rule); static "
          "KV cache (the projection's default, as TensorRT-LLM runs): allocated once at 128 + 128 tokens, each "
          "step writing its new K/V in place, attention over the actual length; the table's batch-60 128 -> 2048 "
          "row is left out: its FP16 KV cache alone (63.8 GiB) and the weights (12.6 GiB) exceed 80 GB; decode steps "
          "issued eagerly, not replayed as CUDA graphs (the projection's default for decode): v0.6.1's "
          "gptSessionBenchmark captures graphs only with --enable_cuda_graph, which the documented commands do not "
          "pass"),
    Added("LLaMA-7B generation, 1 A100 (TensorRT-LLM, batch 52, 2048 -> 128)",
          dict(_TRT, batch=52, generate=(2048, 128)), 591, "output tokens/s per GPU",
          "NVIDIA/TensorRT-LLM docs/source/performance.md (v0.6.1), A100 GPUs (FP16): LLaMA 7B, batch 52, TP 1, "
          "input 2048, output 128: 591 output tokens/s",
          "as the row above (static KV cache, allocated at 2048 + 128 tokens; eager decode steps, no CUDA graphs), "
          "with 2048-token prompts"),
] + [_korthikanti(name, mode) for name in _KORTHIKANTI for mode in ("full", "seqsel")] + [
    # sec. 6.3: the 530B configuration with 8-way data parallelism (the batch 8 times too): 39.15 s
    _korthikanti("530B", "seqsel", dp=8, seconds=39.15),
] + _NARAYANAN  # fmt: skip


def generation(kwargs):
    """Static-batch generation as gptSessionBenchmark runs it: one prefill of the prompts, then `new`
    decode steps, the decode step at context c for c from the prompt length up. The step time is
    linear in the context (the KV cache read), so Simpson's rule over the first, middle and last
    step is exact for it (up to the attention kernel's key-tile steps). kwargs' kv_cache (default
    static) is the cache every step runs with; a static one is allocated once at prompt + new
    tokens, so every part holds it whole. Returns (output tokens/s per card, [the projections, the
    last at the longest context])."""
    kw = {k: v for k, v in kwargs.items() if k not in ("generate", "graphs")}
    prompt, new = kwargs["generate"]
    if kw.get("kv_cache") in (None, "static"):
        kw["max_cache_len"] = prompt + new
    pre = project(**kw, mode="prefill", seq=prompt)  # the prompts run eagerly; kwargs' graphs is the decode's
    steps = [project(**kw, mode="decode", seq=prompt + c, graphs=kwargs.get("graphs"))
             for c in (0, (new - 1) // 2, new - 1)]
    decode_ns = new * (steps[0].step_ns + 4 * steps[1].step_ns + steps[2].step_ns) / 6
    return kw["batch"] * new / ((pre.step_ns + decode_ns) * 1e-9) / kw["cards"], [pre, *steps]


def project_error(entry):
    """(projected figure, published figure, signed relative error, Result) for an Added entry (or a Run); the
    error is the projected throughput's over the published (positive: the projection is faster), for
    times too.
    Generation rows: the Result (of the prefill and the decode steps) that needs the most memory."""
    if isinstance(entry, Run):
        got, r = tflops_per_gpu(entry)
        return got, entry.tflops_per_gpu, got / entry.tflops_per_gpu - 1, r
    if entry.unit not in UNITS:
        raise ValueError(f"unknown unit {entry.unit!r}")
    if entry.unit == "output tokens/s per GPU":
        got, parts = generation(entry.kwargs)
        r = max(parts, key=lambda p: sum(p.memory.values()))
        return got, entry.figure, got / entry.figure - 1, r
    r = project(**entry.kwargs)
    cards = entry.kwargs["cards"]
    if entry.unit == "TFLOP/s per GPU":
        got = entry.flops(r) / (r.step_ns * 1e-9) / cards / 1e12
    elif entry.unit == "s per iteration":  # a time: the error in throughput's sense (+: projected faster)
        got = r.step_ns * 1e-9
        return got, entry.figure, entry.figure / got - 1, r
    else:
        got = r.tokens_per_s / cards
    return got, entry.figure, got / entry.figure - 1, r


def error_table(entries=None):
    """Markdown rows: run, published, projected, error, fits memory (GiB per card of the capacity); the
    median and the worst |error|, named."""
    entries = ADDED if entries is None else entries
    rows, errs = ["| run | published | projected | error | fits (GiB per card) |", "|---|---|---|---|---|"], []
    for e in entries:
        got, want, err, r = project_error(e)
        unit = getattr(e, "unit", "TFLOP/s per GPU")
        errs.append((abs(err), e.name))
        used = sum(r.memory.values()) / 2**30
        fmt = ",.2f" if unit == "s per iteration" else ",.0f"
        rows.append(f"| {e.name} | {want:{fmt}} {unit} | {got:{fmt}} | {100 * err:+.1f}% | "
                    f"{'yes' if r.fits else 'NO'} ({used:.1f} of {r.capacity / 2**30:.1f}) |")
    errs.sort()
    mid = len(errs) // 2
    median = errs[mid][0] if len(errs) % 2 else (errs[mid - 1][0] + errs[mid][0]) / 2
    rows.append(f"\nMedian |error| {100 * median:.1f}%, worst {100 * errs[-1][0]:.1f}% ({errs[-1][1]}) over "
                f"{len(errs)} runs; {sum(e <= 0.15 for e, _ in errs)} within ±15%.")
    return "\n".join(rows)
