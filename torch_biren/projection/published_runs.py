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
