"""Attention as a training stack runs it when it has no flash kernel: Megatron-LM's CoreAttention
before FlashAttention (Dao et al. 2022) and Transformer Engine, as the 2021-2022 runs of
published_runs.py used it. The score matrix is materialised per head:

    forward:  QK^T (baddbmm) -> fused scale + mask + softmax (one kernel, read and write the
              scores) -> dropout on the probabilities (write output and a 1-byte mask) -> P V (bmm)
    backward: dP = dO V^T and dV = P^T dO (bmm) -> dropout backward (read dP and the mask, write) ->
              softmax backward (read y and dy, write) -> dQ = dS K and dK = dS^T Q (bmm)

The batched GEMMs run over the whole (lq x lk) matrix: the causal mask is applied inside the softmax
kernel, so no masked tile is skipped. The traced model (trace.py) charges the flash kernel instead;
project() swaps one for the other (Stack.attention == "materialised"). Kept for backward: the
softmax output (2 B per score), with dropout also its mask (1 B) and output (2 B): Korthikanti et
al. 2022's 5 a s^2 b term (2 a s^2 b without dropout), instead of flash's fp32 logsumexp per row."""

from dataclasses import replace

from ..ops.attention import ATTENTION
from ..sim import costs, dtypes


def kernels(b, heads, lq, lk, d, dtype, dropout, chip):
    """({kernel: Cost} forward, {kernel: Cost} backward) of one layer's materialised attention on
    one card: b sequences, `heads` heads of dimension d, lq queries against lk keys; each kernel's
    modelled time over the chip's measured materialised_attention_efficiency (the A100's: these
    kernels as FlashAttention's paper timed Megatron's attention, benchmarks/calibrate.py)."""
    fwd, bwd = _modelled(b, heads, lq, lk, d, dtype, dropout, chip)
    return tuple({k: replace(c, ns=c.ns / chip.materialised_attention_efficiency(backward)) for k, c in part.items()}
                 for part, backward in ((fwd, False), (bwd, True)))


def _modelled(b, heads, lq, lk, d, dtype, dropout, chip):
    """The kernels as the cost model prices them, before the measured efficiency."""
    bh, n = b * heads, b * heads * lq * lk
    elt = dtypes.itemsize(dtype)
    fwd = {"attention QK^T (bmm)": costs.gemm(lq, lk, d, bh, dtype, chip),
           "attention softmax (fused scale-mask-softmax)": costs.elementwise(n, dtype, chip, 1, 1, 4)}
    bwd = {"attention dP (bmm)": costs.gemm(lq, lk, d, bh, dtype, chip),
           "attention dV (bmm)": costs.gemm(lk, d, lq, bh, dtype, chip),
           "attention softmax backward": costs.elementwise(n, dtype, chip, 2, 1, 3)}
    if dropout:
        # torch's native_dropout: read the probabilities, write the output and a bool mask; backward
        # reads the gradient and the mask, writes the gradient
        fwd["attention dropout"] = costs.generic(n, n * (2 * elt + 1), chip)
        bwd["attention dropout backward"] = costs.generic(n, n * (2 * elt + 1), chip)
    fwd["attention PV (bmm)"] = costs.gemm(lq, d, lk, bh, dtype, chip)
    bwd["attention dQ (bmm)"] = costs.gemm(lq, d, lk, bh, dtype, chip)
    bwd["attention dK (bmm)"] = costs.gemm(lk, d, lq, bh, dtype, chip)
    return fwd, bwd


def saved_bytes(b, heads, lq, lk, elt, dropout):
    """Bytes one layer keeps for backward beyond what the flash kernel keeps (its fp32 logsumexp);
    elt: bytes per activation element."""
    n = b * heads * lq * lk
    return n * (elt + (elt + 1 if dropout else 0)) - 4 * b * heads * lq


def swap(ops, layers, b, heads, lq, lk, d, dtype, dropout, chip, train):
    """Replace the traced flash kernels in `ops` ({op: ns} of one micro-batch through a stage of
    `layers` layers) by the materialised ones. Returns the materialised attention's forward and
    backward ns over the stage, and the change to the stage's total and forward time."""
    flash_f, flash_b = ops.pop(ATTENTION.name, 0.0), ops.pop(ATTENTION.backward_name, 0.0)
    fwd, bwd = kernels(b, heads, lq, lk, d, dtype, dropout, chip)
    if not train:
        bwd = {}
    for name, c in (*fwd.items(), *bwd.items()):
        ops[name] = ops.get(name, 0.0) + c.ns * layers
    new_f, new_b = sum(c.ns for c in fwd.values()) * layers, sum(c.ns for c in bwd.values()) * layers
    return new_f, new_b, (new_f + new_b) - (flash_f + flash_b), new_f - flash_f
