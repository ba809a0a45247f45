"""Ops PyTorch sends a non-CPU device to that have only CUDA kernels, so the CPU fallback cannot run them.

Found from native_functions.yaml (a CUDA kernel, no CPU or composite one) and kept where common
modules reach them on biren:
- LSTM/GRU cells: ATen's LSTMCell/GRUCell take the fused path for `input.is_privateuseone()`
  (nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell, packed sequences). Forward runs the arithmetic of
  ATen's CPU cell (the unfused path) as biren ops, at the autograd key, so backward is autograd of
  that same arithmetic: numerics are the CPU's, forward and backward. The fused backward ops, which
  that path no longer calls but a caller of the fused op's own derivative may, get the analytic
  gradient over the workspace the forward returns.
- record_stream (FSDP calls it on PrivateUse1 tensors): see _record_stream.
SyncBatchNorm's statistics ops (batch_norm_stats, ..._elemt, ..._gather_stats_with_counts,
..._backward_reduce/_elemt; world size > 1 only) and explicit-only ops (_fused_dropout,
mm.dtype, ...) are not covered yet.
"""

import torch

from .._compile import outside_dynamo

_libs = []


def _gates(input_gates, hidden_gates, input_bias, hidden_bias):
    # ATen's CPU cell: linear_hh(hx) + linear_ih(x), each linear with its bias.
    hidden = hidden_gates if hidden_bias is None else hidden_gates + hidden_bias
    inp = input_gates if input_bias is None else input_gates + input_bias
    return hidden, inp


def lstm_cell(input_gates, hidden_gates, cx, input_bias=None, hidden_bias=None):
    hidden, inp = _gates(input_gates, hidden_gates, input_bias, hidden_bias)
    i, f, g, o = (hidden + inp).chunk(4, 1)
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    cy = f * cx + i * g
    hy = o * cy.tanh()
    return hy, cy, torch.cat([i, f, g, o], 1).detach()  # workspace as CUDA's: activated gates


def gru_cell(input_gates, hidden_gates, hx, input_bias=None, hidden_bias=None):
    hidden, inp = _gates(input_gates, hidden_gates, input_bias, hidden_bias)
    ir, iz, i_n = inp.chunk(3, 1)
    hr, hz, hn = hidden.chunk(3, 1)
    r = (hr + ir).sigmoid()
    z = (hz + iz).sigmoid()
    n = (i_n + hn * r).tanh()
    hy = (hx - n) * z + n
    return hy, torch.cat([r, z, n, hx, hn], 1).detach()  # workspace as CUDA's


def lstm_cell_backward_impl(grad_hy, grad_cy, cx, cy, workspace, has_bias):
    i, f, g, o = workspace.chunk(4, 1)
    tanh_cy = cy.tanh()
    d_cy = torch.zeros_like(cy) if grad_cy is None else grad_cy.clone()
    if grad_hy is not None:
        d_cy = d_cy + grad_hy * o * (1 - tanh_cy * tanh_cy)
        d_o = grad_hy * tanh_cy
    else:
        d_o = torch.zeros_like(o)
    grad_gates = torch.cat([d_cy * g * i * (1 - i), d_cy * cx * f * (1 - f), d_cy * i * (1 - g * g),
                            d_o * o * (1 - o)], 1)
    grad_bias = grad_gates.sum(0) if has_bias else None
    return grad_gates, d_cy * f, grad_bias


def gru_cell_backward(grad_hy, workspace, has_bias):
    r, z, n, hx, hn = workspace.chunk(5, 1)
    d_n = grad_hy * (1 - z) * (1 - n * n)
    d_z = grad_hy * (hx - n) * z * (1 - z)
    d_r = d_n * hn * r * (1 - r)
    grad_input_gates = torch.cat([d_r, d_z, d_n], 1)
    grad_hidden_gates = torch.cat([d_r, d_z, d_n * r], 1)
    bias = (grad_input_gates.sum(0), grad_hidden_gates.sum(0)) if has_bias else (None, None)
    return grad_input_gates, grad_hidden_gates, grad_hy * z, *bias


def _record_stream(self, s):
    # CUDA's caching allocator keeps the block from reuse until work queued on `s` has run. Biren
    # kernels compute when issued (only their simulated time is queued), so no queued work can still
    # read the memory: there is nothing to hold back. The stream must be a biren one, as on CUDA.
    if s.device.type != self.device.type:
        raise RuntimeError(f"record_stream: expected a stream on {self.device.type}, got {s.device}")


AUTOGRAD_IMPLS = {"_thnn_fused_lstm_cell": lstm_cell, "_thnn_fused_gru_cell": gru_cell}
IMPLS = {"_thnn_fused_lstm_cell_backward_impl": lstm_cell_backward_impl,
         "_thnn_fused_gru_cell_backward": gru_cell_backward, "record_stream": _record_stream}


def install():
    if _libs:
        return
    lib = torch.library.Library("aten", "IMPL")
    for name, fn in AUTOGRAD_IMPLS.items():
        lib.impl(name, outside_dynamo(fn), "AutogradPrivateUse1")
    for name, fn in IMPLS.items():
        lib.impl(name, outside_dynamo(fn), "PrivateUse1")
    _libs.append(lib)
