"""torch_biren.ops softmax: the Triton kernel over the last dim; other dims run ATen's kernel on the
device's memory, and op_counts() says so."""

import torch

import torch_biren


def test_softmax_records_the_path_it_took():
    x = torch.randn(4, 8, dtype=torch.bfloat16)
    torch_biren.reset_op_counts()
    last = torch.softmax(x.to("biren"), -1)
    assert torch_biren.op_counts()["aten::_softmax"] == {"triton": 1}
    torch_biren.reset_op_counts()
    first = torch.softmax(x.to("biren"), 0)  # not the kernel's dim: ATen's CPU kernel
    assert torch_biren.op_counts()["aten::_softmax"] == {"native": 1}
    assert torch.allclose(first.cpu().float(), torch.softmax(x, 0).float(), atol=1e-2)
    assert torch.allclose(last.cpu().float(), torch.softmax(x, -1).float(), atol=1e-2)
