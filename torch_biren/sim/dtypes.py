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


def matmul_key(dtype):
    """Key of the matrix path a GEMM in `dtype` takes: FP32 uses TF32 when PyTorch's float32 matmul
    precision allows it ('high' or 'medium'), as on CUDA."""
    k = key(dtype)
    if k == "fp32" and torch.get_float32_matmul_precision() != "highest":
        return "tf32"
    return k
