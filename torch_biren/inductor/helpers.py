"""Inductor's triton_helpers, as generated kernels see them under Triton's interpreter: the max and
min reductions are Triton's own, which the interpreter runs as one numpy reduction, where
triton_helpers' `tl.reduce` with its own combine function runs the combine once per element in
Python (seconds for a vocabulary-wide log-softmax). Both propagate NaN, as numpy's max and min do.
Everything else is triton_helpers itself."""

import triton.language as tl


class _Helpers:
    def __init__(self, real):
        self._real = real
        self.max2 = tl.max
        self.min2 = tl.min

    def __getattr__(self, name):
        return getattr(self._real, name)


def for_interpreter(triton_helpers):
    return _Helpers(triton_helpers)
