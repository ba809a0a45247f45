"""GEMM family: mm, addmm, bmm, baddbmm and linear as one strided, batched kernel.

out = alpha * (a @ b) + beta * c, accumulated in float32 and cast on store. Operands are read
through their strides (transposed, sliced or batch-broadcast views cost no copy).
"""

import functools
import os

import torch
import triton
import triton.language as tl

from .runtime import Kernel, from_f32, load_tile, next_pow2, on_gpu, store_tile, tile_mode, to_f32

__all__ = ["mm", "linear"]


def _mm_kernel(a_ptr, b_ptr, c_ptr, out_ptr, M, N, K,
               s_ab, s_am, s_ak, s_bb, s_bk, s_bn, s_cb, s_cm, s_cn, s_ob, s_om, s_on, alpha, beta,
               BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, GROUP_M: tl.constexpr,
               A_MODE: tl.constexpr, A_PACK: tl.constexpr, B_MODE: tl.constexpr, B_PACK: tl.constexpr,
               C_MODE: tl.constexpr, C_PACK: tl.constexpr, O_MODE: tl.constexpr, O_PACK: tl.constexpr,
               HAS_C: tl.constexpr, C_ROW: tl.constexpr, SCALE_AB: tl.constexpr, SCALE_C: tl.constexpr,
               PRECISION: tl.constexpr, CPU: tl.constexpr):
    pid = tl.program_id(0)
    grid_n = (N + BN - 1) // BN
    if GROUP_M == 1:
        pid_m = pid // grid_n
        pid_n = pid % grid_n
    else:  # grouped order: programs that run together share rows of a and columns of b in L2
        grid_m = (M + BM - 1) // BM
        group = GROUP_M * grid_n
        first_m = (pid // group) * GROUP_M
        size_m = tl.minimum(grid_m - first_m, GROUP_M)
        pid_m = first_m + (pid % group) % size_m
        pid_n = (pid % group) // size_m
    off_m = pid_m * BM
    off_n = pid_n * BN
    bat = tl.program_id(1).to(tl.int64)
    a_ptr += bat * s_ab
    b_ptr += bat * s_bb
    out_ptr += bat * s_ob

    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k in range(0, K, BK):
        a = load_tile(a_ptr, M, K, s_am, s_ak, off_m, k, BM, BK, A_MODE, A_PACK)
        b = load_tile(b_ptr, K, N, s_bk, s_bn, k, off_n, BK, BN, B_MODE, B_PACK)
        if CPU:  # the interpreter multiplies float32 with BLAS; its bf16 arithmetic is wrong
            a = to_f32(a, CPU)
            b = to_f32(b, CPU)
        acc = tl.dot(a, b, acc, input_precision=PRECISION)
    if SCALE_AB:
        acc = acc * alpha
    if HAS_C:
        c_ptr += bat * s_cb
        if C_ROW:  # c is constant down the columns (a bias): read one row
            c = load_tile(c_ptr, 1, N, 0, s_cn, 0, off_n, 1, BN, C_MODE, C_PACK)
        else:
            c = load_tile(c_ptr, M, N, s_cm, s_cn, off_m, off_n, BM, BN, C_MODE, C_PACK)
        c = to_f32(c, CPU)
        if SCALE_C:
            c = c * beta
        acc = acc + c
    store_tile(out_ptr, from_f32(acc, out_ptr.dtype.element_ty, CPU), M, N, s_om, s_on, off_m, off_n, BM, BN,
               O_MODE, O_PACK)


# GPU: the Triton matmul tutorial's configurations (fp32 ones that overflow shared memory are skipped).
GPU_CONFIGS = [
    triton.Config({"BM": 128, "BN": 256, "BK": 64, "GROUP_M": 8}, num_stages=3, num_warps=8),
    triton.Config({"BM": 64, "BN": 256, "BK": 32, "GROUP_M": 8}, num_stages=4, num_warps=4),
    triton.Config({"BM": 128, "BN": 128, "BK": 32, "GROUP_M": 8}, num_stages=4, num_warps=4),
    triton.Config({"BM": 128, "BN": 64, "BK": 32, "GROUP_M": 8}, num_stages=4, num_warps=4),
    triton.Config({"BM": 64, "BN": 128, "BK": 32, "GROUP_M": 8}, num_stages=4, num_warps=4),
    triton.Config({"BM": 128, "BN": 32, "BK": 32, "GROUP_M": 8}, num_stages=4, num_warps=4),
    triton.Config({"BM": 64, "BN": 32, "BK": 32, "GROUP_M": 8}, num_stages=5, num_warps=2),
    triton.Config({"BM": 32, "BN": 64, "BK": 32, "GROUP_M": 8}, num_stages=5, num_warps=2),
]
_mm = Kernel(_mm_kernel, GPU_CONFIGS, gpu_key=["M", "N", "K"])

# Interpreter cost model (ms), fitted on a 2-core EPYC: per program and per K step (Python-level
# tl ops), per element gathered or scattered, per float32 multiply-add in BLAS.
_T_PROGRAM, _T_STEP, _T_ELEM, _T_FMA = 1.0, 1.5, 1.1e-5, 2e-8
_MAX_TILE = 1 << 20  # elements: Triton's largest block
_BIG_DOT = 1 << 27  # multiply-adds from which a block's dot gets all of OpenBLAS's threads


@functools.lru_cache(maxsize=4096)
def cpu_blocks(M, N, K, batch):
    """(BM, BN, BK) minimising the modelled interpreter time: big tiles, few programs."""
    def sizes(n):
        return [1 << i for i in range(4, next_pow2(max(n, 16)).bit_length())]

    best = None
    for bm in sizes(M):
        for bn in sizes(N):
            for bk in sizes(K):
                if max(bm * bn, bm * bk, bk * bn) > _MAX_TILE:
                    continue
                programs = -(-M // bm) * -(-N // bn) * batch
                steps = -(-K // bk) if K else 0
                cost = programs * (_T_PROGRAM + steps * _T_STEP + bm * bn * _T_ELEM
                                   + steps * ((bm + bn) * bk * _T_ELEM + bm * bn * bk * _T_FMA))
                if best is None or cost < best[0]:
                    best = (cost, bm, bn, bk)
    return best[1:]


def blas_threads(BM, BN, BK):
    """OpenBLAS threads for an interpreted block dot: all of them only for big dots on idle cores
    (with other work on the cores, multi-threaded OpenBLAS runs several times slower)."""
    if BM * BN * BK < _BIG_DOT or os.getloadavg()[0] > (os.cpu_count() or 1) - 0.5:
        return 1
    return None


def _strides3(t):
    # Size-1 dims may carry any stride; zero keeps them out of the alignment checks.
    return tuple(0 if n == 1 else s for n, s in zip(t.shape, t.stride()))


def mm(a, b, out, *, c=None, bias=None, alpha=1.0, beta=1.0):
    """out = alpha * (a @ b) + beta * c + bias (torch mm, addmm, bmm, baddbmm).

    a: [M, K] or [B, M, K]; b: [K, N] or [B, K, N]; out: [M, N] or [B, M, N], written in place.
    A 2-D operand of a batched product is shared by every batch. c broadcasts to out (beta == 0
    ignores it, as torch does); bias: [N]. a and b share a float dtype; out may differ.
    """
    if bias is not None:
        if c is not None:
            raise ValueError("mm: pass c or bias, not both")
        c, beta = bias, 1.0
    if c is not None and beta == 0:
        c = None
    if a.dtype != b.dtype:
        raise TypeError(f"mm: a is {a.dtype} but b is {b.dtype}")
    o3 = out if out.dim() == 3 else out.unsqueeze(0)
    B, M, N = o3.shape
    K = a.shape[-1]
    if a.shape[-2] != M or b.shape[-2:] != (K, N):
        raise ValueError(f"mm: shapes {tuple(a.shape)} @ {tuple(b.shape)} -> {tuple(out.shape)} do not match")
    a3 = a.expand(B, M, K)
    b3 = b.expand(B, K, N)
    if B == 0 or M == 0 or N == 0:
        return
    (s_ab, s_am, s_ak), (s_bb, s_bk, s_bn), (s_ob, s_om, s_on) = _strides3(a3), _strides3(b3), _strides3(o3)
    if c is None:
        c3, (s_cb, s_cm, s_cn) = o3, (0, 0, 0)
    else:
        c3 = c.expand(o3.shape)
        s_cb, s_cm, s_cn = _strides3(c3)
    args = (a3, b3, c3, o3, M, N, K, s_ab, s_am, s_ak, s_bb, s_bk, s_bn, s_cb, s_cm, s_cn, s_ob, s_om, s_on,
            alpha, beta)
    flags = dict(HAS_C=c is not None, C_ROW=s_cm == 0, SCALE_AB=alpha != 1, SCALE_C=beta != 1,
                 PRECISION="ieee" if a.dtype == torch.float32 else None)
    if on_gpu(out):
        _mm.gpu(lambda meta: (triton.cdiv(M, meta["BM"]) * triton.cdiv(N, meta["BN"]), B), *args,
                A_MODE=0, A_PACK=1, B_MODE=0, B_PACK=1, C_MODE=0, C_PACK=1, O_MODE=0, O_PACK=1, CPU=False, **flags)
        return
    BM, BN, BK = cpu_blocks(M, N, K, B)
    batch = B > 1
    a_mode, a_pack = tile_mode(a3, M, K, s_am, s_ak, (s_ab, ) * batch, BM * BK)
    b_mode, b_pack = tile_mode(b3, K, N, s_bk, s_bn, (s_bb, ) * batch, BK * BN)
    o_mode, o_pack = tile_mode(o3, M, N, s_om, s_on, (s_ob, ) * batch, BM * BN)
    c_mode, c_pack = tile_mode(c3, 1 if flags["C_ROW"] else M, N, s_cm, s_cn, (s_cb, ) * batch, BM * BN)
    _mm.cpu((triton.cdiv(M, BM) * triton.cdiv(N, BN), B), *args, BM=BM, BN=BN, BK=BK, GROUP_M=1,
            A_MODE=a_mode, A_PACK=a_pack, B_MODE=b_mode, B_PACK=b_pack, C_MODE=c_mode, C_PACK=c_pack,
            O_MODE=o_mode, O_PACK=o_pack, CPU=True, blas_threads=blas_threads(BM, BN, BK), **flags)


def linear(x, weight, out, bias=None):
    """out = x @ weight.T + bias (torch.nn.functional.linear); x: [..., K], weight: [N, K], out: [..., N].

    Leading dims are flattened when x and out allow it without a copy; otherwise x must be 3-D.
    """
    if x.dim() > 2:
        try:
            x, out = x.view(-1, x.shape[-1]), out.view(-1, out.shape[-1])
        except RuntimeError:
            if x.dim() != 3:
                raise ValueError("linear: x and out need leading dims that flatten without a copy") from None
    mm(x, weight.T, out, bias=bias)
