"""Argument checks for bccl collectives: local ones (devices, layouts, sizes) and a cross-rank
fingerprint that every rank exchanges before a collective, so mismatched sizes, dtypes, roots or
collectives across ranks raise one clear error on every rank instead of corrupt data or a hang
(what TORCH_DISTRIBUTED_DEBUG=DETAIL does for NCCL, always on here; the cost is one small host
all-gather per collective, which simulated time does not see).

The fingerprint also carries each rank's stream clock, so a collective starts on every rank's
timeline when the last rank reaches it, as a real collective waits for its slowest rank.
"""

import torch

KINDS = ("all_reduce", "broadcast", "reduce", "all_gather", "all_gather_into_tensor", "reduce_scatter",
         "reduce_scatter_tensor", "all_to_all", "all_to_all_single", "gather", "scatter", "barrier",
         "all_reduce_coalesced", "all_gather_coalesced", "all_gather_into_tensor_coalesced",
         "reduce_scatter_tensor_coalesced")  # fmt: skip
_DTYPES = [getattr(torch, n) for n in (
    "float32", "float16", "bfloat16", "float64", "int8", "uint8", "int16", "int32", "int64", "bool", "complex64",
    "complex128", "float8_e4m3fn", "float8_e5m2", "uint16", "uint32", "uint64")]  # fmt: skip
_REDUCE_OPS = ("SUM", "AVG", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR", "PREMUL_SUM")

# Fingerprint layout: fixed fields, then per-peer send/recv element counts (all_to_all only).
KIND, DTYPE, NUMEL_IN, NUMEL_OUT, ROOT, REDOP, DEVICE, CLOCK, COUNT, SEQ = range(10)
FIXED = 10
ERROR = len(KINDS)  # the KIND of a rank whose own argument checks failed


def dtype_code(dtype):
    try:
        return _DTYPES.index(dtype)
    except ValueError:
        return len(_DTYPES) + hash(str(dtype)) % 1000


def dtype_name(code):
    return str(_DTYPES[code]).replace("torch.", "") if 0 <= code < len(_DTYPES) else f"dtype#{code}"


def redop_name(op):
    """'SUM', 'AVG', ... for a ReduceOp or ReduceOp.RedOpType."""
    o = getattr(op, "op", op)
    return str(o).split(".")[-1]


def redop_code(op):
    name = redop_name(op)
    return _REDUCE_OPS.index(name) if name in _REDUCE_OPS else 99


def check_tensors(op, tensors, rank_device=None):
    """One device for every tensor of a call, dense and contiguous, as ProcessGroupNCCL requires.
    Returns the device (biren or cpu)."""
    device = None
    for t in tensors:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"bccl {op}: expected tensors, got {type(t).__name__}")
        if t.layout != torch.strided:
            raise ValueError(f"bccl {op}: tensors must be dense (strided), got {t.layout}")
        if device is None:
            device = t.device
        elif t.device != device:
            raise ValueError(
                f"bccl {op}: all tensors of one call must be on the same device, found {device} and {t.device} "
                "(move them with .to(...) first)"
            )
        if t.device.type not in ("biren", "cpu"):
            raise ValueError(f"bccl {op}: tensors must be on biren (or cpu), got one on {t.device}")
        if not t.is_contiguous():
            raise ValueError(f"bccl {op}: tensors must be contiguous (call .contiguous() first); got shape "
                             f"{tuple(t.shape)} with strides {t.stride()}")
    return device


def same_dtype(op, tensors):
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) > 1:
        raise TypeError(f"bccl {op}: all tensors must have the same dtype, got {', '.join(sorted(map(str, dtypes)))}")


def fingerprint(world, kind, dtype, numel_in, numel_out, root=-1, redop=-1, device="biren", clock_ns=0, count=1,
                seq=0, sends=None, recvs=None):
    fp = torch.zeros(FIXED + 2 * world, dtype=torch.int64)
    fp[:FIXED] = torch.tensor([KINDS.index(kind) if kind is not None else ERROR, dtype_code(dtype) if dtype is not None else -1, numel_in, numel_out,
                               root, redop, 1 if device == "biren" else 0, int(clock_ns), count, seq])
    if sends is not None:
        fp[FIXED:FIXED + world] = torch.tensor(sends, dtype=torch.int64)
        fp[FIXED + world:] = torch.tensor(recvs, dtype=torch.int64)
    return fp


def _differs(rows, field, what, ranks, describe=str):
    vals = rows[:, field].tolist()
    if len(set(vals)) <= 1:
        return None
    parts = ", ".join(f"rank {ranks[i]}: {describe(v)}" for i, v in enumerate(vals))
    return f"{what} differ across ranks: {parts}"


def mismatch(rows, ranks):
    """A message naming the ranks whose fingerprints disagree, or None. rows: [world, len] int64."""
    kinds = rows[:, KIND].tolist()
    seqs = rows[:, SEQ].tolist()
    bad = [ranks[i] for i, k in enumerate(kinds) if k == ERROR]
    if bad:
        called = next((KINDS[k] for k in kinds if k != ERROR), None)
        return (f"rank{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad))} rejected {'their' if len(bad) > 1 else 'its'} "
                f"arguments to {called or 'this collective'} (see that rank's error); no data was exchanged")
    if len(set(zip(kinds, seqs))) > 1:
        parts = ", ".join(f"rank {ranks[i]} called {KINDS[k]} (its collective #{s})" for i, (k, s) in
                          enumerate(zip(kinds, seqs)))
        return f"ranks called different collectives ({parts}); every rank must issue the same collectives in the same order"
    kind = KINDS[kinds[0]]
    if kind == "barrier":
        return None
    checks = [(DEVICE, "devices", lambda v: "biren" if v else "cpu"), (COUNT, "numbers of tensors", str),
              (DTYPE, "dtypes", dtype_name)]
    if kind in ("all_reduce", "broadcast", "reduce", "all_reduce_coalesced"):
        checks.append((NUMEL_IN, "tensor sizes (elements)", str))
    elif kind in ("all_gather", "all_gather_into_tensor", "all_gather_coalesced", "all_gather_into_tensor_coalesced",
                  "gather"):
        checks.append((NUMEL_IN, "input sizes (elements)", str))
    elif kind in ("reduce_scatter", "reduce_scatter_tensor", "reduce_scatter_tensor_coalesced", "scatter"):
        checks.append((NUMEL_OUT, "output sizes (elements)", str))
    if kind in ("broadcast", "reduce", "gather", "scatter"):
        checks.append((ROOT, "roots", str))
    if kind in ("all_reduce", "reduce", "reduce_scatter", "reduce_scatter_tensor", "all_reduce_coalesced",
                "reduce_scatter_tensor_coalesced"):
        checks.append((REDOP, "reduce ops", lambda v: _REDUCE_OPS[v] if 0 <= v < len(_REDUCE_OPS) else str(v)))
    for field, what, describe in checks:
        msg = _differs(rows, field, what, ranks, describe)
        if msg:
            return msg
    if kind in ("all_to_all", "all_to_all_single"):
        n = len(ranks)
        sends = rows[:, FIXED:FIXED + n]
        recvs = rows[:, FIXED + n:FIXED + 2 * n]
        for i in range(n):
            for j in range(n):
                if sends[i, j] != recvs[j, i]:
                    return (f"split sizes do not match: rank {ranks[i]} sends {int(sends[i, j])} elements to rank "
                            f"{ranks[j]}, which expects {int(recvs[j, i])} from it")
    return None
