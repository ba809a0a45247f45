"""DeepSpeed on biren (written against DeepSpeed 0.14-0.19).

DeepSpeed takes an out-of-tree device through `deepspeed.accelerator.set_accelerator()`;
`BirenAccelerator` (deepspeed_accelerator.py) is that device. `install()` sets it explicitly; it is
also set as soon as DeepSpeed is imported when biren is the selected device (DS_ACCELERATOR=biren,
ACCELERATE_TORCH_DEVICE=biren or the CUDA migration), because DeepSpeed's own detection knows a fixed
list of accelerator names and would otherwise pick the CPU (or, under the migration, CUDA).

Upstream change that would retire the automatic part: DeepSpeed's `get_accelerator()` discovering
out-of-tree accelerators through an entry point (e.g. `deepspeed.accelerators`), or falling back to
`torch.accelerator.current_accelerator()` for device types it does not know.
"""

from . import register, selected


def _supported(version):
    return (0, 14) <= version < (1,)


def install():
    """Makes biren DeepSpeed's accelerator (`get_accelerator()`); returns it."""
    from deepspeed.accelerator import get_accelerator, set_accelerator

    current = get_accelerator() if _already_set() else None
    if current is not None and current._name == "biren":
        return current
    from .deepspeed_accelerator import BirenAccelerator

    accel = BirenAccelerator()
    set_accelerator(accel)
    return accel


def _already_set():
    import deepspeed.accelerator.real_accelerator as ra

    return ra.ds_accelerator is not None


def _apply(module):
    if selected() and module.ds_accelerator is None:
        from .deepspeed_accelerator import BirenAccelerator

        module.set_accelerator(BirenAccelerator())


def register_all():
    register("deepspeed.accelerator", "deepspeed.accelerator.real_accelerator", _apply, _supported, "deepspeed")
