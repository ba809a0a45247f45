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


def charge(op, args, device, cost_fn=None):
    """Charges one kernel on the device's current stream: the registered formula of aten op `op` for
    `args` (schema order), or `cost_fn()` (a sim.costs.Cost) for ops with no aten counterpart."""
    key = (op, _key(args))
    cost = _memo.get(key)
    if cost is None:
        if cost_fn is not None:
            cost = cost_fn().as_tuple()
        else:
            from ..sim import registry

            cost = registry.cost_tuple(op, list(args))
        _memo[key] = cost
    flops, nbytes, ns, bound = cost
    kind = "triton" if _mode == "triton" else "native"
    _C._sim_charge(device.index if device.index is not None else _C._get_device(), op, kind, flops, nbytes, ns, bound)


def clear_memo():
    _memo.clear()


def empty(shape, like, dtype=None):
    return torch.empty(shape, dtype=dtype or like.dtype, device=like.device)
