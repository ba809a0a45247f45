"""Cost formulas, one per op family: shapes, dtypes and a chip in, a Cost out. No tensors, no data.

    generic(flops, bytes)           roofline on the vector units; also the C++ hot path's formula
    gemm(m, n, k, batch, dtype)     matrix engines: the fastest of the chip's kernel candidates
    grouped_gemm(problems, dtype)   one grouped launch (MoE experts), the same selection
    attention(b, h_q, h_kv, lq, lk, d_qk, d_v, dtype, causal, backward)
    elementwise(numel, dtype, ...)  reduction(numel_in, numel_out, dtype, ...)
    copy(nbytes, kind)              d2d (device to device: within one device) over its memory;
                                    h2d/d2h over the host link; p2p (card to card) over the card links;
                                    die (die to die of one card, NUMA/SVI) over the die link
    peer_copy(nbytes, src, dst)     a copy between device indices, routed as the runtime routes it
    link(nbytes, bandwidth_Bps)     any transfer over a link
    rope, swiglu, cross_entropy     torch_biren's fused kernels without an aten op

Each takes chip=None, meaning current_chip(). Times are nanoseconds; a kernel's time is the longest
of its compute, memory and link times plus the chip's launch overhead, and its bound names the
longest, or 'launch' when the launch overhead exceeds it. FLOP counts follow
torch.utils.flop_counter (2mnk per GEMM; SDPA's formulas, over the unmasked pairs only for causal masks).
registry.py maps aten ops onto these.
"""

import functools
import math
from dataclasses import dataclass, replace

from . import dtypes
from .chip import current_chip


@functools.cache
def _flop_formulas():
    """flop_counter's bmm, SDPA and SDPA-backward formulas, imported on first use: flop_counter
    imports Triton (0.15 to 0.3 s), which `import torch` (autoloading torch_biren) should not pay. The bmm
    formula comes without its shape_wrapper, whose pytree pass costs ~30 us a call."""
    from torch.utils.flop_counter import bmm_flop, sdpa_backward_flop_count, sdpa_flop_count

    return getattr(bmm_flop, "__wrapped__", bmm_flop), sdpa_flop_count, sdpa_backward_flop_count


def _bmm_flop(a_shape, b_shape):
    return _flop_formulas()[0](a_shape, b_shape)

# Vector FLOPs per attention score beside the two GEMMs (FlashAttention-2, Algorithms 1 and 2):
# forward rowmax, subtract, exp, rowsum; backward recomputes P (subtract, exp) and forms
# dS = P * (dP - D) (subtract, multiply).
ATTENTION_VECTOR_FLOPS = 4


@dataclass(frozen=True)
class Cost:
    flops: float = 0.0
    bytes: float = 0.0
    ns: float = 0.0
    bound: str = "launch"  # compute | memory | link | launch
    compute_ns: float = 0.0
    memory_ns: float = 0.0
    link_ns: float = 0.0
    kernel: str = ""  # the kernel configuration a GEMM chose (sim/gemm_kernels.py), "" for others

    def as_tuple(self):
        """(flops, bytes, ns, bound), the form the runtime's cost hook returns."""
        return (self.flops, self.bytes, self.ns, self.bound)


def _kernel(chip, flops, nbytes, compute_ns, memory_ns=0.0, link_ns=0.0):
    """The longest of compute, memory and link plus the launch (csrc/sim/roofline.cpp kernel())."""
    return Cost(*chip.roofline.kernel(flops, nbytes, compute_ns, memory_ns, link_ns))


def memory_ns(nbytes, chip=None):
    """Time to move `nbytes` through device memory, after the size-efficiency table."""
    return (chip or current_chip()).roofline.memory_ns(nbytes)


def generic(flops, nbytes, chip=None, fp64=False):
    """Roofline on the vector units, for ops without a modelled kernel; the C++ fallback charges the
    same function (csrc/sim/roofline.cpp generic_cost) on its hot path:

        compute = flops / vector_flops * 1e9 * (fp64_slowdown if fp64 else 1)
        memory  = bytes / (mem_bw_Bps * eff(bytes)) * 1e9      (0 when bytes == 0)
        ns      = max(compute, memory) + launch_ns
        bound   = launch if max(compute, memory) <= launch_ns
                  else compute if compute >= memory else memory

    eff(bytes) interpolates mem_eff_table linearly between rows and is flat beyond its ends."""
    return Cost(*(chip or current_chip()).roofline.generic(flops, nbytes, fp64))


def link(nbytes, bandwidth_Bps, chip=None):
    """A transfer over a link (PCIe, BLink/NVLink) of `bandwidth_Bps` each way."""
    return Cost(*(chip or current_chip()).roofline.link(nbytes, bandwidth_Bps))


def _matrix_ns(chip, padded_flops, dtype, scale=1.0):
    """Time of `padded_flops` on the matrix engines (quantisation already in the count) at the main
    loop's efficiency, chip.matrix_efficiency: what a large GEMM's pipelined main loop sustains. The
    bundled chips give it as one flat row; a table of several rows is looked up on the padded work."""
    if padded_flops <= 0:
        return 0.0
    eff = chip.matrix_efficiency(padded_flops) * scale
    return padded_flops / (chip.matrix_flops(dtype) * eff) * 1e9


def _ceil_div(a, b):
    return -(-a // b)


def _patch(rows, cols, concurrent):
    """The block rows x columns of a grid of rows x cols blocks that `concurrent` compute units work
    on at once, as a swizzled (CUTLASS ThreadblockSwizzle) raster makes it: near square."""
    r = min(rows, max(1, math.isqrt(concurrent)))
    c = min(cols, max(1, concurrent // r))
    return min(rows, max(1, concurrent // c)), c


def _operand_bytes(m, n, k, kern, concurrent, l2_share, elt):
    """HBM reads of A (m x k) and B (k x n) by one GEMM in blocks of kern: the kernel sweeps bands of
    `r` block rows (the concurrent patch's height) across the n blocks. The band's A panel stays in
    L2 for the sweep if it fits in this GEMM's share of L2 (read once), else it is re-read per patch
    of `c` block columns; B is read once per band, or once in all if it fits in L2 beside the panel.
    The orientation (bands of rows or of columns) with less traffic is taken."""
    def sweep(rows_len, bm, cols_len, bn, a, b):  # bands of block rows of A (rows_len x k)
        rows, cols = _ceil_div(rows_len, bm), _ceil_div(cols_len, bn)
        r, c = _patch(rows, cols, concurrent)
        panel = min(r * bm, rows_len) * k * elt
        reads_a = 1 if panel <= l2_share else _ceil_div(cols, c)
        reads_b = 1 if panel + b <= l2_share else _ceil_div(rows, r)
        return a * reads_a + b * reads_b

    a, b = m * k * elt, k * n * elt
    return min(sweep(m, kern.bm, n, kern.bn, a, b), sweep(n, kern.bn, m, kern.bm, b, a))


def _candidate(chip, kern, problems, dtype, elt, out_elt):
    """(compute_ns, bytes, l2_ns) of one kernel configuration over GEMM problems [(m, n, k, count)]
    run in one launch: blocks of every problem (x split-K slices) go to the compute units in waves,
    one block per unit at a time, a partial wave costing a full one and k stepping by whole bk;
    stream-K instead deals the main-loop iterations of all blocks evenly over the units and fixes up
    the blocks it splits. The main loops run at the main-loop efficiency after one memory latency,
    the pipeline's prologue. Split-K/stream-K fp32 partials take l2_ns at L2 bandwidth where they
    fit in L2, else add to the bytes. None if the configuration cannot run the shape (more splits
    than k steps)."""
    units = chip.compute_units
    blocks = sum(cnt * _ceil_div(m, kern.bm) * _ceil_div(n, kern.bn) for m, n, k, cnt in problems)
    if not blocks:
        return 0.0, 0.0, 0.0
    steps = [max(1, _ceil_div(k, kern.bk)) for _, _, k, _ in problems]  # k = 0 still writes C
    block_flops = 2 * kern.bm * kern.bn * kern.bk  # one main-loop step of one block
    split = kern.split_k
    if split > min(steps):
        return None
    fixup = workspace = 0.0  # fp32 partial blocks written and read back; the partials' footprint
    if kern.stream_k:
        total = sum(cnt * _ceil_div(m, kern.bm) * _ceil_div(n, kern.bn) * s for (m, n, _, cnt), s in zip(problems, steps))
        per_unit = _ceil_div(total, units)
        padded = per_unit * units * block_flops
        if len(set(steps)) == 1:  # unit boundaries inside a block: each splits one block in two
            cuts = sum(1 for j in range(1, _ceil_div(total, per_unit)) if (j * per_unit) % steps[0])
        else:
            cuts = _ceil_div(total, per_unit) - 1
        fixup, workspace = 2 * cuts * kern.bm * kern.bn * 4, cuts * kern.bm * kern.bn * 4
        concurrent_splits = 1
    else:
        # Each block's k steps in `split` slices; a wave lasts one slice (the mean when k differs).
        slice_steps = sum(cnt * _ceil_div(m, kern.bm) * _ceil_div(n, kern.bn) * _ceil_div(s, split)
                          for (m, n, _, cnt), s in zip(problems, steps)) / blocks
        padded = _ceil_div(blocks * split, units) * units * block_flops * slice_steps
        fixup = sum(2 * (split - 1) * cnt * m * n * 4 for m, n, _, cnt in problems)
        workspace = sum(cnt * m * n * 4 for m, n, _, cnt in problems) if split > 1 else 0.0
        concurrent_splits = split
    count = sum(cnt for *_, cnt in problems)
    concurrent = max(1, units // concurrent_splits)
    share = chip.l2_bytes / max(1, min(count, concurrent))
    per_problem = max(1, concurrent // max(1, min(count, concurrent)))
    nbytes = sum(cnt * (_operand_bytes(m, n, k, kern, per_problem, share, elt) + m * n * out_elt)
                 for m, n, k, cnt in problems)
    # Serial split-K accumulates each slice's partial into one fp32 workspace tile per block (CUTLASS
    # GemmSplitKSerial), stream-K into one per split block, right after the previous slice wrote it:
    # while that workspace fits in L2 the partials move at L2 bandwidth and never reach device memory.
    l2_ns = 0.0
    if fixup and chip.l2_Bps and workspace <= chip.l2_bytes:
        l2_ns = fixup / chip.l2_Bps * 1e9
    else:
        nbytes += fixup
    return _matrix_ns(chip, padded, dtype) + chip.memory_latency_ns, nbytes, l2_ns


def _select(chip, problems, dtype, extra_bytes):
    """The fastest of the chip's candidate kernels for the problems, as a BLAS heuristic picks one;
    among equally fast ones (memory-bound, the same traffic) one without split-K/stream-K partial
    sums if any, then the one with the least matrix time."""
    elt = dtypes.itemsize(dtype)
    problems = [p for p in problems if p[0] and p[1]]  # an empty group (an expert no token chose) does nothing
    flops = sum(cnt * _bmm_flop((1, m, k), (1, k, n)) for m, n, k, cnt in problems)
    once = sum(cnt * (m * k + k * n + m * n) * elt for m, n, k, cnt in problems) + extra_bytes
    best = best_key = None
    for kern in chip.gemm_kernels:
        part = _candidate(chip, kern, problems, dtype, elt, elt)
        if part is None:
            continue
        compute, nbytes, l2_ns = part
        nbytes = max(nbytes + extra_bytes, once)
        c = _kernel(chip, flops, once, compute, max(memory_ns(nbytes, chip), l2_ns))
        key = (c.ns, kern.split_k > 1 or kern.stream_k, c.compute_ns)
        if best is None or key < best_key:
            best, best_key = replace(c, kernel=kern.name), key
    return best


def gemm(m, n, k, batch=1, dtype="bf16", chip=None, extra_bytes=0):
    """batch x (m x k) @ (k x n), as a BLAS runs it: the fastest of the chip's candidate kernel
    configurations (chip.gemm_kernels: block shape, split-K, stream-K); Cost.kernel names it. A
    candidate's time is the longest of its matrix time and its memory time (each operand re-read as
    its block shape and L2 imply, at least once, plus extra_bytes, e.g. a bias or addmm's input; the
    split-K/stream-K fp32 partial sums at L2 bandwidth where their workspace fits in L2, else through
    device memory too), plus one launch. Its matrix time: its blocks, or split-K slices, over the
    compute units in waves, a partial wave costing a full one:

        memory_latency_ns + waves * slice k-steps * 2*bm*bn*bk / (matrix peak / units * matrix_efficiency)

    matrix_efficiency being what a large GEMM's main loop sustains (the published achievable
    fraction of peak) and the latency the pipeline's prologue: a block's multistage main loop issues
    its first stages-1 k-tile loads and waits for the first (CUTLASS MmaMultistage; cuBLAS's sm80
    kernels run 3-5 stages, enough that later loads arrive behind the MMAs). Each unit waits for it
    once a launch: a unit's next block issues its loads while the previous one computes (CUTLASS 3's
    persistent warp-specialized kernels, stream-K, co-resident blocks). Small GEMMs are slow for the
    reasons these terms model (launch, memory, a partial wave, the prologue), not by a size table:
    Calculon's whole-GEMM efficiency table, which this model once applied to the matrix time, had
    those losses inside it already and so charged them twice.
    FLOPs and bytes report the work and each operand once."""
    chip = chip or current_chip()
    m, n, k, batch = int(m), int(n), int(k), int(batch)
    parts = dtypes.complex_parts(dtype)
    if parts:
        return gemm(m, n, k, dtypes.COMPLEX_PRODUCTS * batch, parts, chip, extra_bytes)
    return _select(chip, [(m, n, k, batch)], dtype, extra_bytes)


def grouped_gemm(problems, dtype="bf16", chip=None):
    """One grouped-GEMM launch (torch._grouped_mm, MoE experts) over problems [(m, n, k), ...], each
    group its own operands: the same selection as gemm, one configuration for the launch (as a
    CUTLASS grouped GEMM instantiates one block shape), its blocks from every group dealt to the
    compute units together."""
    chip = chip or current_chip()
    merged = {}
    for m, n, k in problems:
        key = (int(m), int(n), int(k))
        merged[key] = merged.get(key, 0) + 1
    return _select(chip, [(*key, cnt) for key, cnt in merged.items()], dtype, 0)


def _causal_pairs(lq, lk):
    """Unmasked (query, key) pairs of a top-left aligned causal mask: query i sees keys 0..i."""
    if lq <= lk:
        return lq * (lq + 1) // 2
    return lk * (lk + 1) // 2 + (lq - lk) * lk


def _causal_blocks(lq, lk, tm, tn):
    """Score tiles a causal (top-left aligned, as torch's is_causal) kernel computes: query block i
    needs the key blocks up to its last query row."""
    blocks_k = _ceil_div(lk, tn)
    return sum(min(blocks_k, _ceil_div(min((i + 1) * tm, lq), tn)) for i in range(_ceil_div(lq, tm)))


def attention(
    b, h_q, h_kv, lq, lk, d_qk, d_v=None, dtype="bf16", causal=False, backward=False, chip=None, extra_bytes=0
):
    """Fused (flash) scaled-dot-product attention, forward or backward, for query (b, h_q, lq, d_qk),
    key (b, h_kv, lk, d_qk), value (b, h_kv, lk, d_v): grouped-query attention reads K/V once for
    h_q // h_kv query heads. FLOPs are torch.utils.flop_counter's, over the unmasked pairs only when
    causal (about half; torch's is_causal is top-left aligned, query i sees keys 0..i); time counts
    the score tiles actually computed (a causal mask skips whole tiles above the diagonal) on the
    matrix engines at GEMM efficiency times the chip's attention efficiency after one memory latency
    for the first K/V tiles (a GEMM's prologue), the softmax on the vector units, and Q, K, V, O
    (and their gradients) once through memory, plus extra_bytes (an explicit mask)."""
    chip = chip or current_chip()
    d_v = d_qk if d_v is None else d_v
    b, h_q, h_kv, lq, lk, d_qk, d_v = (int(x) for x in (b, h_q, h_kv, lq, lk, d_qk, d_v))
    q, k, v = (b, h_q, lq, d_qk), (b, h_kv, lk, d_qk), (b, h_kv, lk, d_v)
    if backward:
        flops = _flop_formulas()[2]((b, h_q, lq, d_v), q, k, v)
        per_score = 2 * (3 * d_qk + 2 * d_v)
    else:
        flops = _flop_formulas()[1](q, k, v)
        per_score = 2 * (d_qk + d_v)
    if causal:  # only the unmasked (query, key) pairs: (L + 1) / 2L of them when lq == lk == L
        flops = flops // (lq * lk) * _causal_pairs(lq, lk) if lq and lk else 0
    tm, tn = chip.matrix_tile
    rows = b * h_q * _ceil_div(lq, tm)
    blocks = _causal_blocks(lq, lk, tm, tn) if causal else _ceil_div(lq, tm) * _ceil_div(lk, tn)
    units = chip.compute_units
    waves = _ceil_div(rows, units) if rows else 0
    # Rows of score tiles go to compute units in waves; a partial wave costs a full one.
    scores = b * h_q * blocks * tm * tn * (waves * units / rows if rows else 0)
    matrix = _matrix_ns(chip, scores * per_score, dtype, chip.attention_efficiency(backward))
    matrix += chip.memory_latency_ns if scores else 0.0
    vector = scores * ATTENTION_VECTOR_FLOPS / chip.vector_flops * 1e9
    elt = dtypes.itemsize(dtype)
    q_o = b * h_q * lq * (d_qk + d_v) * elt
    k_v = b * h_kv * lk * (d_qk + d_v) * elt
    lse = b * h_q * lq * 4  # fp32 log-sum-exp, written forward, read backward
    nbytes = (2 * (q_o + k_v) if backward else q_o + k_v) + lse + extra_bytes
    return _kernel(chip, flops, nbytes, max(matrix, vector), memory_ns(nbytes, chip))


def elementwise(numel, dtype="fp32", chip=None, inputs=2, outputs=1, flops_per_element=1):
    """A pointwise kernel over `numel` outputs reading `inputs` and writing `outputs` tensors of
    that size: the generic roofline with its real FLOP count."""
    elt = dtypes.itemsize(dtype)
    return generic(numel * flops_per_element, numel * elt * (inputs + outputs), chip, dtypes.key(dtype) == "fp64")


def reduction(numel_in, numel_out, dtype="fp32", chip=None, flops_per_element=1):
    """A reduction reading `numel_in` elements and writing `numel_out` (sum, mean, norms' statistics)."""
    elt = dtypes.itemsize(dtype)
    fp64 = dtypes.key(dtype) == "fp64"
    return generic(numel_in * flops_per_element, (numel_in + numel_out) * elt, chip, fp64)


# torch_biren's fused kernels with no aten op (torch_biren::*), charged by torch_biren/ops/{rope,swiglu,
# cross_entropy}.py on the live device and, through their descriptions, by the projection's trace.


def rope(numel, dtype="bf16", chip=None):
    """Rotary embedding over q and k together (`numel` elements), forward or backward: x*cos +
    rotate_half(x)*sin reads x and the tables, writes the result."""
    return elementwise(numel, dtype, chip, inputs=2, outputs=1, flops_per_element=3)


def swiglu(numel, dtype="bf16", chip=None, backward=False):
    """silu(gate) * up over `numel` outputs; backward reads dy, gate, up and writes both gradients."""
    if backward:
        return elementwise(numel, dtype, chip, inputs=3, outputs=2, flops_per_element=8)
    return elementwise(numel, dtype, chip, inputs=2, outputs=1, flops_per_element=5)


def cross_entropy(numel, rows, dtype="bf16", chip=None, backward=False):
    """Cross-entropy fused with its log-softmax over `rows` rows of logits (`numel` in all): forward
    a reduction to one log-sum-exp per row, backward one pass writing the logits' gradient."""
    if backward:
        return elementwise(numel, dtype, chip, inputs=1, outputs=1, flops_per_element=3)
    return reduction(numel, rows, dtype, chip, flops_per_element=4)


COPY_KINDS = ("d2d", "h2d", "d2h", "p2p", "die")


def copy(nbytes, kind="d2d", chip=None, out_bytes=None):
    """A copy of `nbytes`, as CUDA names them: d2d (device to device, within one device) reads and
    writes its memory (out_bytes: the size written, when a dtype change makes it differ); h2d/d2h
    cross the host link; p2p goes from one card to another over the card links; die goes from one
    die's memory to another's on the same card, one way over the die link (csrc/sim/roofline.cpp
    die_copy_cost: latency + nbytes / (die_link_Bps / 2), beside the read and write on each die)."""
    chip = chip or current_chip()
    if kind == "d2d":
        return generic(0.0, nbytes + (nbytes if out_bytes is None else out_bytes), chip)
    if kind == "die":
        if not chip.die_link_Bps or not chip.die_devices:
            raise ValueError(f"{chip.label()} has no die link between devices (one die, or UMA: one device per card)")
        return Cost(*chip.roofline.peer_copy(nbytes, 0, chip.die_devices))
    bandwidth = {"h2d": chip.host_link_Bps, "d2h": chip.host_link_Bps, "p2p": chip.card_link_Bps}
    if kind not in bandwidth:
        raise ValueError(f"copy kind must be one of {', '.join(COPY_KINDS)}, got {kind!r}")
    return link(nbytes, bandwidth[kind], chip)


def peer_copy(nbytes, src, dst, chip=None):
    """A copy between devices `src` and `dst` (indices), routed as the runtime routes Memcpy PtoP:
    card links between cards, the die link between the dies of one card, the die's memory between
    SVI instances of one die (chip.py module doc for which device is where)."""
    return Cost(*(chip or current_chip()).roofline.peer_copy(nbytes, int(src), int(dst)))
