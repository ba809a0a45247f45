"""Triton kernels for the biren device: interpreted on CPU tensors, compiled on CUDA tensors.

Every entry point writes into caller-provided outputs, accepts strided views without copying
them, and computes in float32 whatever the storage dtype (float32, float16, bfloat16).
"""

from .attention import attention_bwd, attention_fwd
from .cross_entropy import cross_entropy_bwd, cross_entropy_fwd
from .gemm import linear, mm
from .grouped_mm import grouped_mm
from .rms_norm import rms_norm_bwd, rms_norm_fwd
from .rope import rope, rope_bwd, rope_fwd
from .softmax import softmax_bwd, softmax_fwd
from .swiglu import swiglu_bwd, swiglu_fwd

__all__ = [
    "mm", "linear", "grouped_mm",
    "attention_fwd", "attention_bwd",
    "rms_norm_fwd", "rms_norm_bwd",
    "rope", "rope_fwd", "rope_bwd",
    "swiglu_fwd", "swiglu_bwd",
    "softmax_fwd", "softmax_bwd",
    "cross_entropy_fwd", "cross_entropy_bwd",
]
