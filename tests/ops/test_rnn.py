"""Recurrent layers on biren: PyTorch sends them to CUDA-only fused cells; ours must give the CPU's
numbers, forward and backward."""

import copy

import pytest
import torch
import torch.nn as nn

import torch_biren  # noqa: F401
from torch_biren.ops import rnn

_MODULES = {
    "lstm": lambda: nn.LSTM(10, 20),
    "lstm 2 layers bidirectional batch_first": lambda: nn.LSTM(10, 20, num_layers=2, bidirectional=True,
                                                               batch_first=True),
    "lstm no bias": lambda: nn.LSTM(10, 20, bias=False),
    "lstm proj_size": lambda: nn.LSTM(10, 20, proj_size=5),
    "gru": lambda: nn.GRU(10, 20),
    "gru 2 layers bidirectional no bias": lambda: nn.GRU(10, 20, num_layers=2, bidirectional=True, bias=False),
    "lstm cell": lambda: nn.LSTMCell(10, 20),
    "gru cell": lambda: nn.GRUCell(10, 20),
}


def _run(module, x, device):
    m = copy.deepcopy(module).to(device)
    x = x.detach().to(device).requires_grad_()
    out = m(x)
    outs = [out] if isinstance(out, torch.Tensor) else [t for o in out for t in (o if isinstance(o, tuple) else (o,))]
    sum(((o.float() * (k + 1)) ** 2).sum() for k, o in enumerate(outs)).backward()
    return [o.detach().cpu() for o in outs], [x.grad.cpu(), *(p.grad.cpu() for p in m.parameters())]


@pytest.mark.parametrize("name", list(_MODULES))
def test_recurrent_layers_match_cpu_forward_and_backward(name):
    torch.manual_seed(0)
    module = _MODULES[name]()
    x = torch.randn(3, 10) if "cell" in name else torch.randn(5, 2, 10)
    (cpu_out, cpu_grads), (dev_out, dev_grads) = _run(module, x, "cpu"), _run(module, x, "biren")
    for c, d in zip(cpu_out + cpu_grads, dev_out + dev_grads):
        torch.testing.assert_close(d, c, rtol=1e-5, atol=1e-5)


def test_packed_sequences_match_cpu():
    torch.manual_seed(0)
    lstm, x = nn.LSTM(3, 4), torch.randn(2, 4, 3)
    lengths = torch.tensor([4, 2])
    outs = {}
    for device in ("cpu", "biren"):
        packed = nn.utils.rnn.pack_padded_sequence(x.to(device), lengths, batch_first=True)
        out, (h, c) = copy.deepcopy(lstm).to(device)(packed)
        outs[device] = [out.data.cpu(), h.cpu(), c.cpu()]
    for c, d in zip(outs["cpu"], outs["biren"]):
        torch.testing.assert_close(d, c, rtol=1e-5, atol=1e-5)


def _gates(n, b=3, h=4):
    return [torch.randn(b, n * h) for _ in range(2)], [torch.randn(n * h)
                                                                             for _ in range(2)]


@pytest.mark.parametrize("has_bias", [True, False])
def test_fused_lstm_cell_backward_is_the_gradient_of_the_cell(has_bias):
    (ig, hg), (ib, hb) = _gates(4)
    cx = torch.randn(3, 4)
    leaves = [t.requires_grad_() for t in (ig, hg, cx, ib, hb)]
    hy, cy, workspace = rnn.lstm_cell(ig, hg, cx, ib if has_bias else None, hb if has_bias else None)
    grad_hy, grad_cy = torch.randn_like(hy), torch.randn_like(cy)
    expected = torch.autograd.grad([hy, cy], leaves[:3 + 2 * has_bias], [grad_hy, grad_cy], retain_graph=True)
    grad_gates, grad_cx, grad_bias = torch.ops.aten._thnn_fused_lstm_cell_backward_impl(
        grad_hy.to("biren"), grad_cy.to("biren"), cx.detach().to("biren"), cy.detach().to("biren"),
        workspace.to("biren"), has_bias)
    torch.testing.assert_close(grad_gates.cpu(), expected[0])
    torch.testing.assert_close(grad_gates.cpu(), expected[1])
    torch.testing.assert_close(grad_cx.cpu(), expected[2])
    if has_bias:
        torch.testing.assert_close(grad_bias.cpu(), expected[3])
    # one of the two incoming gradients may be undefined (only hy or only cy used)
    only_hy = torch.ops.aten._thnn_fused_lstm_cell_backward_impl(
        grad_hy.to("biren"), None, cx.detach().to("biren"), cy.detach().to("biren"), workspace.to("biren"), has_bias)
    torch.testing.assert_close(only_hy[0].cpu(), torch.autograd.grad([hy], [ig], [grad_hy], retain_graph=True)[0])


@pytest.mark.parametrize("has_bias", [True, False])
def test_fused_gru_cell_backward_is_the_gradient_of_the_cell(has_bias):
    (ig, hg), (ib, hb) = _gates(3)
    hx = torch.randn(3, 4)
    leaves = [t.requires_grad_() for t in (ig, hg, hx, ib, hb)]
    hy, workspace = rnn.gru_cell(ig, hg, hx, ib if has_bias else None, hb if has_bias else None)
    grad_hy = torch.randn_like(hy)
    expected = torch.autograd.grad([hy], leaves[:3 + 2 * has_bias], [grad_hy])
    got = torch.ops.aten._thnn_fused_gru_cell_backward(grad_hy.to("biren"), workspace.to("biren"), has_bias)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g.cpu(), e)
    if not has_bias:
        assert got[3] is None and got[4] is None


def test_record_stream_accepts_a_biren_stream():
    x = torch.randn(4, device="biren")
    x.record_stream(torch.biren.Stream())
    with pytest.raises(RuntimeError, match="expected a stream on biren"):
        x.record_stream(torch.Stream(device="cpu"))
