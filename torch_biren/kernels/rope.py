"""Rotary position embedding, Hugging Face "rotate_half" convention, forward and backward.

y = x * cos + rotate_half(x) * sin, rotate_half(x) = cat(-x[..., D/2:], x[..., :D/2]).
"""

import triton
import triton.language as tl

from .runtime import Kernel, from_f32, load_tile, next_pow2, on_gpu, store_tile, tile_mode, to_f32

__all__ = ["rope", "rope_fwd", "rope_bwd"]


def _rope_kernel(x_ptr, cos_ptr, sin_ptr, y_ptr, H, L, HALF,
                 s_xb, s_xh, s_xl, s_xd, s_cb, s_ch, s_cl, s_cd, s_sb, s_sh, s_sl, s_sd, s_yb, s_yh, s_yl, s_yd,
                 BL: tl.constexpr, BD: tl.constexpr, X_MODE: tl.constexpr, C_MODE: tl.constexpr,
                 S_MODE: tl.constexpr, Y_MODE: tl.constexpr, BACKWARD: tl.constexpr, CPU: tl.constexpr):
    off_l = tl.program_id(0) * BL
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    x_ptr += b * s_xb + h * s_xh
    cos_ptr += b * s_cb + h * s_ch
    sin_ptr += b * s_sb + h * s_sh
    y_ptr += b * s_yb + h * s_yh
    x1 = to_f32(load_tile(x_ptr, L, HALF, s_xl, s_xd, off_l, 0, BL, BD, X_MODE, 1), CPU)
    x2 = to_f32(load_tile(x_ptr + HALF * s_xd, L, HALF, s_xl, s_xd, off_l, 0, BL, BD, X_MODE, 1), CPU)
    c1 = to_f32(load_tile(cos_ptr, L, HALF, s_cl, s_cd, off_l, 0, BL, BD, C_MODE, 1), CPU)
    c2 = to_f32(load_tile(cos_ptr + HALF * s_cd, L, HALF, s_cl, s_cd, off_l, 0, BL, BD, C_MODE, 1), CPU)
    s1 = to_f32(load_tile(sin_ptr, L, HALF, s_sl, s_sd, off_l, 0, BL, BD, S_MODE, 1), CPU)
    s2 = to_f32(load_tile(sin_ptr + HALF * s_sd, L, HALF, s_sl, s_sd, off_l, 0, BL, BD, S_MODE, 1), CPU)
    if BACKWARD:  # the transpose of the rotation: swap and negate the sine halves
        s1, s2 = -s2, -s1
    dt = y_ptr.dtype.element_ty
    store_tile(y_ptr, from_f32(x1 * c1 - x2 * s1, dt, CPU), L, HALF, s_yl, s_yd, off_l, 0, BL, BD, Y_MODE, 1)
    store_tile(y_ptr + HALF * s_yd, from_f32(x2 * c2 + x1 * s2, dt, CPU), L, HALF, s_yl, s_yd, off_l, 0, BL, BD,
               Y_MODE, 1)


_rope = Kernel(_rope_kernel)
_CPU_TILE = 1 << 20


def _mode(t, half):
    # Both halves go through one mode, so the second half's base must qualify too.
    st = t.stride()
    modes = {tile_mode(v, t.shape[2], half, st[2], st[3], st[:2])[0] for v in (t[..., :half], t[..., half:])}
    return modes.pop() if len(modes) == 1 else 0


def _apply(x, cos, sin, out, backward):
    B, H, L, D = x.shape
    if D % 2:
        raise ValueError(f"rope: head dim {D} is odd")
    half = D // 2
    cos, sin = (c.unsqueeze(1) if c.dim() == 3 else c for c in (cos, sin))  # [B, L, D]: shared by heads
    cos, sin = cos.expand(x.shape), sin.expand(x.shape)
    if x.numel() == 0:
        return
    BD = max(next_pow2(half), 16)
    strides = [tuple(0 if n == 1 else s for n, s in zip(t.shape, t.stride())) for t in (x, cos, sin, out)]
    args = (x, cos, sin, out, H, L, half, *strides[0], *strides[1], *strides[2], *strides[3])
    if on_gpu(x):
        BL = max(1, min(64, 4096 // BD))
        _rope.gpu((triton.cdiv(L, BL), B * H), *args, BL=BL, BD=BD, X_MODE=0, C_MODE=0, S_MODE=0, Y_MODE=0,
                  BACKWARD=backward, CPU=False, num_warps=4)
        return
    BL = min(max(next_pow2(L), 1), _CPU_TILE // BD)
    _rope.cpu((triton.cdiv(L, BL), B * H), *args, BL=BL, BD=BD, X_MODE=_mode(x, half), C_MODE=_mode(cos, half),
              S_MODE=_mode(sin, half), Y_MODE=_mode(out, half), BACKWARD=backward, CPU=True)


def rope_fwd(x, cos, sin, out):
    """out = x * cos + rotate_half(x) * sin; x, out: [B, H, L, D] (out may be x); cos, sin broadcast to x
    ([L, D], [B, L, D] shared by all heads as in Hugging Face's unsqueeze_dim=1, or 4-D)."""
    _apply(x, cos, sin, out, False)


def rope_bwd(dy, cos, sin, dx):
    """dx = gradient of rope_fwd's input for output gradient dy (dx may be dy)."""
    _apply(dy, cos, sin, dx, True)


def rope(q, k, cos, sin, q_out, k_out, *, backward=False):
    """rope_fwd (or rope_bwd) on q and k: [B, Hq, L, D] and [B, Hkv, L, D]."""
    _apply(q, cos, sin, q_out, backward)
    _apply(k, cos, sin, k_out, backward)
