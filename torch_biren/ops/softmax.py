"""Softmax (aten::_softmax and its backward) as Triton kernels over the last dim; other dims and
dtypes run ATen's CPU kernel on the device's memory, and are recorded as such."""

import torch

from .. import kernels
from ..sim import registry
from ._common import charge, empty, path, same_device, view


def _last_dim(x, dim):
    return dim % max(x.dim(), 1) == x.dim() - 1


def _path(dim, *tensors):
    x = tensors[0]
    return path(*tensors) if x.dim() > 0 and _last_dim(x, dim) else "native"


def aten_softmax(x, dim, half_to_float):
    device = same_device("aten::_softmax", self=x)
    out = empty(x.shape, x, torch.float32 if half_to_float else x.dtype)
    took = _path(dim, x)
    if took == "triton":
        kernels.softmax_fwd(view(x), view(out))
    else:
        torch.ops.aten._softmax.out(view(x), dim, half_to_float, out=view(out))
    charge("aten::_softmax", (x, dim, half_to_float), device, took, registry.softmax)
    return out


def aten_softmax_backward(grad_output, output, dim, input_dtype):
    device = same_device("aten::_softmax_backward_data", grad_output=grad_output, output=output)
    dx = empty(output.shape, output, input_dtype)
    took = _path(dim, output, grad_output)
    if took == "triton":
        kernels.softmax_bwd(view(grad_output), view(output), view(dx))
    else:
        torch.ops.aten._softmax_backward_data.out(view(grad_output), view(output), dim, input_dtype, grad_input=view(dx))
    charge("aten::_softmax_backward_data", (grad_output, output, dim, input_dtype), device, took,
           registry.softmax_backward)
    return dx


def softmax(x, dim=-1):
    """torch.softmax, for model code that calls torch_biren.ops.softmax directly."""
    return torch.softmax(x, dim)


IMPLS = {"_softmax": aten_softmax, "_softmax_backward_data": aten_softmax_backward}
