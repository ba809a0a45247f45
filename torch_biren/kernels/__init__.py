"""Triton kernels for the biren device: interpreted on CPU tensors, compiled on CUDA tensors.

Every entry point writes into caller-provided outputs and accepts strided views.
"""

from .gemm import linear, mm

__all__ = ["mm", "linear"]
