"""Compare mode: every biren op is also run on CPU copies of its inputs; the first op whose result
differs beyond its dtype's tolerance is reported with its module, shapes and error, and its inputs are
saved so that it reproduces alone (replay)."""

import contextlib
import os
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ._walk import ModulePath, describe, host_copy, is_biren, tensors, to_cpu_args

# (rtol, atol) per dtype: torch.testing's defaults for half types; float32 looser than its 1.3e-6,
# since the device's kernels sum in a different order than the CPU's (tiles, split-K).
_TOLERANCES = {
    torch.float32: (1e-4, 1e-5),
    torch.float64: (1e-7, 1e-7),
    torch.bfloat16: (1.6e-2, 1e-5),
    torch.float16: (1e-3, 1e-5),
    torch.complex64: (1e-4, 1e-5),
}


def tolerance(dtype, overrides=None):
    """(rtol, atol) compare mode uses for dtype; integers and bools must match exactly."""
    if overrides and dtype in overrides:
        return overrides[dtype]
    return _TOLERANCES.get(dtype, (0.0, 0.0))


@dataclass
class Divergence:
    op: str
    module: str
    inputs: str
    output_index: int
    max_abs_error: float
    max_rel_error: float
    rtol: float
    atol: float
    saved: str | None

    def __str__(self):
        where = f"; inputs saved to {self.saved} (torch_biren.debug.replay)" if self.saved else ""
        return (f"{self.op} in {self.module} differs from CPU: output {self.output_index} max abs error "
                f"{self.max_abs_error:.3g}, max rel error {self.max_rel_error:.3g} (rtol {self.rtol:g}, "
                f"atol {self.atol:g}); inputs {self.inputs}{where}")  # fmt: skip


class AccuracyError(AssertionError):
    def __init__(self, divergence):
        super().__init__(f"first biren op that diverges from CPU: {divergence}")
        self.divergence = divergence


def _skip(func):
    name = func.name()
    # Random ops draw different numbers; empty ones hold garbage; views compare through their users.
    return (torch.Tag.nondeterministic_seeded in func.tags or "empty" in name or name.startswith("aten::_local_scalar")
            or torch.Tag.view_copy in func.tags)  # fmt: skip


def _error(dev_out, cpu_out, rtol, atol):
    """(max abs, max rel error, within tolerance) of a device result against the CPU's."""
    got = host_copy(dev_out) if is_biren(dev_out) else dev_out
    if got.shape != cpu_out.shape:
        return float("inf"), float("inf"), False
    if not (got.is_floating_point() or got.is_complex()):
        diff = (got != cpu_out)
        return float(diff.sum()), float(diff.any()), not bool(diff.any())
    wide = torch.complex128 if got.is_complex() else torch.float64
    g, c = got.to(wide), cpu_out.to(wide)
    same_nonfinite = (g.isnan() & c.isnan()) | (g == c)
    diff = (g - c).abs().masked_fill(same_nonfinite, 0)
    ok = bool((diff <= atol + rtol * c.abs()).logical_or(same_nonfinite).all())
    rel = diff / c.abs().clamp_min(torch.finfo(torch.float32).tiny)
    return float(diff.max()) if diff.numel() else 0.0, float(rel.max()) if rel.numel() else 0.0, ok


class _CompareMode(TorchDispatchMode):
    def __init__(self, modules, tolerances, save_dir, on_divergence):
        super().__init__()
        self.modules, self.tolerances, self.save_dir, self.on_divergence = modules, tolerances, save_dir, on_divergence
        self.divergences = []
        self.compared = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        flat = tensors(list(args)) + tensors(list(kwargs.values()))
        on_device = any(is_biren(t) for t in flat) or str(kwargs.get("device", "")).startswith("biren")
        if not on_device or _skip(func):
            return func(*args, **kwargs)
        cpu_args, cpu_kwargs = to_cpu_args(args, kwargs)  # before the op: it may write its inputs
        out = func(*args, **kwargs)
        try:
            expected = func(*cpu_args, **cpu_kwargs)
        except Exception:  # no CPU kernel for it (or a device-only op): nothing to compare with
            return out
        self.compared += 1
        for i, (d, c) in enumerate(zip(tensors(out), tensors(expected))):
            rtol, atol = tolerance(d.dtype, self.tolerances)
            abs_err, rel_err, ok = _error(d, c, rtol, atol)
            if not ok:
                self._report(func, args, kwargs, cpu_args, cpu_kwargs, c, d, i, abs_err, rel_err, rtol, atol)
                break
        return out

    def _report(self, func, args, kwargs, cpu_args, cpu_kwargs, expected, got, index, abs_err, rel_err, rtol, atol):
        saved = None
        if self.save_dir is not None and not self.divergences:
            os.makedirs(self.save_dir, exist_ok=True)
            saved = os.path.join(self.save_dir, "first_divergence.pt")
            torch.save({"op": func.name(), "overload": func._overloadname, "args": cpu_args, "kwargs": cpu_kwargs,
                        "cpu_output": expected, "biren_output": host_copy(got),
                        "module": self.modules.current()}, saved)  # fmt: skip
        d = Divergence(str(func), self.modules.current(), describe(list(args) + list(kwargs.values())), index,
                       abs_err, rel_err, rtol, atol, saved)  # fmt: skip
        self.divergences.append(d)
        if self.on_divergence == "raise":
            raise AccuracyError(d)


class CompareResult:
    """What a compare_with_cpu block found: divergences (first first) and how many ops it compared."""

    def __init__(self, mode):
        self._mode = mode

    @property
    def divergences(self):
        return self._mode.divergences

    @property
    def first(self):
        return self._mode.divergences[0] if self._mode.divergences else None

    @property
    def compared(self):
        return self._mode.compared


@contextlib.contextmanager
def compare_with_cpu(model=None, tolerances=None, save_dir="biren_divergence", on_divergence="raise"):
    """Run each biren op of the block also on the CPU and compare:

        with torch_biren.debug.compare_with_cpu(model) as result:
            model(x)
        # raises AccuracyError at the first diverging op (on_divergence="record" collects them instead)

    tolerances: {dtype: (rtol, atol)} overriding the defaults (torch_biren.debug.tolerance);
    save_dir: where the first diverging op's inputs are saved (None: not saved)."""
    if on_divergence not in ("raise", "record"):
        raise ValueError(f"on_divergence must be 'raise' or 'record', got {on_divergence!r}")
    with ModulePath(model) as modules, _CompareMode(modules, tolerances, save_dir, on_divergence) as mode:
        yield CompareResult(mode)


def replay(path, device="biren"):
    """Rerun a saved op alone on `device` and on the CPU: (device output, CPU output, Divergence-like
    error tuple (max abs, max rel, within tolerance))."""
    saved = torch.load(path, weights_only=False)
    packet = getattr(torch.ops.aten, saved["op"].split("::", 1)[1])
    func = getattr(packet, saved["overload"] or "default")
    to_dev = lambda x: x.to(device) if isinstance(x, torch.Tensor) else x  # noqa: E731
    from torch.utils._pytree import tree_map

    got = func(*tree_map(to_dev, saved["args"]), **tree_map(to_dev, saved["kwargs"]))
    expected = func(*saved["args"], **saved["kwargs"])
    d, c = tensors(got)[0], tensors(expected)[0]
    rtol, atol = tolerance(d.dtype)
    return got, expected, _error(d, c, rtol, atol)
