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
    kwargs: dict  # project() arguments
    tflops_per_gpu: float  # published
    flops: Callable  # Result -> FLOPs counted by the published figure


# Llama 3 (Dubey et al. 2024, sec. 3.3.2): an interleaved 1F1B schedule over 16 stages, with one layer
# fewer on the first and last stages: 126 layers in 16 x 8 one-layer virtual stages.
_LLAMA3 = dict(model="llama-3-405b", chip="H100", batch=2048, seq=8192, tp=8, pp=16, micro_batch=1, virtual_stages=8)

RUNS = [
    Run("Megatron GPT-175B, 1024 A100", dict(model="gpt-175b", cards=1024, chip="A100", batch=1536, seq=2048, tp=8,
                                             pp=8, micro_batch=1, recompute=True), 140,
        lambda r: megatron_flops(1536, 2048, 96, 12288, 51200)),
    Run("Megatron GPT-1T, 3072 A100", dict(model="gpt-1t", cards=3072, chip="A100", batch=3072, seq=2048, tp=8,
                                           pp=64, micro_batch=1, recompute=True), 163,
        lambda r: megatron_flops(3072, 2048, 128, 25600, 51200)),
    Run("Llama 3 405B, 8192 H100 (DP 64)", dict(_LLAMA3, cards=8192), 430, lambda r: r.model_flops),
    Run("Llama 3 405B, 16384 H100 (DP 128)", dict(_LLAMA3, cards=16384), 400, lambda r: r.model_flops),
]  # fmt: skip


def tflops_per_gpu(run):
    """(projected TFLOP/s per GPU, the projection's Result) for `run`."""
    r = project(**run.kwargs)
    return run.flops(r) / (r.step_ns * 1e-9) / run.kwargs["cards"] / 1e12, r
