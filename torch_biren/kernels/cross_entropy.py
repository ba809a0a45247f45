"""Cross entropy fused with log-softmax over the last dim (torch.nn.functional.cross_entropy).

Forward keeps each row's logsumexp, so backward is one pass: dlogits = (softmax - onehot) * grad.
"""

import torch
import triton
import triton.language as tl

from .runtime import Kernel, from_f32, load_tile, next_pow2, on_gpu, row_layout, store_tile, tile_mode, to_f32
from .softmax import row_max_and_sum

__all__ = ["cross_entropy_fwd", "cross_entropy_bwd"]


def _fwd_kernel(x_ptr, t_ptr, loss_ptr, lse_ptr, R2, C, s_x0, s_x1, s_x2, s_xc, s_t0, s_t1, s_t2, s_tc,
                s_l0, s_l1, s_l2, s_lc, s_e0, s_e1, s_e2, s_ec, ignore_index,
                BR: tl.constexpr, BC: tl.constexpr, X_MODE: tl.constexpr, X_PACK: tl.constexpr, CPU: tl.constexpr):
    """Per row: lse = logsumexp(x), loss = lse - x[target] (0 where target is ignored or out of range)."""
    i = tl.program_id(2).to(tl.int64)
    j = tl.program_id(1).to(tl.int64)
    x_ptr += i * s_x0 + j * s_x1
    t_ptr += i * s_t0 + j * s_t1
    loss_ptr += i * s_l0 + j * s_l1
    lse_ptr += i * s_e0 + j * s_e1
    for off_r in range(tl.program_id(0) * BR, R2, tl.num_programs(0) * BR):
        rows = off_r + tl.arange(0, BR)
        m, s = row_max_and_sum(x_ptr, R2, C, s_x2, s_xc, off_r, BR, BC, X_MODE, X_PACK, CPU)
        lse = m + tl.log(s)
        t = tl.load(t_ptr + rows * s_t2, mask=rows < R2, other=ignore_index)
        valid = (t != ignore_index) & (t >= 0) & (t < C) & (rows < R2)
        x_t = to_f32(tl.load(x_ptr + rows * s_x2 + t * s_xc, mask=valid, other=0.0), CPU)
        loss = tl.where(valid, lse - x_t, 0.0)
        tl.store(loss_ptr + rows * s_l2, from_f32(loss, loss_ptr.dtype.element_ty, CPU), mask=rows < R2)
        tl.store(lse_ptr + rows * s_e2, lse, mask=rows < R2)


def _bwd_kernel(x_ptr, t_ptr, lse_ptr, g_ptr, dx_ptr, R2, C, s_x0, s_x1, s_x2, s_xc, s_t0, s_t1, s_t2, s_tc,
                s_e0, s_e1, s_e2, s_ec, s_g0, s_g1, s_g2, s_gc, s_dx0, s_dx1, s_dx2, s_dxc, ignore_index,
                BR: tl.constexpr, BC: tl.constexpr, X_MODE: tl.constexpr, X_PACK: tl.constexpr,
                DX_MODE: tl.constexpr, DX_PACK: tl.constexpr, CPU: tl.constexpr):
    """dx = (softmax(x) - onehot(target)) * g per row; zero rows for ignored targets. dx may be x."""
    i = tl.program_id(2).to(tl.int64)
    j = tl.program_id(1).to(tl.int64)
    x_ptr += i * s_x0 + j * s_x1
    dx_ptr += i * s_dx0 + j * s_dx1
    for off_r in range(tl.program_id(0) * BR, R2, tl.num_programs(0) * BR):
        rows = off_r + tl.arange(0, BR)
        t = tl.load(t_ptr + i * s_t0 + j * s_t1 + rows * s_t2, mask=rows < R2, other=ignore_index)
        valid = (t != ignore_index) & (rows < R2)
        lse = tl.load(lse_ptr + i * s_e0 + j * s_e1 + rows * s_e2, mask=valid, other=0.0)
        g = tl.load(g_ptr + i * s_g0 + j * s_g1 + rows * s_g2, mask=valid, other=0.0).to(tl.float32)
        g = tl.where(valid, g, 0.0)
        for off_c in range(0, C, BC):
            x = to_f32(load_tile(x_ptr, R2, C, s_x2, s_xc, off_r, off_c, BR, BC, X_MODE, X_PACK), CPU)
            p = tl.exp(x - lse[:, None])
            p = tl.where((off_c + tl.arange(0, BC))[None, :] == t[:, None], p - 1.0, p)
            store_tile(dx_ptr, from_f32(p * g[:, None], dx_ptr.dtype.element_ty, CPU), R2, C, s_dx2, s_dxc, off_r,
                       off_c, BR, BC, DX_MODE, DX_PACK)


_fwd = Kernel(_fwd_kernel)
_bwd = Kernel(_bwd_kernel)
_CPU_TILE = 1 << 20


def _blocks(C, R2, gpu):
    if gpu:
        return 1, min(max(next_pow2(C), 16), 8192), 8
    bc = min(max(next_pow2(C), 16), _CPU_TILE)
    return min(next_pow2(R2), _CPU_TILE // bc), bc, 1


def _per_row(t, x):
    # A per-row tensor ([...] or a scalar broadcast to it) as [..., 1], so it shares x's row layout.
    return t.reshape(t.shape if t.dim() else ()).expand(x.shape[:-1]).unsqueeze(-1)


def check_targets(target, classes, ignore_index):
    """CPU's error for a class index outside [0, classes) that is not ignore_index: the kernels would
    otherwise read a logit outside its row (a finite, wrong loss and gradient)."""
    bad = target[(target != ignore_index) & ((target < 0) | (target >= classes))]
    if bad.numel():
        raise IndexError(f"Target {int(bad[0])} is out of bounds.")


def cross_entropy_fwd(logits, target, loss, lse, *, reduction="mean", ignore_index=-100):
    """loss = cross_entropy(logits, target) with class scores on the last dim; lse: float32 [...] saved
    for cross_entropy_bwd. loss: [...] for reduction "none", else a 0-dim tensor. Targets equal to
    ignore_index add nothing ("mean" divides by the count of the others; none left gives nan)."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: unknown reduction {reduction!r}")
    check_targets(target, logits.shape[-1], ignore_index)
    rows = loss if reduction == "none" else torch.empty(logits.shape[:-1], dtype=torch.float32, device=logits.device)
    tensors = (logits, _per_row(target, logits), _per_row(rows, logits), _per_row(lse, logits))
    (R0, R1, R2), strides = row_layout(*tensors)
    C = logits.shape[-1]
    if rows.numel():
        gpu = on_gpu(logits)
        BR, BC, warps = _blocks(C, R2, gpu)
        args = (*tensors, R2, C, *(s for st in strides for s in st), ignore_index)
        if gpu:
            _fwd.gpu((triton.cdiv(R2, BR), R1, R0), *args, BR=BR, BC=BC, X_MODE=0, X_PACK=1, CPU=False,
                     num_warps=warps)
        else:
            x_mode, x_pack = tile_mode(logits, R2, C, strides[0][2], strides[0][3], strides[0][:2], BR * BC)
            _fwd.cpu((1, R1, R0), *args, BR=BR, BC=BC, X_MODE=x_mode, X_PACK=x_pack, CPU=True)
    if reduction == "sum":
        loss.copy_(rows.sum())
    elif reduction == "mean":
        loss.copy_(rows.sum() / (target != ignore_index).sum())


def cross_entropy_bwd(logits, target, lse, grad_loss, dlogits, *, reduction="mean", ignore_index=-100):
    """dlogits = gradient of cross_entropy_fwd's loss for its gradient grad_loss (0-dim, or [...] for
    "none"). dlogits may be logits (in place)."""
    check_targets(target, logits.shape[-1], ignore_index)
    if reduction == "mean":
        grad_loss = grad_loss / (target != ignore_index).sum()
    tensors = (logits, _per_row(target, logits), _per_row(lse, logits), _per_row(grad_loss, logits), dlogits)
    (R0, R1, R2), strides = row_layout(*tensors)
    C = logits.shape[-1]
    if logits.numel() == 0:
        return
    gpu = on_gpu(logits)
    BR, BC, warps = _blocks(C, R2, gpu)
    args = (*tensors, R2, C, *(s for st in strides for s in st), ignore_index)
    if gpu:
        _bwd.gpu((triton.cdiv(R2, BR), R1, R0), *args, BR=BR, BC=BC, X_MODE=0, X_PACK=1, DX_MODE=0, DX_PACK=1,
                 CPU=False, num_warps=warps)
        return
    sx, sdx = strides[0], strides[4]
    x_mode, x_pack = tile_mode(logits, R2, C, sx[2], sx[3], sx[:2], BR * BC)
    dx_mode, dx_pack = tile_mode(dlogits, R2, C, sdx[2], sdx[3], sdx[:2], BR * BC)
    _bwd.cpu((1, R1, R0), *args, BR=BR, BC=BC, X_MODE=x_mode, X_PACK=x_pack, DX_MODE=dx_mode, DX_PACK=dx_pack,
             CPU=True)
