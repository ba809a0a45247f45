"""torch_biren: a simulated Biren BR166 GPU as the PyTorch device "biren".

`import torch` loads it through the `torch.backends` entry point (TORCH_DEVICE_BACKEND_AUTOLOAD=0
disables that); `import torch_biren` does the same explicitly. A failure here warns and leaves
PyTorch's CPU usable: it must never break `import torch`.
"""

import warnings

__all__ = ["fallback_ops", "op_counts", "reset_op_counts", "set_fallback_policy", "load_error"]

_load_error = None


def _autoload():
    """Entry point for torch's device-backend autoloading; importing the package does the work.

    Defined before anything imports torch: `import torch_biren` first imports torch, whose
    autoloading then finds this package half-initialised and calls this."""



def _register():
    import torch

    from . import _C  # registers the device's kernels, guard, hooks, allocator
    from .ops import PYTHON_OPS

    _C._register_direct_fallbacks(PYTHON_OPS)

    if torch._C._get_privateuse1_backend_name() != "biren":
        torch.utils.rename_privateuse1_backend("biren")
    from . import biren as _biren

    if not hasattr(torch, "biren"):
        torch._register_device_module("biren", _biren)
    torch.utils.generate_methods_for_privateuse1_backend(
        for_tensor=True, for_module=True, for_packed_sequence=True, for_storage=True
    )
    from . import _compile, _exit
    from .biren import _chip_binding

    _chip_binding.install()
    _compile.install()
    _exit.install()
    from . import _fp64_exempt, ops, profiler  # noqa: F401  (torch_biren.profiler is public)

    _fp64_exempt.install()

    ops.install()

    from . import distributed

    distributed.register()  # the "bccl" process-group backend (loads on first use)


def _disable(err):
    """A plugin that failed part-way must not leave a device that half works: once the runtime is
    loaded (kernels and hooks registered), it reports no devices and refuses to initialise."""
    import sys

    runtime = sys.modules.get(__name__ + "._C")
    if runtime is not None:
        runtime._set_unavailable(f"torch_biren failed to load ({type(err).__name__}: {err})")


from . import migration as _migration  # imports only os: maps CUDA env vars before the runtime reads its own

_migration.autoload_before_register()
try:
    _register()
except Exception as err:  # noqa: BLE001 - a broken plugin must not break torch
    _load_error = err
    _disable(err)
    warnings.warn(
        f"torch_biren failed to load ({type(err).__name__}: {err}); the 'biren' device is unavailable. "
        "Set TORCH_DEVICE_BACKEND_AUTOLOAD=0 to skip loading it.",
        RuntimeWarning,
        stacklevel=2,
    )


def load_error():
    """The exception that stopped the device from loading, or None."""
    return _load_error


def _counts():
    from . import _C

    return _C._op_counts()


def op_counts():
    """Every op run on biren since the last reset: {op name: {kind: calls}}, kind being
    triton, native (modelled), fallback (CPU kernel, generic cost) or copy."""
    return _counts()


def fallback_ops():
    """Ops that ran through the CPU fallback (no device kernel yet) and how often."""
    return {name: kinds["fallback"] for name, kinds in sorted(_counts().items()) if "fallback" in kinds}


def reset_op_counts():
    from . import _C

    _C._reset_op_counts()


def set_fallback_policy(policy):
    """'allow' (default), 'warn' (once per op) or 'error': what happens when an op has no device kernel."""
    from . import _C

    _C._set_fallback_policy(policy)


if _load_error is None:
    try:
        from . import integrations as _integrations  # transformers/accelerate/DeepSpeed adapters, on their import

        _integrations.install()
    except Exception as err:  # noqa: BLE001
        warnings.warn(f"torch_biren: library adapters not installed ({err})", RuntimeWarning, stacklevel=2)
_migration.autoload_after_register(_load_error)  # TORCH_BIREN_MIGRATE_CUDA=1: needs the whole package
if _load_error is None:
    from .debug import _env as _debug_env  # TORCH_BIREN_COMPARE_CPU / TORCH_BIREN_DETECT_NONFINITE

    _debug_env.activate_from_env()
