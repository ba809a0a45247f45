"""Published GPU training runs (reference/published-runs.md) that a projection must reproduce within
+-25%, each with its published model, parallelism and batch, and the FLOPs its per-GPU figure counts.
No BR166 measurement is public; these check the projection method on chips whose specs are known."""

from typing import Callable, NamedTuple

from .project import project


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
# came later), the data-parallel all-reduce after backward; Table 1's TP x PP, batch and GPUs.
_MEGATRON = dict(chip="A100", seq=2048, tp=8, micro_batch=1, recompute="full", grad_bytes=2)
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
        lambda r: megatron_flops(1536, 2048, 96, 12288, 51200), "TP 8, PP 8, full recompute, fp16 grads, no overlap"),
    Run("Megatron GPT-1T, 3072 A100", dict(_MEGATRON, model="gpt-1t", cards=3072, batch=3072, pp=64), 163,
        lambda r: megatron_flops(3072, 2048, 128, 25600, 51200), "TP 8, PP 64, full recompute, fp16 grads, no overlap"),
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
    kwargs: dict  # project() arguments
    figure: float  # published
    unit: str  # "TFLOP/s per GPU" (with flops) or "tokens/s per GPU"
    source: str
    setup: str  # hardware, model, parallel configuration as published, and what the projection assumes
    flops: Callable = None  # Result -> FLOPs counted by the published figure (TFLOP/s rows)


ADDED = [
    Added("BLOOM-176B, 384 A100 (Megatron-DeepSpeed)",
          dict(model="bloom-176b", cards=384, chip="A100", batch=2048, seq=2048, tp=4, pp=12, micro_batch=1,
               recompute=True, zero=1), 150, "TFLOP/s per GPU",
          "bigscience.notion.site/BigScience-176B-Model (training throughput about 150 TFLOPs; one replica on 48 "
          "GPUs); BLOOM paper arXiv 2211.05100 (48 nodes x 8 A100 80GB, global batch 2048 x 2048 tokens)",
          "384 x A100 80GB, TP 4 x PP 12 (48 GPUs per replica) x DP 8, batch 2048, seq 2048; the figure in "
          "Megatron's convention (recomputed forward counted), activation recomputation assumed; ZeRO stage 1 "
          "(the BLOOM paper's Megatron-DeepSpeed setup)",
          lambda r: megatron_flops(2048, 2048, 70, 14336, 250680)),
    Added("OPT-175B, 992 A100 (metaseq, FSDP + Megatron TP)",
          dict(model="gpt-175b", cards=992, chip="A100", batch=992, seq=2048, tp=8, micro_batch=1, recompute=True,
               zero=3, overlap_param_gather=True, overlap_grad_reduce=True),
          147, "TFLOP/s per GPU",
          "Zhang et al. 2022, OPT, arXiv 2205.01068: 992 80GB A100, 147 TFLOP/s per GPU, FSDP with Megatron-LM "
          "tensor parallelism, global batch about 2M tokens",
          "992 x A100 80GB; TP 8 x DP 124 assumed (the TP degree is not in the sources read), batch 992 x 2048 = "
          "2.03M tokens, OPT's 175B shape as GPT-175B (vocab 51,200 for 50,272); model FLOPs convention assumed; "
          "FSDP (fully sharded, as the paper states) with its default prefetch and overlapped gradient reduce-scatter",
          lambda r: r.model_flops),
    Added("DeepSeek-V3, 2048 H800 (EP 64, PP 16)",
          dict(model="deepseek-v3", cards=2048, chip="H800", batch=15360, seq=4096, pp=16, ep=64, micro_batch=1,
               zero=1, moe_options=dict(node_limit=4, overlap=True, comm_units_share=20 / 132, dispatch_bytes=1.0)),
          1e12 / (180e3 * 3600), "tokens/s per GPU",
          "DeepSeek-V3 technical report, arXiv 2412.19437: 180K H800 GPU hours per trillion tokens; 2048 H800, "
          "PP 16 (DualPipe), EP 64 over 8 nodes, ZeRO-1 DP, node-limited routing to 4 nodes, batch 15,360 x 4096",
          "BF16 GEMMs (the report's are FP8), 1F1B bubble (DualPipe's is smaller), DeepSeek's MoE recipe "
          "(projection.moe.DEEPSEEK_V3)"),
]  # fmt: skip


def project_error(entry):
    """(projected figure, published figure, signed relative error, Result) for an Added entry (or a Run)."""
    if isinstance(entry, Run):
        got, r = tflops_per_gpu(entry)
        return got, entry.tflops_per_gpu, got / entry.tflops_per_gpu - 1, r
    r = project(**entry.kwargs)
    cards = entry.kwargs["cards"]
    if entry.unit == "TFLOP/s per GPU":
        got = entry.flops(r) / (r.step_ns * 1e-9) / cards / 1e12
    elif entry.unit == "tokens/s per GPU":
        got = r.tokens_per_s / cards
    else:
        raise ValueError(f"unknown unit {entry.unit!r}")
    return got, entry.figure, got / entry.figure - 1, r


def error_table(entries=None):
    """Markdown rows: run, published, projected, error, fits memory; the median and worst |error|."""
    entries = ADDED if entries is None else entries
    rows, errs = ["| run | published | projected | error | fits |", "|---|---|---|---|---|"], []
    for e in entries:
        got, want, err, r = project_error(e)
        unit = getattr(e, "unit", "TFLOP/s per GPU")
        errs.append(abs(err))
        rows.append(f"| {e.name} | {want:,.0f} {unit} | {got:,.0f} | {100 * err:+.1f}% | {'yes' if r.fits else 'no'} |")
    errs.sort()
    mid = len(errs) // 2
    median = errs[mid] if len(errs) % 2 else (errs[mid - 1] + errs[mid]) / 2
    rows.append(f"\nmedian |error| {100 * median:.1f}%, worst {100 * errs[-1]:.1f}% over {len(errs)} runs")
    return "\n".join(rows)
