"""What every device kernel registered from Python shares: zero-copy views of device memory for the
kernels, device checks with CUDA's wording, the kernel mode, and charging the device model."""

import os

import torch

from .. import _C

_MODES = ("triton", "reference")
_mode = os.environ.get("TORCH_BIREN_KERNELS", "triton") or "triton"
if _mode not in _MODES:
    raise ValueError(f"TORCH_BIREN_KERNELS must be 'triton' or 'reference', got '{_mode}'")

TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def mode():
    return _mode


def _set_mode(m):
    global _mode
    if m not in _MODES:
        raise ValueError(f"kernel mode must be 'triton' or 'reference', got '{m}'")
    _mode = m


def use_triton(*tensors):
    """Triton kernels for floating dtypes in triton mode; ATen CPU kernels otherwise."""
    return _mode == "triton" and all(t is None or t.dtype in TRITON_DTYPES for t in tensors)


def traced(*tensors):
    """True under torch.compile/export tracing (fake or functional tensors, which have no memory):
    kernels registered at an autograd key then give PyTorch their decomposition to trace instead."""
    return any(t is not None and type(t) not in (torch.Tensor, torch.nn.Parameter) for t in tensors)


def on_biren(*ts):
    """Run the fused kernels: biren tensors, and not while torch.compile traces (it traces the
    composite form instead; the kernels touch memory that fake tensors do not have)."""
    return not torch.compiler.is_compiling() and all(t.device.type == "biren" for t in ts)


def view(t):
    """A CPU tensor over the device tensor's memory (no copy); None and CPU tensors pass through."""
    if t is None or t.device.type != "biren":
        return t
    return _C._cpu_view(t)


def same_device(op, **tensors):
    """The device of the op's biren tensors; CUDA's error for anything else (CPU 0-dim scalars aside)."""
    device = None
    for name, t in tensors.items():
        if t is None:
            continue
        if t.device.type == "cpu" and t.dim() == 0:
            continue
        if device is None:
            device = t.device
        elif t.device != device:
            other, first = (t.device, device) if device.type == "biren" else (device, t.device)
            raise RuntimeError(
                f"Expected all tensors to be on the same device, but found at least two devices, {first} and "
                f"{other}! (when checking argument '{name}' of {op})"
            )
    return device


_memo = {}


def _key(args):
    out = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append((tuple(a.shape), a.dtype))
        elif isinstance(a, (list, tuple)):
            out.append(_key(a))
        elif isinstance(a, (int, float, bool, str)) or a is None:
            out.append(a)
        else:
            out.append(type(a).__name__)
    return tuple(out)


def path(*tensors):
    """The path a kernel body takes, as op_counts() and the profiler report it: 'triton' for the
    Triton kernels, 'native' for an ATen CPU kernel on the device's memory."""
    return "triton" if use_triton(*tensors) else "native"


def charge(op, args, device, took, cost):
    """Charges one kernel of `op` on the device's current stream, recorded as the path it `took`
    ('triton' or 'native'), at `cost(*args)` (a sim.costs.Cost). The memo keys on everything the
    cost reads: shapes, dtypes, scalars and the float32 matmul precision (fp32 GEMMs run as TF32
    unless it is 'highest')."""
    key = (op, cost, _key(args), torch.get_float32_matmul_precision())
    c = _memo.get(key)
    if c is None:
        full = cost(*args)
        c = (*full.as_tuple(), full.kernel)
        _memo[key] = c
    flops, nbytes, ns, bound, kernel = c
    # A modelled kernel's configuration (a GEMM's block and split) names its record: "aten::mm [64x64x64]".
    _C._sim_charge(device.index if device.index is not None else _C._get_device(), op, took, flops, nbytes, ns, bound,
                   kernel)


def clear_memo():
    _memo.clear()


def empty(shape, like, dtype=None):
    return torch.empty(shape, dtype=dtype or like.dtype, device=like.device)
