"""Generated Triton kernels, launched on biren memory.

Inductor's wrapper code defines each biren kernel with `biren_launcher.triton(name, source,
device_str)` (backend.py) and calls `kernel.run(*args, stream=...)`. The kernel's module is
Inductor's own (a CachingAutotuner around a triton.jit function); its launch runs the function
through the project's kernel runtime (kernels/runtime.py): interpreted, on zero-copy CPU views of
the device tensors, so nothing is copied in or out, and charged to the device model (cost.py) on
the current stream under the kernel's name."""

import functools

import numpy as np
import torch

import triton.language as tl
from triton import Config
from triton.runtime import interpreter as _interp
from triton.runtime.interpreter import TensorHandle

from .. import _C
from ..biren import graphs
from ..kernels.runtime import Kernel
from . import cost, helpers
from .libdevice import libdevice

# Elements of one interpreted program's tile. The interpreter runs each program as numpy calls on
# the whole tile, so a few large programs are far faster than many small ones.
_TILE = 1 << 16


def _cast_rounding_to_nearest(cast):
    """The interpreter's cast, rounding float32 to bfloat16 to nearest even as GPUs do (its own
    truncates): Inductor stores bf16 results of fp32 arithmetic with `.to(tl.bfloat16)`."""

    @functools.wraps(cast)
    def cast_impl(self, src, dst_type):
        if src.dtype.scalar == tl.float32 and dst_type.scalar == tl.bfloat16:
            bits = src.data.astype(np.float32, copy=False).view(np.uint32)
            rounded = ((bits + (np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1)))) >> 16).astype(np.uint16)
            return TensorHandle(np.where(np.isnan(src.data), np.uint16(0x7FC0), rounded), tl.bfloat16)
        return cast(self, src, dst_type)

    return cast_impl


class _RoundToNearest:
    def __enter__(self):
        self.cast = _interp.InterpreterBuilder.cast_impl
        _interp.InterpreterBuilder.cast_impl = _cast_rounding_to_nearest(self.cast)

    def __exit__(self, *exc):
        _interp.InterpreterBuilder.cast_impl = self.cast
        return False


class KernelLaunchError(RuntimeError):
    """A generated kernel failed on biren (the compile wrapper falls back to eager for its graph)."""


def raw_stream(device_index):
    """The stream Inductor passes to launches: the simulated stream's id (no driver handle)."""
    return torch.biren.current_stream(device_index).stream_id


def triton(kernel_name, source_code, device_str="biren"):
    """The kernel named `kernel_name` that Inductor generated as `source_code`, ready to launch."""
    return _load(kernel_name, source_code)


@functools.cache
def _load(kernel_name, source_code):
    from torch._inductor.codecache import PyCodeCache

    # The module asks for a GPU driver (Triton compiles for one); interpreted kernels need none.
    source = source_code.replace("triton_helpers.set_driver_to_gpu()", "")
    return GeneratedKernel(getattr(PyCodeCache.load(source), kernel_name))


def _config(configs, xnumel):
    """The first of Inductor's configurations (what its interpreter path runs), with XBLOCK grown
    towards a _TILE-element tile through powers of two that divide xnumel: Inductor drops the x
    mask where xnumel is a multiple of every block it may pick, so only a block dividing xnumel
    keeps every access in bounds; what a kernel computes does not depend on how x is split."""
    kwargs = dict(configs[0].kwargs)
    if "XBLOCK" in kwargs and xnumel:
        others = 1
        for name, value in kwargs.items():
            if name.endswith("BLOCK") and name != "XBLOCK":
                others *= value
        block = kwargs["XBLOCK"]
        while block * 2 * others <= _TILE and xnumel % (block * 2) == 0:
            block *= 2
        kwargs["XBLOCK"] = block
    return kwargs


class GeneratedKernel:
    """One generated kernel: its Triton function, run interpreted on device memory, and charged."""

    def __init__(self, autotuner):
        self.autotuner = autotuner
        self.name = autotuner.inductor_meta.get("kernel_name") or autotuner.fn.__name__
        fn = autotuner.fn.fn
        if "libdevice" in fn.__globals__:  # CUDA's libdevice: PyTorch's CPU kernels stand in
            fn.__globals__["libdevice"] = libdevice
        if "triton_helpers" in fn.__globals__:
            fn.__globals__["triton_helpers"] = helpers.for_interpreter(fn.__globals__["triton_helpers"])
        self.kernel = Kernel(fn)
        self.ops = cost.vector_ops(autotuner.fn.src)
        self.signature = list(autotuner.triton_meta["signature"])
        self._kwargs = {}

    def _arguments(self, args):
        """The launch's arguments by name (Inductor passes every non-constexpr one, in order)."""
        constexprs = set(self.kernel._constexprs)
        names = [n for n in self.signature if n not in constexprs]
        return dict(zip(names, args))

    def run(self, *args, stream=None, **kwargs):
        named = self._arguments(args)
        key = tuple(v if isinstance(v, int) else None for v in named.values())
        block = self._kwargs.get(key)
        if block is None:
            block = self._kwargs[key] = _config(self.autotuner.configs, named.get("xnumel"))
        args, grid = self.autotuner._interpret_args_grid(args, Config(block))  # Inductor's grid for the block
        device = next((a.device for a in args if isinstance(a, torch.Tensor) and a.device.type == "biren"), None)
        if device is None:
            raise KernelLaunchError(f"{self.name}: generated for biren, launched with no biren tensor")
        views = [_C._cpu_view(a) if isinstance(a, torch.Tensor) and a.device.type == "biren" else a for a in args]

        def launch():
            try:
                with _RoundToNearest():
                    self.kernel.cpu(grid, *views, **kwargs, **block)
            except Exception as e:  # the interpreter's own errors (an op it lacks, a bad access)
                raise KernelLaunchError(f"{self.name} failed in Triton's interpreter: {type(e).__name__}: {e}") from e

        writes = [v for k, v in named.items() if k.startswith(("out_ptr", "in_out_ptr"))]
        with torch.profiler.record_function(self.name):
            graphs.launch(launch, device, writes)
        cost.charge(self, named, device)
