"""Accuracy tools for adapting a model to biren.

compare_with_cpu()   runs every biren op also on CPU copies of its inputs and stops at the first
                     op whose result differs beyond its dtype's tolerance (TORCH_BIREN_COMPARE_CPU=1)
detect_nonfinite()   stops at the first op that turns finite inputs into NaN/Inf
                     (TORCH_BIREN_DETECT_NONFINITE=1)
replay(path)         reruns a saved diverging op alone, on biren and on CPU
"""

from .compare import AccuracyError, Divergence, compare_with_cpu, replay, tolerance
from .nonfinite import NonFiniteError, detect_nonfinite

__all__ = ["AccuracyError", "Divergence", "NonFiniteError", "compare_with_cpu", "detect_nonfinite", "replay",
           "tolerance"]  # fmt: skip
