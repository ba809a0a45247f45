"""What a generated kernel costs on the device model: the vector roofline of the chip
(sim/costs.py::generic, the formula the C++ fallback charges) over the bytes the kernel moves and
the vector operations of its body, plus the launch.

- bytes: each tensor argument's elements once (`in_out_ptr` arguments, read and written, twice),
  as Inductor's own estimate (SIMDKernel.estimate_kernel_num_bytes) counts them, but from the
  launch's tensors, so dynamic shapes are charged at their actual sizes.
- FLOPs: Inductor counts FLOPs only for matmul-like nodes, none of which a pointwise or reduction
  kernel holds, so the body is counted: its value statements' arithmetic operations (binary,
  unary, comparisons and calls other than loads, stores, casts and shape functions) times the
  elements of the iteration space (xnumel times r0_numel)."""

import ast

import torch

from .. import _C
from ..sim import costs

# Calls that move or reshape values rather than compute on them.
_NOT_ARITHMETIC = {"load", "store", "to", "full", "broadcast_to", "reshape", "expand_dims", "arange", "zeros",
                   "zeros_like", "full_like", "view", "trans", "permute", "program_id", "static_assert",
                   "device_assert", "promote_to_tensor", "constexpr", "make_block_ptr", "advance", "split",
                   "join", "range", "static_range", "multiple_of", "max_contiguous", "int1", "float32"}


def _name(call):
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _arithmetic(node):
    """Operations in an expression; a load's address arithmetic is not the kernel's work."""
    if isinstance(node, ast.Call) and _name(node) == "load":
        return 0
    n = sum(_arithmetic(child) for child in ast.iter_child_nodes(node))
    if isinstance(node, (ast.BinOp, ast.Compare, ast.BoolOp)):
        n += 1
    elif isinstance(node, ast.UnaryOp) and not isinstance(node.operand, ast.Constant):
        n += 1
    elif isinstance(node, ast.Call) and _name(node) not in _NOT_ARITHMETIC:
        n += 1
    return n


def vector_ops(source):
    """Arithmetic operations per element of a generated kernel: those of the statements that
    assign its values (Inductor names them tmpN; index arithmetic, on xindex etc., is not counted)."""
    tree = ast.parse(source)
    ops = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id.startswith("tmp") for t in node.targets):
            ops += _arithmetic(node.value)
    return ops


def kernel_cost(ops, named, chip=None):
    """costs.Cost of one launch: `ops` per element, `named` the launch's arguments by name."""
    nbytes = 0
    largest = 1
    for name, v in named.items():
        if isinstance(v, torch.Tensor):
            b = v.numel() * v.element_size()
            nbytes += 2 * b if name.startswith("in_out_ptr") else b
            largest = max(largest, v.numel())
    numels = [v for k, v in named.items() if k.endswith("numel") and isinstance(v, int)]
    elements = 1
    for v in numels:
        elements *= v
    if not numels:
        elements = largest
    return costs.generic(ops * elements, nbytes, chip)


_memo = {}


def charge(kernel, named, device):
    """Puts one launch of `kernel` on the device's current stream, named for the kernel."""
    # The kernel itself (launcher._load keeps one per source: kernels of two graphs may share a name)
    # and each argument by name: an in_out_ptr's bytes count twice.
    key = (kernel, tuple((k, (tuple(v.shape), v.dtype) if isinstance(v, torch.Tensor) else v) for k, v in named.items()))
    c = _memo.get(key)
    if c is None:
        c = _memo[key] = kernel_cost(kernel.ops, named).as_tuple()
    flops, nbytes, ns, bound = c
    index = device.index if device.index is not None else _C._get_device()
    _C._sim_charge(index, kernel.name, "triton", flops, nbytes, ns, bound)


def clear_memo():
    _memo.clear()
