"""Dtype keys of the device model: torch dtypes or short names in, the key a chip file uses out
(bf16, fp16, tf32, fp32, fp64, int8), plus element sizes."""

import torch

_BY_DTYPE = {
    torch.bfloat16: "bf16",
    torch.float16: "fp16",
    torch.float32: "fp32",
    torch.float64: "fp64",
    torch.int8: "int8",
    torch.uint8: "int8",
}
_BY_NAME = {
    "bf16": "bf16", "bfloat16": "bf16",
    "fp16": "fp16", "float16": "fp16", "half": "fp16",
    "fp32": "fp32", "float32": "fp32", "float": "fp32",
    "tf32": "tf32",
    "fp64": "fp64", "float64": "fp64", "double": "fp64",
    "int8": "int8", "uint8": "int8",
}  # fmt: skip
_ITEMSIZE = {"bf16": 2, "fp16": 2, "tf32": 4, "fp32": 4, "fp64": 8, "int8": 1}


def key(dtype):
    """Canonical key of a dtype; dtypes without a matrix path keep torch's name (e.g. 'int64')."""
    if isinstance(dtype, torch.dtype):
        return _BY_DTYPE.get(dtype, str(dtype).removeprefix("torch."))
    name = str(dtype).removeprefix("torch.").lower()
    return _BY_NAME.get(name, name)


def itemsize(dtype):
    if isinstance(dtype, torch.dtype):
        return dtype.itemsize
    k = key(dtype)
    if k in _ITEMSIZE:
        return _ITEMSIZE[k]
    return getattr(torch, k).itemsize


# A complex GEMM runs as the real GEMMs of its parts (re*re, im*im, re*im, im*re), as BLAS's cgemm
# counts it: 8 real FLOPs per complex multiply-add.
_COMPLEX_PARTS = {"complex32": torch.float16, "complex64": torch.float32, "complex128": torch.float64}
COMPLEX_PRODUCTS = 4

# torch's scalar type names, which CUDA's "not implemented for" errors print.
_TYPE_NAMES = {torch.bool: "Bool", torch.uint8: "Byte", torch.int8: "Char", torch.int16: "Short", torch.int32: "Int",
               torch.int64: "Long", torch.uint16: "UInt16", torch.uint32: "UInt32", torch.uint64: "UInt64"}


def complex_parts(dtype):
    """The matrix-path key of a complex dtype's real parts ('tf32' for complex64 when TF32 is
    allowed), or None for a real dtype."""
    real = _COMPLEX_PARTS.get(key(dtype))
    return None if real is None else matmul_key(real)


def check_matmul(op, dtype):
    """CUDA's error for a GEMM in a dtype with no matrix path (integers, bool): torch.mm on CUDA
    raises '"addmm_cuda" not implemented for 'Int''; torch._int_mm is PyTorch's integer GEMM."""
    if isinstance(dtype, torch.dtype) and dtype in _TYPE_NAMES:
        raise RuntimeError(f'"{op}_biren" not implemented for \'{_TYPE_NAMES[dtype]}\'')


def matmul_key(dtype):
    """Key of the matrix path a GEMM in `dtype` takes: FP32 uses TF32 when PyTorch's float32 matmul
    precision allows it ('high' or 'medium'), as on CUDA."""
    k = key(dtype)
    if k == "fp32" and torch.get_float32_matmul_precision() != "highest":
        return "tf32"
    return k
