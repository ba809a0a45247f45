"""Flash attention forward and backward, matching torch.nn.functional.scaled_dot_product_attention.

Online softmax over key blocks: no score matrix beyond one [BM, BN] block. Causal masking is
top-left aligned (key j is visible to query i iff j <= i), as torch's is_causal. GQA/MQA read kv
head h // (Hq // Hkv) in place. Rows that mask every key give zeros, as torch does.
"""

import functools
import math

import torch
import triton
import triton.language as tl

from .runtime import Kernel, device_fn, from_f32, load_tile, next_pow2, on_gpu, store_tile, tile_mode, to_f32

__all__ = ["attention_fwd", "attention_bwd"]

_LOG2E = 1.4426950408889634


@device_fn
def _scores(q, kT, mask_ptr, off_m, off_n, Lq, Lk, s_mm, s_mn, qk_scale, BM: tl.constexpr, BN: tl.constexpr,
            CAUSAL: tl.constexpr, MASK: tl.constexpr, MASK_ROW: tl.constexpr, M_MODE: tl.constexpr,
            EVEN_N: tl.constexpr, PRECISION: tl.constexpr, CPU: tl.constexpr):
    """Masked scores of a [BM, BN] block in log2 units. MASK: 0 none, 1 boolean (as uint8), 2 additive."""
    s = tl.dot(q, kT, input_precision=PRECISION) * qk_scale
    if MASK != 0:
        if MASK_ROW:  # the same for every query row (a padding mask): read one row
            mk = load_tile(mask_ptr, 1, Lk, 0, s_mn, 0, off_n, 1, BN, M_MODE, 1)
        else:
            mk = load_tile(mask_ptr, Lq, Lk, s_mm, s_mn, off_m, off_n, BM, BN, M_MODE, 1)
        if MASK == 1:
            s = tl.where(mk != 0, s, float("-inf"))
        else:
            s = s + to_f32(mk, CPU) * 1.4426950408889634
    if CAUSAL:
        cols = off_n + tl.arange(0, BN)
        s = tl.where((off_m + tl.arange(0, BM))[:, None] >= cols[None, :], s, float("-inf"))
    if not EVEN_N:
        cols = off_n + tl.arange(0, BN)
        s = tl.where(cols[None, :] < Lk, s, float("-inf"))
    return s


def _fwd_kernel(q_ptr, k_ptr, v_ptr, o_ptr, lse_ptr, mask_ptr,
                s_qb, s_qh, s_qm, s_qd, s_kb, s_kh, s_kn, s_kd, s_vb, s_vh, s_vn, s_vd,
                s_ob, s_oh, s_om, s_od, s_lb, s_lh, s_lm, s_mb, s_mh, s_mm, s_mn,
                H, GROUP, Lq, Lk, Dk, Dv, qk_scale,
                BM: tl.constexpr, BN: tl.constexpr, BDK: tl.constexpr, BDV: tl.constexpr,
                Q_MODE: tl.constexpr, KT_MODE: tl.constexpr, V_MODE: tl.constexpr, O_MODE: tl.constexpr,
                M_MODE: tl.constexpr, CAUSAL: tl.constexpr, MASK: tl.constexpr, MASK_ROW: tl.constexpr,
                EVEN_N: tl.constexpr, PRECISION: tl.constexpr, CPU: tl.constexpr):
    off_m = tl.program_id(0) * BM
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = bh % H
    kvh = (h // GROUP).to(tl.int64)
    h = h.to(tl.int64)
    q_ptr += b * s_qb + h * s_qh
    k_ptr += b * s_kb + kvh * s_kh
    v_ptr += b * s_vb + kvh * s_vh
    mask_ptr += b * s_mb + h * s_mh

    q = load_tile(q_ptr, Lq, Dk, s_qm, s_qd, off_m, 0, BM, BDK, Q_MODE, 1)
    if CPU:
        q = to_f32(q, CPU)
    m_i = tl.full((BM, ), float("-inf"), tl.float32)
    l_i = tl.zeros((BM, ), dtype=tl.float32)
    acc = tl.zeros((BM, BDV), dtype=tl.float32)
    hi = tl.minimum(Lk, off_m + BM) if CAUSAL else Lk
    for off_n in range(0, hi, BN):
        kT = load_tile(k_ptr, Dk, Lk, s_kd, s_kn, 0, off_n, BDK, BN, KT_MODE, 1)
        v = load_tile(v_ptr, Lk, Dv, s_vn, s_vd, off_n, 0, BN, BDV, V_MODE, 1)
        if CPU:
            kT = to_f32(kT, CPU)
            v = to_f32(v, CPU)
        s = _scores(q, kT, mask_ptr, off_m, off_n, Lq, Lk, s_mm, s_mn, qk_scale, BM, BN, CAUSAL, MASK, MASK_ROW,
                    M_MODE, EVEN_N, PRECISION, CPU)
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_sh = m_new
        if MASK != 0:  # a row with no visible key yet: keep exp2 away from -inf - -inf
            m_sh = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.exp2(s - m_sh[:, None])
        alpha = tl.exp2(m_i - m_sh)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
        m_i = m_new
    if MASK != 0:  # rows that saw no key: out = 0 / 1, lse = -inf
        l_i = tl.where(l_i == 0.0, 1.0, l_i)
    lse = (m_i + tl.log2(l_i)) * 0.6931471805599453
    o_ptr += b * s_ob + h * s_oh
    store_tile(o_ptr, from_f32(acc / l_i[:, None], o_ptr.dtype.element_ty, CPU), Lq, Dv, s_om, s_od, off_m, 0, BM,
               BDV, O_MODE, 1)
    rows = off_m + tl.arange(0, BM)
    tl.store(lse_ptr + b * s_lb + h * s_lh + rows * s_lm, lse, mask=rows < Lq)


def _bwd_dq_kernel(q_ptr, k_ptr, v_ptr, o_ptr, do_ptr, lse_ptr, delta_ptr, dq_ptr, mask_ptr,
                   s_qb, s_qh, s_qm, s_qd, s_kb, s_kh, s_kn, s_kd, s_vb, s_vh, s_vn, s_vd,
                   s_ob, s_oh, s_om, s_od, s_dob, s_doh, s_dom, s_dod, s_lb, s_lh, s_lm,
                   s_dqb, s_dqh, s_dqm, s_dqd, s_mb, s_mh, s_mm, s_mn,
                   H, GROUP, Lq, Lk, Dk, Dv, qk_scale, scale,
                   BM: tl.constexpr, BN: tl.constexpr, BDK: tl.constexpr, BDV: tl.constexpr,
                   Q_MODE: tl.constexpr, KT_MODE: tl.constexpr, VT_MODE: tl.constexpr, O_MODE: tl.constexpr,
                   DO_MODE: tl.constexpr, DQ_MODE: tl.constexpr, M_MODE: tl.constexpr, CAUSAL: tl.constexpr,
                   MASK: tl.constexpr, MASK_ROW: tl.constexpr, EVEN_N: tl.constexpr, PRECISION: tl.constexpr,
                   CPU: tl.constexpr):
    """dq for one query block; also writes delta = rowsum(dout * out) for the dk/dv kernel."""
    off_m = tl.program_id(0) * BM
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = bh % H
    kvh = (h // GROUP).to(tl.int64)
    h = h.to(tl.int64)
    k_ptr += b * s_kb + kvh * s_kh
    v_ptr += b * s_vb + kvh * s_vh
    mask_ptr += b * s_mb + h * s_mh

    q = load_tile(q_ptr + b * s_qb + h * s_qh, Lq, Dk, s_qm, s_qd, off_m, 0, BM, BDK, Q_MODE, 1)
    do = load_tile(do_ptr + b * s_dob + h * s_doh, Lq, Dv, s_dom, s_dod, off_m, 0, BM, BDV, DO_MODE, 1)
    o = load_tile(o_ptr + b * s_ob + h * s_oh, Lq, Dv, s_om, s_od, off_m, 0, BM, BDV, O_MODE, 1)
    delta = tl.sum(to_f32(do, CPU) * to_f32(o, CPU), 1)
    rows = off_m + tl.arange(0, BM)
    tl.store(delta_ptr + bh.to(tl.int64) * Lq + rows, delta, mask=rows < Lq)
    lse = tl.load(lse_ptr + b * s_lb + h * s_lh + rows * s_lm, mask=rows < Lq, other=0.0) * 1.4426950408889634
    if MASK != 0:  # rows that see no key: make p vanish instead of exp2(-inf + inf)
        lse = tl.where(lse == float("-inf"), float("inf"), lse)
    if CPU:
        q = to_f32(q, CPU)
        do = to_f32(do, CPU)

    dq = tl.zeros((BM, BDK), dtype=tl.float32)
    hi = tl.minimum(Lk, off_m + BM) if CAUSAL else Lk
    for off_n in range(0, hi, BN):
        kT = load_tile(k_ptr, Dk, Lk, s_kd, s_kn, 0, off_n, BDK, BN, KT_MODE, 1)
        vT = load_tile(v_ptr, Dv, Lk, s_vd, s_vn, 0, off_n, BDV, BN, VT_MODE, 1)
        if CPU:
            kT = to_f32(kT, CPU)
            vT = to_f32(vT, CPU)
        s = _scores(q, kT, mask_ptr, off_m, off_n, Lq, Lk, s_mm, s_mn, qk_scale, BM, BN, CAUSAL, MASK, MASK_ROW,
                    M_MODE, EVEN_N, PRECISION, CPU)
        p = tl.exp2(s - lse[:, None])
        ds = p * (tl.dot(do, vT, input_precision=PRECISION) - delta[:, None])
        dq += tl.dot(ds.to(kT.dtype), tl.trans(kT), input_precision=PRECISION)
    dq_ptr += b * s_dqb + h * s_dqh
    store_tile(dq_ptr, from_f32(dq * scale, dq_ptr.dtype.element_ty, CPU), Lq, Dk, s_dqm, s_dqd, off_m, 0, BM, BDK,
               DQ_MODE, 1)


def _bwd_dkdv_kernel(q_ptr, k_ptr, v_ptr, do_ptr, lse_ptr, delta_ptr, dk_ptr, dv_ptr, mask_ptr,
                     s_qb, s_qh, s_qm, s_qd, s_kb, s_kh, s_kn, s_kd, s_vb, s_vh, s_vn, s_vd,
                     s_dob, s_doh, s_dom, s_dod, s_lb, s_lh, s_lm,
                     s_dkb, s_dkh, s_dkn, s_dkd, s_dvb, s_dvh, s_dvn, s_dvd, s_mb, s_mh, s_mm, s_mn,
                     HKV, GROUP, Lq, Lk, Dk, Dv, qk_scale, scale,
                     BM: tl.constexpr, BN: tl.constexpr, BDK: tl.constexpr, BDV: tl.constexpr,
                     Q_MODE: tl.constexpr, K_MODE: tl.constexpr, V_MODE: tl.constexpr, DO_MODE: tl.constexpr,
                     DK_MODE: tl.constexpr, DV_MODE: tl.constexpr, M_MODE: tl.constexpr, CAUSAL: tl.constexpr,
                     MASK: tl.constexpr, MASK_ROW: tl.constexpr, EVEN_N: tl.constexpr, PRECISION: tl.constexpr,
                     CPU: tl.constexpr):
    """dk, dv for one key block, summed over the query heads that share its kv head."""
    off_n = tl.program_id(0) * BN
    bh = tl.program_id(1)
    b = (bh // HKV).to(tl.int64)
    kvh = (bh % HKV).to(tl.int64)
    k = load_tile(k_ptr + b * s_kb + kvh * s_kh, Lk, Dk, s_kn, s_kd, off_n, 0, BN, BDK, K_MODE, 1)
    v = load_tile(v_ptr + b * s_vb + kvh * s_vh, Lk, Dv, s_vn, s_vd, off_n, 0, BN, BDV, V_MODE, 1)
    if CPU:
        k = to_f32(k, CPU)
        v = to_f32(v, CPU)
    kT = tl.trans(k)
    vT = tl.trans(v)
    dk = tl.zeros((BN, BDK), dtype=tl.float32)
    dv = tl.zeros((BN, BDV), dtype=tl.float32)
    lo = (off_n // BM) * BM if CAUSAL else 0  # query rows above the block's first key see none of it
    for g in range(0, GROUP):
        h = kvh * GROUP + g
        q_h = q_ptr + b * s_qb + h * s_qh
        do_h = do_ptr + b * s_dob + h * s_doh
        m_h = mask_ptr + b * s_mb + h * s_mh
        bh_q = b * HKV * GROUP + h
        for off_m in range(lo, Lq, BM):
            q = load_tile(q_h, Lq, Dk, s_qm, s_qd, off_m, 0, BM, BDK, Q_MODE, 1)
            do = load_tile(do_h, Lq, Dv, s_dom, s_dod, off_m, 0, BM, BDV, DO_MODE, 1)
            if CPU:
                q = to_f32(q, CPU)
                do = to_f32(do, CPU)
            rows = off_m + tl.arange(0, BM)
            lse = tl.load(lse_ptr + b * s_lb + h * s_lh + rows * s_lm, mask=rows < Lq, other=0.0) * 1.4426950408889634
            if MASK != 0:
                lse = tl.where(lse == float("-inf"), float("inf"), lse)
            delta = tl.load(delta_ptr + bh_q * Lq + rows, mask=rows < Lq, other=0.0)
            s = _scores(q, kT, m_h, off_m, off_n, Lq, Lk, s_mm, s_mn, qk_scale, BM, BN, CAUSAL, MASK, MASK_ROW,
                        M_MODE, EVEN_N, PRECISION, CPU)
            p = tl.exp2(s - lse[:, None])
            if not CPU:
                p = p.to(do.dtype)
            dv += tl.dot(tl.trans(p), do, input_precision=PRECISION)
            ds = p * (tl.dot(do, vT, input_precision=PRECISION) - delta[:, None])
            dk += tl.dot(tl.trans(ds.to(q.dtype)), q, input_precision=PRECISION)
    store_tile(dk_ptr + b * s_dkb + kvh * s_dkh, from_f32(dk * scale, dk_ptr.dtype.element_ty, CPU), Lk, Dk, s_dkn,
               s_dkd, off_n, 0, BN, BDK, DK_MODE, 1)
    store_tile(dv_ptr + b * s_dvb + kvh * s_dvh, from_f32(dv, dv_ptr.dtype.element_ty, CPU), Lk, Dv, s_dvn, s_dvd,
               off_n, 0, BN, BDV, DV_MODE, 1)


# GPU: flash-attention tutorial style; configs too big for a head dim fail to compile and are skipped.
def _gpu_configs(pairs):
    return [triton.Config({"BM": bm, "BN": bn}, num_stages=s, num_warps=w) for bm, bn, s, w in pairs]


_fwd = Kernel(_fwd_kernel, _gpu_configs([(128, 64, 3, 8), (128, 128, 3, 8), (64, 64, 4, 4), (64, 32, 4, 4),
                                         (32, 32, 3, 4)]), gpu_key=["Lq", "Lk", "BDK", "BDV"])
_BWD_CONFIGS = [(64, 64, 3, 4), (32, 64, 3, 4), (64, 32, 3, 4), (32, 32, 3, 4), (16, 32, 2, 4)]
_bwd_dq = Kernel(_bwd_dq_kernel, _gpu_configs(_BWD_CONFIGS), gpu_key=["Lq", "Lk", "BDK", "BDV"])
_bwd_dkdv = Kernel(_bwd_dkdv_kernel, _gpu_configs(_BWD_CONFIGS), gpu_key=["Lq", "Lk", "BDK", "BDV"])

# Interpreter blocks: all queries of a head at once up to _CPU_MAX_BM, score blocks up to _CPU_SCORE_BLOCK.
_CPU_MAX_BM, _CPU_SCORE_BLOCK = 1024, 1 << 18


@functools.lru_cache(maxsize=1024)
def _cpu_blocks(Lq, Lk):
    bm = min(max(next_pow2(Lq), 16), _CPU_MAX_BM)
    bn = min(max(next_pow2(Lk), 16), max(_CPU_SCORE_BLOCK // bm, 16))
    return bm, bn


def _strides(t):
    return tuple(0 if n == 1 else s for n, s in zip(t.shape, t.stride()))


def _prepare(q, k, v, mask, scale):
    B, H, Lq, Dk = q.shape
    Hkv, Lk, Dv = k.shape[1], k.shape[2], v.shape[3]
    if k.shape != (B, Hkv, Lk, Dk) or v.shape != (B, Hkv, Lk, Dv) or H % Hkv:
        raise ValueError(f"attention: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} do not match")
    if mask is None:
        kind, mask = 0, q  # never read
        m_strides = (0, 0, 0, 0)
    else:
        kind = 1 if mask.dtype == torch.bool else 2
        mask = mask.expand(B, H, Lq, Lk)
        if kind == 1:
            mask = mask.view(torch.uint8)
        m_strides = _strides(mask)
    scale = 1.0 / math.sqrt(Dk) if scale is None else scale
    dims = dict(GROUP=H // Hkv, Lq=Lq, Lk=Lk, Dk=Dk, Dv=Dv, qk_scale=scale * _LOG2E)
    flags = dict(BDK=max(next_pow2(Dk), 16), BDV=max(next_pow2(Dv), 16), MASK=kind,
                 MASK_ROW=kind != 0 and m_strides[2] == 0,
                 PRECISION="ieee" if q.dtype == torch.float32 else None)
    return B, H, Hkv, mask, m_strides, scale, dims, flags


def _mode(t, rows, cols, s_r, s_c, batch_strides):
    return tile_mode(t, rows, cols, s_r, s_c, batch_strides)[0]


def attention_fwd(q, k, v, out, lse, *, mask=None, causal=False, scale=None):
    """out = softmax(q @ k^T * scale + mask) @ v, and lse = its row logsumexp (float32, for backward).

    q: [B, Hq, Lq, Dk], k: [B, Hkv, Lk, Dk], v: [B, Hkv, Lk, Dv], out: [B, Hq, Lq, Dv], lse: [B, Hq, Lq].
    mask: boolean (True = attend) or additive float, broadcastable to [B, Hq, Lq, Lk]. scale defaults to
    1 / sqrt(Dk). Any strides.
    """
    B, H, Hkv, mask, sm, scale, dims, flags = _prepare(q, k, v, mask, scale)
    Lq, Lk, Dk, Dv = dims["Lq"], dims["Lk"], dims["Dk"], dims["Dv"]
    if B * H * Lq == 0:
        return
    sq, sk, sv, so, sl = _strides(q), _strides(k), _strides(v), _strides(out), _strides(lse)
    args = (q, k, v, out, lse, mask, *sq, *sk, *sv, *so, *sl, *sm, H, dims["GROUP"], Lq, Lk, Dk, Dv,
            dims["qk_scale"])
    if on_gpu(q):
        _fwd.gpu(lambda meta: (triton.cdiv(Lq, meta["BM"]), B * H), *args, Q_MODE=0, KT_MODE=0, V_MODE=0, O_MODE=0,
                 M_MODE=0, CAUSAL=causal, EVEN_N=False, CPU=False, **flags)
        return
    BM, BN = _cpu_blocks(Lq, Lk)
    _fwd.cpu((triton.cdiv(Lq, BM), B * H), *args, BM=BM, BN=BN,
             Q_MODE=_mode(q, Lq, Dk, sq[2], sq[3], sq[:2]), KT_MODE=_mode(k, Dk, Lk, sk[3], sk[2], sk[:2]),
             V_MODE=_mode(v, Lk, Dv, sv[2], sv[3], sv[:2]), O_MODE=_mode(out, Lq, Dv, so[2], so[3], so[:2]),
             M_MODE=_mode(mask, Lq, Lk, sm[2], sm[3], sm[:2]), CAUSAL=causal, EVEN_N=Lk % BN == 0, CPU=True, **flags)


def attention_bwd(q, k, v, out, lse, dout, dq, dk, dv, *, mask=None, causal=False, scale=None, delta=None):
    """Gradients of attention_fwd: dq [B, Hq, Lq, Dk]; dk, dv [B, Hkv, Lk, D*] (summed over each GQA group).

    out and lse are attention_fwd's results; delta: optional float32 [B, Hq, Lq] workspace.
    """
    B, H, Hkv, mask, sm, scale, dims, flags = _prepare(q, k, v, mask, scale)
    Lq, Lk, Dk, Dv = dims["Lq"], dims["Lk"], dims["Dk"], dims["Dv"]
    if B * Hkv * Lk == 0:
        return
    if B * H * Lq == 0:
        dk.zero_()
        dv.zero_()
        return
    if delta is None:
        delta = torch.empty((B, H, Lq), dtype=torch.float32, device=q.device)
    sq, sk, sv, so, sdo, sl = _strides(q), _strides(k), _strides(v), _strides(out), _strides(dout), _strides(lse)
    sdq, sdk, sdv = _strides(dq), _strides(dk), _strides(dv)
    dq_args = (q, k, v, out, dout, lse, delta, dq, mask, *sq, *sk, *sv, *so, *sdo, *sl, *sdq, *sm,
               H, dims["GROUP"], Lq, Lk, Dk, Dv, dims["qk_scale"], scale)
    kv_args = (q, k, v, dout, lse, delta, dk, dv, mask, *sq, *sk, *sv, *sdo, *sl, *sdk, *sdv, *sm,
               Hkv, dims["GROUP"], Lq, Lk, Dk, Dv, dims["qk_scale"], scale)
    if on_gpu(q):
        modes = dict(M_MODE=0, CAUSAL=causal, EVEN_N=False, CPU=False, **flags)
        _bwd_dq.gpu(lambda meta: (triton.cdiv(Lq, meta["BM"]), B * H), *dq_args, Q_MODE=0, KT_MODE=0, VT_MODE=0,
                    O_MODE=0, DO_MODE=0, DQ_MODE=0, **modes)
        _bwd_dkdv.gpu(lambda meta: (triton.cdiv(Lk, meta["BN"]), B * Hkv), *kv_args, Q_MODE=0, K_MODE=0, V_MODE=0,
                      DO_MODE=0, DK_MODE=0, DV_MODE=0, **modes)
        return
    BM, BN = _cpu_blocks(Lq, Lk)
    modes = dict(BM=BM, BN=BN, M_MODE=_mode(mask, Lq, Lk, sm[2], sm[3], sm[:2]), CAUSAL=causal,
                 EVEN_N=Lk % BN == 0, CPU=True, **flags)
    q_mode = _mode(q, Lq, Dk, sq[2], sq[3], sq[:2])
    do_mode = _mode(dout, Lq, Dv, sdo[2], sdo[3], sdo[:2])
    _bwd_dq.cpu((triton.cdiv(Lq, BM), B * H), *dq_args, Q_MODE=q_mode, KT_MODE=_mode(k, Dk, Lk, sk[3], sk[2], sk[:2]),
                VT_MODE=_mode(v, Dv, Lk, sv[3], sv[2], sv[:2]), O_MODE=_mode(out, Lq, Dv, so[2], so[3], so[:2]),
                DO_MODE=do_mode, DQ_MODE=_mode(dq, Lq, Dk, sdq[2], sdq[3], sdq[:2]), **modes)
    _bwd_dkdv.cpu((triton.cdiv(Lk, BN), B * Hkv), *kv_args, Q_MODE=q_mode,
                  K_MODE=_mode(k, Lk, Dk, sk[2], sk[3], sk[:2]),
                  V_MODE=_mode(v, Lk, Dv, sv[2], sv[3], sv[:2]), DO_MODE=do_mode,
                  DK_MODE=_mode(dk, Lk, Dk, sdk[2], sdk[3], sdk[:2]),
                  DV_MODE=_mode(dv, Lk, Dv, sdv[2], sdv[3], sdv[:2]), **modes)
