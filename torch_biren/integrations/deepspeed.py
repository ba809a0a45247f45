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


_requested = False


def install():
    """Makes biren DeepSpeed's accelerator (`get_accelerator()`); returns it. Call it before
    `import deepspeed` (or set DS_ACCELERATOR=biren): a few DeepSpeed modules keep the accelerator's
    functions from their import time."""
    global _requested
    _requested = True
    import deepspeed.accelerator.real_accelerator as ra  # the import hook sets it, if deepspeed is new here

    if ra.ds_accelerator is None or ra.ds_accelerator._name != "biren":
        from .deepspeed_accelerator import BirenAccelerator

        ra.set_accelerator(BirenAccelerator())
    return ra.ds_accelerator


def _apply(module):
    if (_requested or selected()) and module.ds_accelerator is None:
        from .deepspeed_accelerator import BirenAccelerator

        module.set_accelerator(BirenAccelerator())


def register_all():
    register("deepspeed.accelerator", "deepspeed.accelerator.real_accelerator", _apply, _supported, "deepspeed")
