"""Softmax over the last dim, forward and backward (torch.softmax / _softmax_backward_data)."""

import triton
import triton.language as tl

from .runtime import (Kernel, device_fn, from_f32, load_tile, next_pow2, on_gpu, row_layout, store_tile, tile_mode,
                      to_f32)

__all__ = ["softmax_fwd", "softmax_bwd"]


@device_fn
def row_max_and_sum(x_ptr, R2, C, s_x2, s_xc, off_r, BR: tl.constexpr, BC: tl.constexpr, X_MODE: tl.constexpr,
                    X_PACK: tl.constexpr, CPU: tl.constexpr):
    """Online max m and sum s of exp(x - m) over the rows off_r.. of x, in column blocks of BC (one
    read): log-sum-exp is m + log(s). Shared by softmax and cross-entropy."""
    m = tl.full((BR, ), float("-inf"), tl.float32)
    s = tl.zeros((BR, ), dtype=tl.float32)
    for off_c in range(0, C, BC):
        x = to_f32(load_tile(x_ptr, R2, C, s_x2, s_xc, off_r, off_c, BR, BC, X_MODE, X_PACK), CPU)
        x = tl.where((off_c + tl.arange(0, BC) < C)[None, :], x, float("-inf"))
        m_new = tl.maximum(m, tl.max(x, 1))
        s = s * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new[:, None]), 1)
        m = m_new
    return m, s


def _fwd_kernel(x_ptr, y_ptr, R2, C, s_x0, s_x1, s_x2, s_xc, s_y0, s_y1, s_y2, s_yc,
                BR: tl.constexpr, BC: tl.constexpr, X_MODE: tl.constexpr, X_PACK: tl.constexpr,
                Y_MODE: tl.constexpr, Y_PACK: tl.constexpr, ONE_BLOCK: tl.constexpr, EVEN_C: tl.constexpr,
                CPU: tl.constexpr):
    i = tl.program_id(2).to(tl.int64)
    j = tl.program_id(1).to(tl.int64)
    x_ptr += i * s_x0 + j * s_x1
    y_ptr += i * s_y0 + j * s_y1
    for off_r in range(tl.program_id(0) * BR, R2, tl.num_programs(0) * BR):
        if ONE_BLOCK:  # whole rows in registers: one read
            x = to_f32(load_tile(x_ptr, R2, C, s_x2, s_xc, off_r, 0, BR, BC, X_MODE, X_PACK), CPU)
            if not EVEN_C:
                x = tl.where((tl.arange(0, BC) < C)[None, :], x, float("-inf"))
            e = tl.exp(x - tl.max(x, 1)[:, None])
            y = e / tl.sum(e, 1)[:, None]
            store_tile(y_ptr, from_f32(y, y_ptr.dtype.element_ty, CPU), R2, C, s_y2, s_yc, off_r, 0, BR, BC, Y_MODE,
                       Y_PACK)
        else:  # online max and sum over column blocks, then a second pass to write
            m, s = row_max_and_sum(x_ptr, R2, C, s_x2, s_xc, off_r, BR, BC, X_MODE, X_PACK, CPU)
            for off_c in range(0, C, BC):
                x = to_f32(load_tile(x_ptr, R2, C, s_x2, s_xc, off_r, off_c, BR, BC, X_MODE, X_PACK), CPU)
                y = tl.exp(x - m[:, None]) / s[:, None]
                store_tile(y_ptr, from_f32(y, y_ptr.dtype.element_ty, CPU), R2, C, s_y2, s_yc, off_r, off_c, BR, BC,
                           Y_MODE, Y_PACK)


def _bwd_kernel(dy_ptr, y_ptr, dx_ptr, R2, C, s_dy0, s_dy1, s_dy2, s_dyc, s_y0, s_y1, s_y2, s_yc,
                s_dx0, s_dx1, s_dx2, s_dxc, BR: tl.constexpr, BC: tl.constexpr, DY_MODE: tl.constexpr,
                DY_PACK: tl.constexpr, Y_MODE: tl.constexpr, Y_PACK: tl.constexpr, DX_MODE: tl.constexpr,
                DX_PACK: tl.constexpr, ONE_BLOCK: tl.constexpr, CPU: tl.constexpr):
    """dx = y * (dy - sum(dy * y))."""
    i = tl.program_id(2).to(tl.int64)
    j = tl.program_id(1).to(tl.int64)
    dy_ptr += i * s_dy0 + j * s_dy1
    y_ptr += i * s_y0 + j * s_y1
    dx_ptr += i * s_dx0 + j * s_dx1
    for off_r in range(tl.program_id(0) * BR, R2, tl.num_programs(0) * BR):
        if ONE_BLOCK:
            y = to_f32(load_tile(y_ptr, R2, C, s_y2, s_yc, off_r, 0, BR, BC, Y_MODE, Y_PACK), CPU)
            dy = to_f32(load_tile(dy_ptr, R2, C, s_dy2, s_dyc, off_r, 0, BR, BC, DY_MODE, DY_PACK), CPU)
            dx = y * (dy - tl.sum(dy * y, 1)[:, None])
            store_tile(dx_ptr, from_f32(dx, dx_ptr.dtype.element_ty, CPU), R2, C, s_dx2, s_dxc, off_r, 0, BR, BC,
                       DX_MODE, DX_PACK)
        else:
            dot = tl.zeros((BR, ), dtype=tl.float32)
            for off_c in range(0, C, BC):
                y = to_f32(load_tile(y_ptr, R2, C, s_y2, s_yc, off_r, off_c, BR, BC, Y_MODE, Y_PACK), CPU)
                dy = to_f32(load_tile(dy_ptr, R2, C, s_dy2, s_dyc, off_r, off_c, BR, BC, DY_MODE, DY_PACK), CPU)
                dot += tl.sum(dy * y, 1)
            for off_c in range(0, C, BC):
                y = to_f32(load_tile(y_ptr, R2, C, s_y2, s_yc, off_r, off_c, BR, BC, Y_MODE, Y_PACK), CPU)
                dy = to_f32(load_tile(dy_ptr, R2, C, s_dy2, s_dyc, off_r, off_c, BR, BC, DY_MODE, DY_PACK), CPU)
                store_tile(dx_ptr, from_f32(y * (dy - dot[:, None]), dx_ptr.dtype.element_ty, CPU), R2, C, s_dx2,
                           s_dxc, off_r, off_c, BR, BC, DX_MODE, DX_PACK)


_fwd = Kernel(_fwd_kernel)
_bwd = Kernel(_bwd_kernel)
_CPU_TILE = 1 << 20
_GPU_MAX_BLOCK = 8192


def _blocks(C, R2, gpu):
    if gpu:
        bc = min(max(next_pow2(C), 16), _GPU_MAX_BLOCK)
        return max(1, min(16, 2048 // bc)), bc, min(16, max(4, bc // 512))
    bc = min(max(next_pow2(C), 16), _CPU_TILE)
    return min(next_pow2(R2), _CPU_TILE // bc), bc, 1


def _launch(kernel, tensors, names, extra):
    (R0, R1, R2), strides = row_layout(*tensors)
    C = tensors[0].shape[-1]
    if tensors[0].numel() == 0:
        return
    gpu = on_gpu(tensors[0])
    BR, BC, warps = _blocks(C, R2, gpu)
    args = (*tensors, R2, C, *(s for st in strides for s in st))
    flags = dict(BR=BR, BC=BC, ONE_BLOCK=C <= BC, **extra(C, BC))
    if gpu:
        modes = {f"{n}_{k}": v for n in names for k, v in (("MODE", 0), ("PACK", 1))}
        kernel.gpu((triton.cdiv(R2, BR), R1, R0), *args, CPU=False, num_warps=warps, **modes, **flags)
        return
    modes = {}
    for n, t, st in zip(names, tensors, strides):
        modes[n + "_MODE"], modes[n + "_PACK"] = tile_mode(t, R2, C, st[2], st[3], st[:2], BR * BC)
    kernel.cpu((1, R1, R0), *args, CPU=True, **modes, **flags)


def softmax_fwd(x, out):
    """out = softmax(x, dim=-1), computed in float32; x, out: [..., C] (out's dtype may differ)."""
    _launch(_fwd, (x, out), ("X", "Y"), lambda C, BC: dict(EVEN_C=C % BC == 0))


def softmax_bwd(dy, y, dx):
    """dx = y * (dy - sum(dy * y, -1)) for y = softmax_fwd's output."""
    _launch(_bwd, (dy, y, dx), ("DY", "Y", "DX"), lambda C, BC: {})
