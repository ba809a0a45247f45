"""Binds the chip of the device model (torch_biren.sim) to the live runtime: timeline parameters,
card capacity, device count under SVI partitioning, device properties."""

from .. import _C


def _apply(chip):
    _C._sim_set_params(chip.timeline_params())
    _C._set_capacity(int(chip.memory_bytes))
    _C._set_instances_per_card(int(chip.instances))
    _C._device_count()  # validates BIREN_VISIBLE_DEVICES now, at load, rather than at first use


def install():
    from ..sim import chip as chips

    chips.on_chip_change(_apply)
    _apply(chips.current_chip())


def device_properties(cls):
    from ..sim.chip import current_chip

    c = current_chip()
    return cls(
        name=f"Biren {c.name}" if c.name.startswith("BR") else c.name,
        total_memory=int(c.memory_bytes),
        multi_processor_count=int(c.compute_units),
        L2_cache_size=int(c.l2_bytes),
        major=c.capability[0],
        minor=c.capability[1],
        warp_size=int(c.warp_size),
        memory_mode=c.mode,
        svi_instances=int(c.svi),
    )
