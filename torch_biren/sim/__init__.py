"""The device model: chips as data (chip.py, chips/*.json), cost formulas (costs.py, registry.py)
and the profiler's presentation (profiler.py). Pure Python; only profiler.profile() needs the
runtime (torch_biren._C)."""

from .chip import Chip, available_chips, current_chip, load_chip, on_chip_change, set_chip, use_chip

__all__ = ["Chip", "available_chips", "current_chip", "load_chip", "on_chip_change", "set_chip", "use_chip"]
