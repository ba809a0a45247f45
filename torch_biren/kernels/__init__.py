"""Triton kernels for the biren device: interpreted on CPU tensors, compiled on CUDA tensors.

Every entry point writes into caller-provided outputs and accepts strided views.
"""

from .attention import attention_bwd, attention_fwd
from .gemm import linear, mm

__all__ = ["mm", "linear", "attention_fwd", "attention_bwd"]
