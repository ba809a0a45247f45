"""RMSNorm over the last dim, forward and backward (torch.nn.functional.rms_norm)."""

import torch
import triton
import triton.language as tl

from .runtime import Kernel, from_f32, load_tile, next_pow2, on_gpu, row_layout, store_tile, tile_mode, to_f32

__all__ = ["rms_norm_fwd", "rms_norm_bwd"]


def _fwd_kernel(x_ptr, w_ptr, y_ptr, rstd_ptr, R2, C, s_x0, s_x1, s_x2, s_xc, s_y0, s_y1, s_y2, s_yc,
                s_r0, s_r1, s_r2, s_w, eps, BR: tl.constexpr, BC: tl.constexpr, X_MODE: tl.constexpr,
                X_PACK: tl.constexpr, Y_MODE: tl.constexpr, Y_PACK: tl.constexpr, HAS_W: tl.constexpr,
                SAVE_RSTD: tl.constexpr, CPU: tl.constexpr):
    i = tl.program_id(2).to(tl.int64)
    j = tl.program_id(1).to(tl.int64)
    x_ptr += i * s_x0 + j * s_x1
    y_ptr += i * s_y0 + j * s_y1
    rstd_ptr += i * s_r0 + j * s_r1
    cols = tl.arange(0, BC)
    if HAS_W:
        w = to_f32(tl.load(w_ptr + cols * s_w, mask=cols < C, other=0.0), CPU)
    for off_r in range(tl.program_id(0) * BR, R2, tl.num_programs(0) * BR):
        x = to_f32(load_tile(x_ptr, R2, C, s_x2, s_xc, off_r, 0, BR, BC, X_MODE, X_PACK), CPU)
        rstd = tl.rsqrt(tl.sum(x * x, 1) / C + eps)
        y = x * rstd[:, None]
        if HAS_W:
            y = y * w[None, :]
        store_tile(y_ptr, from_f32(y, y_ptr.dtype.element_ty, CPU), R2, C, s_y2, s_yc, off_r, 0, BR, BC, Y_MODE,
                   Y_PACK)
        if SAVE_RSTD:
            rows = off_r + tl.arange(0, BR)
            tl.store(rstd_ptr + rows * s_r2, rstd, mask=rows < R2)


def _bwd_kernel(dy_ptr, x_ptr, w_ptr, rstd_ptr, dx_ptr, dw_ptr, R1, R2, C,
                s_dy0, s_dy1, s_dy2, s_dyc, s_x0, s_x1, s_x2, s_xc, s_dx0, s_dx1, s_dx2, s_dxc,
                s_r0, s_r1, s_r2, s_w, s_dwp, s_dwc, eps, BR: tl.constexpr, BC: tl.constexpr,
                DY_MODE: tl.constexpr, DY_PACK: tl.constexpr, X_MODE: tl.constexpr, X_PACK: tl.constexpr,
                DX_MODE: tl.constexpr, DX_PACK: tl.constexpr, HAS_W: tl.constexpr, RECOMPUTE: tl.constexpr,
                CPU: tl.constexpr):
    """dx for this program's rows; with a weight, also this program's partial sum of dw (row of dw_ptr)."""
    i = tl.program_id(2).to(tl.int64)
    j = tl.program_id(1).to(tl.int64)
    dy_ptr += i * s_dy0 + j * s_dy1
    x_ptr += i * s_x0 + j * s_x1
    dx_ptr += i * s_dx0 + j * s_dx1
    rstd_ptr += i * s_r0 + j * s_r1
    cols = tl.arange(0, BC)
    if HAS_W:
        w = to_f32(tl.load(w_ptr + cols * s_w, mask=cols < C, other=0.0), CPU)
        dw = tl.zeros((BC, ), dtype=tl.float32)
    for off_r in range(tl.program_id(0) * BR, R2, tl.num_programs(0) * BR):
        x = to_f32(load_tile(x_ptr, R2, C, s_x2, s_xc, off_r, 0, BR, BC, X_MODE, X_PACK), CPU)
        dy = to_f32(load_tile(dy_ptr, R2, C, s_dy2, s_dyc, off_r, 0, BR, BC, DY_MODE, DY_PACK), CPU)
        if RECOMPUTE:
            rstd = tl.rsqrt(tl.sum(x * x, 1) / C + eps)
        else:
            rows = off_r + tl.arange(0, BR)
            rstd = tl.load(rstd_ptr + rows * s_r2, mask=rows < R2, other=0.0)
        xhat = x * rstd[:, None]
        if HAS_W:
            g = dy * w[None, :]
            dw += tl.sum(dy * xhat, 0)
        else:
            g = dy
        dx = rstd[:, None] * (g - xhat * (tl.sum(g * xhat, 1) / C)[:, None])
        store_tile(dx_ptr, from_f32(dx, dx_ptr.dtype.element_ty, CPU), R2, C, s_dx2, s_dxc, off_r, 0, BR, BC, DX_MODE,
                   DX_PACK)
    if HAS_W:
        p = (i * R1 + j) * tl.num_programs(0) + tl.program_id(0)
        tl.store(dw_ptr + p * s_dwp + cols * s_dwc, from_f32(dw, dw_ptr.dtype.element_ty, CPU), mask=cols < C)


_fwd = Kernel(_fwd_kernel)
_bwd = Kernel(_bwd_kernel)
_CPU_TILE = 1 << 20  # elements per interpreted tile


def _blocks(C, R2, gpu):
    """(BR, BC, num_warps): whole rows per tile; the interpreter takes as many rows as fit."""
    bc = max(next_pow2(C), 16)
    if gpu:
        return max(1, min(16, 4096 // bc)), bc, min(32, max(4, bc // 256))
    return max(1, min(next_pow2(R2), _CPU_TILE // bc)), bc, 1


def _gpu_programs(t, tiles):
    return min(tiles, 4 * torch.cuda.get_device_properties(t.device).multi_processor_count)


def _default_eps(x):
    # torch uses the epsilon of the type it computes in: float32 for the half types
    return torch.finfo(torch.float64 if x.dtype == torch.float64 else torch.float32).eps


def rms_norm_fwd(x, weight, out, *, eps=None, rstd=None):
    """out = x / sqrt(mean(x^2, -1) + eps) * weight; eps defaults to torch's (finfo(float32).eps).

    x, out: [..., C]; weight: [C] or None; rstd: optional float32 [...] receiving 1 / rms per row.
    """
    eps = _default_eps(x) if eps is None else eps
    C = x.shape[-1]
    rs = rstd.unsqueeze(-1) if rstd is not None else x[..., :1]
    (R0, R1, R2), (sx, sy, sr) = row_layout(x, out, rs)
    if x.numel() == 0:
        return
    gpu = on_gpu(x)
    BR, BC, warps = _blocks(C, R2, gpu)
    tiles = triton.cdiv(R2, BR)
    args = (x, weight if weight is not None else x, out, rs, R2, C, *sx, *sy, *sr[:3],
            weight.stride(0) if weight is not None else 0, eps)
    flags = dict(BR=BR, BC=BC, HAS_W=weight is not None, SAVE_RSTD=rstd is not None)
    if gpu:
        _fwd.gpu((_gpu_programs(x, tiles), R1, R0), *args, X_MODE=0, X_PACK=1, Y_MODE=0, Y_PACK=1, CPU=False,
                 num_warps=warps, **flags)
        return
    x_mode, x_pack = tile_mode(x, R2, C, sx[2], sx[3], sx[:2], BR * BC)
    y_mode, y_pack = tile_mode(out, R2, C, sy[2], sy[3], sy[:2], BR * BC)
    _fwd.cpu((1, R1, R0), *args, X_MODE=x_mode, X_PACK=x_pack, Y_MODE=y_mode, Y_PACK=y_pack, CPU=True, **flags)


def rms_norm_bwd(dy, x, weight, dx, dw=None, *, rstd=None, eps=None):
    """Gradients of rms_norm_fwd: dx (like x) and, with a weight, dw [C] (overwritten).

    rstd: the forward's saved 1 / rms per row; recomputed from x (with eps) when None.
    """
    eps = _default_eps(x) if eps is None else eps
    C = x.shape[-1]
    rs = rstd.unsqueeze(-1) if rstd is not None else x[..., :1]
    (R0, R1, R2), (sdy, sx, sdx, sr) = row_layout(dy, x, dx, rs)
    gpu = on_gpu(x)
    BR, BC, warps = _blocks(C, R2, gpu)
    tiles = triton.cdiv(R2, BR)
    P = _gpu_programs(x, tiles) if gpu else 1
    has_w = weight is not None
    if has_w and x.numel() == 0:
        dw.zero_()
    if x.numel() == 0:
        return
    if not has_w:
        partial, s_dw = dx, (0, 0)  # never written
    elif P * R1 * R0 == 1:  # one program: it writes dw itself
        partial, s_dw = dw, (0, dw.stride(0))
    else:
        partial = torch.empty((P * R1 * R0, C), dtype=torch.float32, device=x.device)
        s_dw = partial.stride()
    args = (dy, x, weight if has_w else x, rs, dx, partial, R1, R2, C, *sdy, *sx, *sdx, *sr[:3],
            weight.stride(0) if has_w else 0, *s_dw, eps)
    flags = dict(BR=BR, BC=BC, HAS_W=has_w, RECOMPUTE=rstd is None)
    if gpu:
        _bwd.gpu((P, R1, R0), *args, DY_MODE=0, DY_PACK=1, X_MODE=0, X_PACK=1, DX_MODE=0, DX_PACK=1, CPU=False,
                 num_warps=warps, **flags)
    else:
        modes = {}
        for name, t, st in (("DY", dy, sdy), ("X", x, sx), ("DX", dx, sdx)):
            modes[name + "_MODE"], modes[name + "_PACK"] = tile_mode(t, R2, C, st[2], st[3], st[:2], BR * BC)
        _bwd.cpu((P, R1, R0), *args, CPU=True, **modes, **flags)
    if has_w and partial is not dw:
        dw.copy_(partial.sum(0))
