"""MoE grouped GEMM: torch._grouped_mm's 2-D x 3-D case with offsets.

out[offs[g-1]:offs[g]] = x[offs[g-1]:offs[g]] @ w[g] (offs[-1] taken as 0); rows at or past
offs[-1] are left untouched (torch leaves them undefined).
"""

import torch
import triton
import triton.language as tl

from .gemm import GPU_CONFIGS, blas_threads, cpu_blocks
from .runtime import Kernel, from_f32, load_tile, next_pow2, on_gpu, store_tile, tile_mode, to_f32

__all__ = ["grouped_mm"]


def _gmm_kernel(x_ptr, w_ptr, offs_ptr, out_ptr, N, K, s_xm, s_xk, s_wg, s_wk, s_wn, s_om, s_on,
                BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, X_MODE: tl.constexpr, X_PACK: tl.constexpr,
                W_MODE: tl.constexpr, W_PACK: tl.constexpr, O_MODE: tl.constexpr, O_PACK: tl.constexpr,
                PRECISION: tl.constexpr, CPU: tl.constexpr):
    """One group's rows times one column block of its weight."""
    off_n = tl.program_id(0) * BN
    g = tl.program_id(1)
    end = tl.load(offs_ptr + g)
    start = tl.load(offs_ptr + g - 1, mask=g > 0, other=0)
    w_ptr += g.to(tl.int64) * s_wg
    for off_m in range(start, end, BM):
        acc = tl.zeros((BM, BN), dtype=tl.float32)
        for k in range(0, K, BK):
            a = load_tile(x_ptr, end, K, s_xm, s_xk, off_m, k, BM, BK, X_MODE, X_PACK)
            b = load_tile(w_ptr, K, N, s_wk, s_wn, k, off_n, BK, BN, W_MODE, W_PACK)
            if CPU:
                a = to_f32(a, CPU)
                b = to_f32(b, CPU)
            acc = tl.dot(a, b, acc, input_precision=PRECISION)
        store_tile(out_ptr, from_f32(acc, out_ptr.dtype.element_ty, CPU), end, N, s_om, s_on, off_m, off_n, BM, BN,
                   O_MODE, O_PACK)


# The GEMM configurations minus the program-order grouping (a group's rows are one program's loop).
_GMM_CONFIGS = [triton.Config({k: v for k, v in c.kwargs.items() if k != "GROUP_M"}, num_stages=c.num_stages,
                              num_warps=c.num_warps) for c in GPU_CONFIGS]
_gmm = Kernel(_gmm_kernel, _GMM_CONFIGS, gpu_key=["N", "K"])


def grouped_mm(x, w, offs, out):
    """out = torch._grouped_mm(x, w, offs=offs): x [T, K], w [G, K, N], offs int32 [G] cumulative row ends,
    out [T, N]; any strides."""
    T, K = x.shape
    G, _, N = w.shape
    if w.shape[1] != K or offs.shape != (G, ) or out.shape != (T, N):
        raise ValueError(f"grouped_mm: x {tuple(x.shape)}, w {tuple(w.shape)}, offs {tuple(offs.shape)}, "
                         f"out {tuple(out.shape)} do not match")
    if G == 0 or N == 0 or T == 0:
        return
    ends = offs.tolist()
    if any(b < a for a, b in zip([0, *ends], ends)) or ends[-1] > T:
        # PyTorch's CPU kernel does not check (it leaves rows unwritten or clamps); a kernel reading
        # rows past x's end must not run.
        raise RuntimeError(f"grouped_mm: offs must be non-decreasing, from 0 to at most the {T} rows of the "
                           f"input; got {ends}")
    strides = (*x.stride(), *w.stride(), *out.stride())
    precision = "ieee" if x.dtype == torch.float32 else None
    if on_gpu(x):
        _gmm.gpu(lambda meta: (triton.cdiv(N, meta["BN"]), G), x, w, offs, out, N, K, *strides, X_MODE=0, X_PACK=1,
                 W_MODE=0, W_PACK=1, O_MODE=0, O_PACK=1, PRECISION=precision, CPU=False)
        return
    BM, BN, BK = cpu_blocks(max(T // G, 1), N, K, G)
    BM = min(BM, max(next_pow2(T), 16))
    # Groups start at any row: x and out tiles can only use descriptors along rows (mode 1).
    x_mode, x_pack = tile_mode(x, T, K, *x.stride(), (), BM * BK)
    x_mode, x_pack = (x_mode, x_pack) if x_mode == 1 else (0, 1)
    w_mode, w_pack = tile_mode(w, K, N, w.stride(1), w.stride(2), (w.stride(0), ), BK * BN)
    o_mode, o_pack = tile_mode(out, T, N, *out.stride(), (), BM * BN)
    o_mode, o_pack = (o_mode, o_pack) if o_mode == 1 else (0, 1)
    _gmm.cpu((triton.cdiv(N, BN), G), x, w, offs, out, N, K, *strides, BM=BM, BN=BN, BK=BK, X_MODE=x_mode,
             X_PACK=x_pack, W_MODE=w_mode, W_PACK=w_pack, O_MODE=o_mode, O_PACK=o_pack, PRECISION=precision, CPU=True,
             blas_threads=blas_threads(BM, BN, BK))
