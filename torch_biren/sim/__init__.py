"""The device model, pure Python: chips as data (chip.py, chips/*.json), one cost formula per op
family (costs.py), aten ops mapped onto them (registry.py), and the profiler's presentation of
simulated time (profiler.py), the live clock (clock.py). Only profiler.profile() and clock need the
runtime (torch_biren._C)."""

from .chip import (
    Chip,
    ChipSpecError,
    available_chips,
    current_chip,
    load_chip,
    on_chip_change,
    remove_chip_listener,
    set_chip,
    use_chip,
)
from .clock import elapsed_ms, elapsed_ns, elapsed_ps, reset
from .costs import Cost, attention, copy, elementwise, gemm, generic, link, reduction
from .profiler import Profile, profile
from .registry import TensorSpec, cost_of, cost_tuple, has_cost, modelled_ops, register

__all__ = [
    "Chip", "ChipSpecError", "available_chips", "current_chip", "load_chip", "on_chip_change",
    "remove_chip_listener", "set_chip", "use_chip",
    "Cost", "attention", "copy", "elementwise", "gemm", "generic", "link", "reduction",
    "Profile", "profile", "elapsed_ms", "elapsed_ns", "elapsed_ps", "reset",
    "TensorSpec", "cost_of", "cost_tuple", "has_cost", "modelled_ops", "register",
]  # fmt: skip
