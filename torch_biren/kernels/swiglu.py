"""SwiGLU activation: out = silu(gate) * up, forward and backward."""

import triton
import triton.language as tl

from .runtime import Kernel, from_f32, load_tile, next_pow2, on_gpu, row_layout, store_tile, tile_mode, to_f32

__all__ = ["swiglu_fwd", "swiglu_bwd"]


def _swiglu_kernel(g_ptr, u_ptr, dy_ptr, a_ptr, b_ptr, R2, C,
                   s_g0, s_g1, s_g2, s_gc, s_u0, s_u1, s_u2, s_uc, s_dy0, s_dy1, s_dy2, s_dyc,
                   s_a0, s_a1, s_a2, s_ac, s_b0, s_b1, s_b2, s_bc,
                   BR: tl.constexpr, BC: tl.constexpr, G_MODE: tl.constexpr, G_PACK: tl.constexpr,
                   U_MODE: tl.constexpr, U_PACK: tl.constexpr, DY_MODE: tl.constexpr, DY_PACK: tl.constexpr,
                   A_MODE: tl.constexpr, A_PACK: tl.constexpr, B_MODE: tl.constexpr, B_PACK: tl.constexpr,
                   BACKWARD: tl.constexpr, CPU: tl.constexpr):
    """Forward: a = silu(g) * u. Backward: a = dgate, b = dup for output gradient dy."""
    i = tl.program_id(2).to(tl.int64)
    j = tl.program_id(1).to(tl.int64)
    tiles_c = (C + BC - 1) // BC
    off_r = (tl.program_id(0) // tiles_c) * BR
    off_c = (tl.program_id(0) % tiles_c) * BC
    g = to_f32(load_tile(g_ptr + i * s_g0 + j * s_g1, R2, C, s_g2, s_gc, off_r, off_c, BR, BC, G_MODE, G_PACK), CPU)
    u = to_f32(load_tile(u_ptr + i * s_u0 + j * s_u1, R2, C, s_u2, s_uc, off_r, off_c, BR, BC, U_MODE, U_PACK), CPU)
    e = tl.exp(-tl.abs(g))  # never overflows
    r = 1.0 / (1.0 + e)
    sig = tl.where(g >= 0, r, e * r)
    a_ptr += i * s_a0 + j * s_a1
    if BACKWARD:
        dy = to_f32(load_tile(dy_ptr + i * s_dy0 + j * s_dy1, R2, C, s_dy2, s_dyc, off_r, off_c, BR, BC, DY_MODE,
                              DY_PACK), CPU)
        da = dy * u * sig * (1.0 + g * (1.0 - sig))
        db = dy * g * sig
        b_ptr += i * s_b0 + j * s_b1
        store_tile(b_ptr, from_f32(db, b_ptr.dtype.element_ty, CPU), R2, C, s_b2, s_bc, off_r, off_c, BR, BC, B_MODE,
                   B_PACK)
    else:
        da = g * sig * u
    store_tile(a_ptr, from_f32(da, a_ptr.dtype.element_ty, CPU), R2, C, s_a2, s_ac, off_r, off_c, BR, BC, A_MODE,
               A_PACK)


_swiglu = Kernel(_swiglu_kernel)
_CPU_TILE = 1 << 20


def _launch(g, u, dy, a, b, backward):
    (R0, R1, R2), strides = row_layout(g, u, dy, a, b)
    C = g.shape[-1]
    if g.numel() == 0:
        return
    gpu = on_gpu(g)
    if gpu:
        BC = min(max(next_pow2(C), 16), 1024)
        BR = max(1, 4096 // BC)
    else:
        BC = min(max(next_pow2(C), 16), _CPU_TILE)
        BR = min(next_pow2(R2), _CPU_TILE // BC)
    grid = (triton.cdiv(R2, BR) * triton.cdiv(C, BC), R1, R0)
    args = (g, u, dy, a, b, R2, C, *(s for st in strides for s in st))
    modes = {}
    for name, t, st in zip(("G", "U", "DY", "A", "B"), (g, u, dy, a, b), strides):
        mode, pack = (0, 1) if gpu else tile_mode(t, R2, C, st[2], st[3], st[:2], BR * BC)
        modes[name + "_MODE"], modes[name + "_PACK"] = mode, pack
    if gpu:
        _swiglu.gpu(grid, *args, BR=BR, BC=BC, BACKWARD=backward, CPU=False, num_warps=4, **modes)
    else:
        _swiglu.cpu(grid, *args, BR=BR, BC=BC, BACKWARD=backward, CPU=True, **modes)


def swiglu_fwd(gate, up, out):
    """out = silu(gate) * up; all [..., C], any strides (gate and up may be halves of one tensor)."""
    _launch(gate, up, gate, out, out, False)


def swiglu_bwd(dy, gate, up, dgate, dup):
    """Gradients of swiglu_fwd; dgate, dup may alias gate, up."""
    _launch(gate, up, dy, dgate, dup, True)
