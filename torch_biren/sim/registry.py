"""Aten op -> cost, for the op layer and for projections of models that never allocate memory.

    cost_of("aten::mm", [a, b])                                   -> Cost
    cost_of(torch.ops.aten.addmm.default, (bias, x, w), chip=load_chip("H100"))
    cost_of("aten::_scaled_dot_product_flash_attention_for_cpu", [q, k, v], {"is_causal": True})
    cost_tuple(op_name, args) -> (flops, bytes, ns, bound)        the runtime's cost hook

Arguments follow the op's schema, positional then keyword, as the dispatcher passes them; missing
ones take the schema's defaults. A tensor argument may be anything with .shape and .dtype: a real
or meta tensor, or TensorSpec(shape, dtype). Formulas are registered per overload packet
("aten::mm" also covers mm.out) or per overload ("aten::foo.bar"); modelled_ops() lists every
overload name covered, spelled as the runtime's op table spells them ("aten::mm", "aten::mm.out").
Ops without a formula here are charged costs.generic by the runtime's fallback.

    @register("aten::mm")
    def mm(chip, a):             # a: {schema argument name: value}
        ...

register returns a Formula: registry.mm(a, b) is the cost of aten::mm for those arguments, in the
schema of the first op named (so torch_biren/ops names the formula it charges, in code).
"""

import math
from typing import NamedTuple

import torch

from . import dtypes
from .chip import current_chip
from . import costs


class TensorSpec(NamedTuple):
    """A tensor's shape, dtype and device type, standing in for the tensor itself."""

    shape: tuple
    dtype: object = torch.bfloat16
    device: str = "biren"


_registry = {}
_schema_args = {}


class Formula:
    """A cost formula, fn(chip, args_by_name) -> Cost, of the aten ops it was registered for.
    Called with an op's arguments (schema order, then keywords), it binds them to the schema of the
    first op it was registered for and prices them on `chip` (default current_chip())."""

    def __init__(self, fn, ops):
        self.fn, self.ops = fn, ops
        self.__name__, self.__doc__ = fn.__name__, fn.__doc__

    def __call__(self, *args, chip=None, **kwargs):
        return self.fn(chip or current_chip(), _bind(self.ops[0], args, kwargs))

    def __repr__(self):
        return f"<cost formula {self.__name__} of {', '.join(self.ops)}>"


def register(*ops):
    """Decorator: fn(chip, args_by_name) -> Cost becomes the Formula of these aten ops."""

    def wrap(fn):
        formula = Formula(fn, ops)
        for op in ops:
            if op in _registry:
                raise RuntimeError(f"duplicate cost formula for {op}")
            _registry[op] = formula
        return formula

    return wrap


def op_name(op):
    """'aten::mm' / 'aten::add.Tensor' for a name, OpOverload or OpOverloadPacket."""
    if isinstance(op, torch._ops.OpOverloadPacket):
        return op._qualified_op_name
    name = op.name() if isinstance(op, torch._ops.OpOverload) else str(op)
    return name.removesuffix(".default")


def _overload(name):
    packet, _, overload = name.partition(".")
    ns, _, base = packet.partition("::")
    try:
        return getattr(getattr(getattr(torch.ops, ns), base), overload or "default")
    except (AttributeError, RuntimeError):
        return None


def _bind(name, args, kwargs):
    if name not in _schema_args:
        ovl = _overload(name)
        _schema_args[name] = None if ovl is None else [
            (a.name, a.default_value if a.has_default_value() else None) for a in ovl._schema.arguments
        ]
    spec = _schema_args[name]
    if spec is None:
        bound = dict(enumerate(args))
    else:
        bound = {n: d for n, d in spec}
        bound.update(zip((n for n, _ in spec), args))
    bound.update(kwargs or {})
    return bound


def has_cost(op):
    name = op_name(op)
    return name in _registry or name.partition(".")[0] in _registry


def cost_of(op, args=(), kwargs=None, chip=None):
    """Cost of one call of an aten op; KeyError for ops without a formula (see module doc)."""
    name = op_name(op)
    fn = _registry.get(name) or _registry.get(name.partition(".")[0])
    if fn is None:
        raise KeyError(f"no cost formula for {name}; the runtime charges it costs.generic")
    return fn.fn(chip or current_chip(), _bind(name, args, kwargs))


def cost_tuple(op, args):
    """The runtime's cost hook: (flops, bytes, ns, bound) for op name and positional arguments."""
    return cost_of(op, args).as_tuple()


def modelled_ops():
    """Every overload name with a formula, e.g. ['aten::addmm', 'aten::addmm.out', ...]."""
    names = set()
    for key in _registry:
        if "." in key:
            names.add(key)
            continue
        ns, _, base = key.partition("::")
        packet = getattr(getattr(torch.ops, ns), base, None)
        for ovl in packet.overloads() if packet is not None else ["default"]:
            names.add(key if ovl == "default" else f"{key}.{ovl}")
    return sorted(names)


# Helpers ----------------------------------------------------------------------------------------------


def _numel(t):
    return math.prod(t.shape)


def _bytes(t):
    return 0 if t is None else _numel(t) * dtypes.itemsize(t.dtype)


def _is_fp64(t):
    return dtypes.key(t.dtype) == "fp64"


# Matrix multiplication ------------------------------------------------------------------------------


def _matmul_key(op, dtype):
    """The matrix path of a GEMM's dtype; CUDA's error, from the op, for dtypes with none (integers)."""
    dtypes.check_matmul(op, dtype)
    return dtypes.matmul_key(dtype)


@register("aten::mm")
def mm(chip, a):
    x, w = a["self"], a["mat2"]
    (m, k), n = x.shape, w.shape[1]
    return costs.gemm(m, n, k, dtype=_matmul_key("mm", x.dtype), chip=chip)


@register("aten::addmm")
def addmm(chip, a):
    x, w, c = a["mat1"], a["mat2"], a["self"]
    (m, k), n = x.shape, w.shape[1]
    extra = _bytes(c) if a.get("beta", 1) != 0 else 0
    return costs.gemm(m, n, k, dtype=_matmul_key("addmm", x.dtype), chip=chip, extra_bytes=extra)


@register("aten::bmm")
def bmm(chip, a):
    x, w = a["self"], a["mat2"]
    (b, m, k), n = x.shape, w.shape[2]
    return costs.gemm(m, n, k, b, _matmul_key("bmm", x.dtype), chip)


@register("aten::baddbmm")
def baddbmm(chip, a):
    x, w, c = a["batch1"], a["batch2"], a["self"]
    (b, m, k), n = x.shape, w.shape[2]
    extra = _bytes(c) if a.get("beta", 1) != 0 else 0
    return costs.gemm(m, n, k, b, _matmul_key("baddbmm", x.dtype), chip, extra)


@register("aten::linear")
def linear(chip, a):
    x, w = a["input"], a["weight"]
    k = x.shape[-1]
    m = math.prod(x.shape[:-1])
    return costs.gemm(m, w.shape[0], k, dtype=_matmul_key("linear", x.dtype), chip=chip, extra_bytes=_bytes(a.get("bias")))


@register("aten::matmul")
def matmul(chip, a):
    x, y = a["self"], a["other"]
    xs = tuple(x.shape) if len(x.shape) > 1 else (1, *x.shape)
    ys = tuple(y.shape) if len(y.shape) > 1 else (*y.shape, 1)
    if len(ys) == 2:  # (..., m, k) @ (k, n): the batch folds into m, as torch does
        m, k, n, b = math.prod(xs[:-1]), xs[-1], ys[1], 1
    else:
        m, k, n = xs[-2], xs[-1], ys[-1]
        b = math.prod(torch.broadcast_shapes(xs[:-2], ys[:-2]))
    return costs.gemm(m, n, k, b, _matmul_key("matmul", x.dtype), chip)


# Attention ------------------------------------------------------------------------------------------


def _sdpa(chip, a, backward):
    q, k, v = a["query"], a["key"], a["value"]
    lead = q.shape[:-3]
    mask = a.get("attn_mask", a.get("attn_bias"))
    return costs.attention(
        math.prod(lead), q.shape[-3] if len(q.shape) > 2 else 1, k.shape[-3] if len(k.shape) > 2 else 1,
        q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1], dtypes.key(q.dtype), bool(a.get("is_causal")),
        backward, chip, extra_bytes=_bytes(mask) if isinstance(mask, (torch.Tensor, TensorSpec)) else 0,
    )  # fmt: skip


@register(
    "aten::_scaled_dot_product_fused_attention_overrideable",  # first: the schema biren's kernel takes
    "aten::scaled_dot_product_attention",
    "aten::_scaled_dot_product_flash_attention",
    "aten::_scaled_dot_product_flash_attention_for_cpu",
    "aten::_scaled_dot_product_efficient_attention",
    "aten::_scaled_dot_product_cudnn_attention",
)
def sdpa_forward(chip, a):
    return _sdpa(chip, a, backward=False)


@register(
    "aten::_scaled_dot_product_fused_attention_overrideable_backward",
    "aten::_scaled_dot_product_flash_attention_backward",
    "aten::_scaled_dot_product_flash_attention_for_cpu_backward",
    "aten::_scaled_dot_product_efficient_attention_backward",
    "aten::_scaled_dot_product_cudnn_attention_backward",
)
def sdpa_backward(chip, a):
    return _sdpa(chip, a, backward=True)


# Row-wise kernels: softmax and normalisation ----------------------------------------------------------
# Vector FLOPs per element. softmax: max, subtract, exp, sum, divide. log_softmax: max, subtract, exp,
# sum, subtract. Their backward: a row sum of g*y (or of g) and an update (2 more). rms_norm:
# square, sum, scale, weight; backward recomputes x*rstd, forms g*w, a row sum and the update, and
# sums g*x_hat for the weight. layer_norm: mean, subtract, square, sum, scale, weight, bias;
# backward as rms_norm plus the mean term and the bias gradient.
_SOFTMAX_FLOPS, _SOFTMAX_BWD_FLOPS = 5, 4
_RMS_FLOPS, _RMS_BWD_FLOPS = 4, 9
_LN_FLOPS, _LN_BWD_FLOPS = 7, 11


def _rows(x, normalized_shape):
    return _numel(x) // max(1, math.prod(normalized_shape))


@register("aten::_softmax", "aten::_log_softmax")
def softmax(chip, a):
    x = a["self"]
    out = _numel(x) * (4 if a.get("half_to_float") else dtypes.itemsize(x.dtype))
    return costs.generic(_SOFTMAX_FLOPS * _numel(x), _bytes(x) + out, chip, _is_fp64(x))


@register("aten::_softmax_backward_data", "aten::_log_softmax_backward_data")
def softmax_backward(chip, a):
    g, y = a["grad_output"], a["output"]
    return costs.generic(_SOFTMAX_BWD_FLOPS * _numel(g), 2 * _bytes(g) + _bytes(y), chip, _is_fp64(g))


@register("aten::_fused_rms_norm", "aten::rms_norm")
def rms_norm(chip, a):
    x, w = a["input"], a.get("weight")
    rstd = _rows(x, a["normalized_shape"]) * 4
    return costs.generic(_RMS_FLOPS * _numel(x), 2 * _bytes(x) + _bytes(w) + rstd, chip, _is_fp64(x))


@register("aten::_fused_rms_norm_backward")
def rms_norm_backward(chip, a):
    g, x, w = a["grad_out"], a["input"], a.get("weight")
    rstd = _rows(x, a["normalized_shape"]) * 4
    return costs.generic(_RMS_BWD_FLOPS * _numel(x), 3 * _bytes(x) + 2 * _bytes(w) + rstd, chip, _is_fp64(x))


@register("aten::native_layer_norm", "aten::layer_norm")
def layer_norm(chip, a):
    x = a["input"]
    stats = 2 * _rows(x, a["normalized_shape"]) * 4  # fp32 mean and rstd
    params = _bytes(a.get("weight")) + _bytes(a.get("bias"))
    return costs.generic(_LN_FLOPS * _numel(x), 2 * _bytes(x) + params + stats, chip, _is_fp64(x))


@register("aten::native_layer_norm_backward")
def layer_norm_backward(chip, a):
    g, x = a["grad_out"], a["input"]
    stats = 2 * _rows(x, a["normalized_shape"]) * 4
    params = 2 * (_bytes(a.get("weight")) + _bytes(a.get("bias")))  # read weight; write both grads
    return costs.generic(_LN_BWD_FLOPS * _numel(x), 3 * _bytes(x) + params + stats, chip, _is_fp64(x))


# Convolution ----------------------------------------------------------------------------------------


@register("aten::convolution_backward_overrideable", "aten::convolution_backward")
def convolution_backward(chip, a):
    """Two GEMM-shaped passes over the forward's work (input and weight gradients), 2 FLOPs per MAC
    each; reads and writes the gradient, input and weight once each way. Charged by the device's
    convolution backward (csrc/aten/extras.cpp) and by the projection's trace."""
    g, x, w = a["grad_output"], a["input"], a["weight"]
    macs = float(_numel(g)) * _numel(w) / max(w.shape[0], 1)
    return costs.generic(4 * macs, float(_bytes(g) + _bytes(x) + _bytes(w)) * 2, chip, _is_fp64(x))


# Embeddings -----------------------------------------------------------------------------------------


@register("aten::embedding")
def embedding(chip, a):
    w, idx = a["weight"], a["indices"]
    rows = _numel(idx) * w.shape[-1] * dtypes.itemsize(w.dtype)
    return costs.generic(0, _bytes(idx) + 2 * rows, chip)  # gather the rows, write them


@register("aten::embedding_dense_backward")
def embedding_backward(chip, a):
    g, idx = a["grad_output"], a["indices"]
    table = a["num_weights"] * g.shape[-1] * dtypes.itemsize(g.dtype)
    # zero the table, then read-modify-write one row per index
    return costs.generic(_numel(g), table + _bytes(idx) + 3 * _bytes(g), chip, _is_fp64(g))


# Copies ---------------------------------------------------------------------------------------------


def _device(t):
    """(type, index) of a tensor's device; TensorSpec and device-less stand-ins are on the device."""
    d = getattr(t, "device", None)
    if isinstance(d, torch.device):
        return d.type, d.index
    return (d or "biren"), None


def _copy(chip, src, dst):
    (s, si), (d, di) = _device(src), _device(dst)
    if s == "cpu" or d == "cpu":
        return costs.copy(_bytes(src), "h2d" if s == "cpu" else "d2h", chip)
    if si != di:
        if si is not None and di is not None:
            return costs.peer_copy(_bytes(src), si, di, chip)
        return costs.copy(_bytes(src), "p2p", chip)
    return costs.copy(_bytes(src), "d2d", chip, out_bytes=_bytes(dst))


@register("aten::copy_")
def copy_(chip, a):
    return _copy(chip, a["src"], a["self"])


@register("aten::_copy_from")
def copy_from(chip, a):
    return _copy(chip, a["self"], a["dst"])


@register("aten::index_copy_")
def index_copy_(chip, a):
    """In place: reads the source rows and the index and writes as many bytes into self, whose other
    rows are not touched (HF's StaticCache writes a decode step's new K/V into the cache this way)."""
    src = a["source"]
    return costs.generic(_numel(src), 2 * _bytes(src) + _bytes(a["index"]), chip)


@register("aten::_to_copy")
def to_copy(chip, a):
    x = a["self"]
    out_bytes = _numel(x) * dtypes.itemsize(a.get("dtype") or x.dtype)
    target = a.get("device")
    here = _device(x)[0]
    there = torch.device(target).type if target is not None else here
    if here == "cpu" and there != "cpu":
        return costs.copy(out_bytes, "h2d", chip)
    if there == "cpu" and here != "cpu":
        return costs.copy(_bytes(x), "d2h", chip)
    return costs.copy(_bytes(x), "d2d", chip, out_bytes=out_bytes)


# Multi-tensor kernels (_foreach_*) ---------------------------------------------------------------------
# CUDA runs a foreach op as a few launches of one kernel over chunks of many tensors
# (aten/src/ATen/native/cuda/MultiTensorApply.cuh, multi_tensor_apply): each block takes one chunk of
# kChunkSize elements of one tensor; a launch is issued when it holds depth_to_max_tensors[depth-1]
# tensors (at a tensor's last chunk) or depth_to_max_blocks[depth-1] blocks, and once more for the
# rest. depth is the number of tensor lists the kernel reads or writes (in-place ops write their
# first list). The tables are those of the 4 KB kernel-argument metadata (PyTorch 2.x; ops with a
# scalar list carry the scalars in the metadata and hold fewer tensors).
MTA_CHUNK = 65536
MTA_MAX_TENSORS = (110, 64, 48, 36, 30)
MTA_MAX_TENSORS_SCALARLIST = (96, 64, 48, 36, 30)
MTA_MAX_BLOCKS = (320, 320, 320, 320, 320)
# Vector FLOPs per element beside the default 1 (a * b + c counts 2).
_FOREACH_FLOPS = {"addcmul": 2, "addcdiv": 2, "lerp": 2, "norm": 2}
# Reductions to one value per tensor: one multi-tensor launch series over the input, then one cleanup
# kernel over all tensors' partial results (foreach_tensor_norm_cuda's lpnorm_cleanup).
_FOREACH_REDUCTIONS = ("norm", "max", "powsum")


def mta_launches(numels, depth, scalarlist=False):
    """Elements of each launch multi_tensor_apply issues for tensors of these sizes (empty ones are
    skipped, as CUDA skips them), following MultiTensorApply.cuh's loop."""
    max_tensors = (MTA_MAX_TENSORS_SCALARLIST if scalarlist else MTA_MAX_TENSORS)[min(depth, 5) - 1]
    max_blocks = MTA_MAX_BLOCKS[min(depth, 5) - 1]
    launches, elements, tensors, blocks = [], 0, 0, 0
    for numel in numels:
        if numel == 0:
            continue
        tensors += 1
        chunks = -(-numel // MTA_CHUNK)
        for c in range(chunks):
            blocks += 1
            elements += min(MTA_CHUNK, numel - c * MTA_CHUNK)
            last = c == chunks - 1
            if (tensors == max_tensors and last) or blocks == max_blocks:
                launches.append(elements)
                elements, blocks = 0, 0
                tensors = 0 if last else 1  # a tensor cut mid-way carries over to the next launch
    if blocks:
        launches.append(elements)
    return launches


def _foreach_call(name, a):
    """(base name, in place, tensor lists, depth, has a scalar list) of a _foreach_ call."""
    base = name.partition("::")[2].partition(".")[0].removeprefix("_foreach_")
    inplace = base.endswith("_")
    base = base.rstrip("_")
    lists = [v for v in a.values() if isinstance(v, (list, tuple)) and v and hasattr(v[0], "shape")]
    writes_out = not inplace and "out" not in a and base not in _FOREACH_REDUCTIONS
    scalarlist = any(isinstance(v, (list, tuple)) and v and not hasattr(v[0], "shape") for v in a.values())
    return base, inplace, lists, len(lists) + writes_out, scalarlist


def _foreach(chip, a, name):
    base, inplace, lists, depth, scalarlist = _foreach_call(name, a)
    if not lists:
        return costs.generic(0, 0, chip)
    first = lists[0]
    elt, fp64 = dtypes.itemsize(first[0].dtype), _is_fp64(first[0])
    flops_per = _FOREACH_FLOPS.get(base, 1)
    # Traffic per element: every list read, the output written (in place: the first list again);
    # zero_ and copy_ do not read what they overwrite.
    passes = depth + (inplace and base not in ("zero", "copy")) - (base == "zero")
    same = all(len(v) == len(first) for v in lists) and all(
        tuple(t.shape) == tuple(first[i].shape) and t.dtype == first[0].dtype for v in lists for i, t in enumerate(v))
    numels = [_numel(t) for t in first]
    # CUDA's slow path for mixed dtypes or shapes is one kernel per tensor.
    if same:
        parts = [costs.generic(n * flops_per, n * elt * passes, chip, fp64)
                 for n in mta_launches(numels, depth, scalarlist)]  # fmt: skip
    else:
        parts = [costs.generic(n * flops_per, n * dtypes.itemsize(t.dtype) * passes, chip, _is_fp64(t))
                 for n, t in zip(numels, first) if n]  # fmt: skip
    if same and base in _FOREACH_REDUCTIONS and parts:
        parts.append(costs.generic(len(numels), 4 * len(numels), chip))
    if not parts:
        return costs.generic(0, 0, chip)
    longest = max(parts, key=lambda c: c.ns)
    return costs.Cost(sum(c.flops for c in parts), sum(c.bytes for c in parts), sum(c.ns for c in parts),
                      longest.bound, sum(c.compute_ns for c in parts), sum(c.memory_ns for c in parts), 0.0)


def foreach_launches(name, *args, **kwargs):
    """Elements of each multi-tensor-apply launch CUDA issues for this _foreach_ call (its fast path)."""
    _, _, lists, depth, scalarlist = _foreach_call(name, _bind(name, args, kwargs))
    return mta_launches([_numel(t) for t in lists[0]], depth, scalarlist) if lists else []


@register("aten::_foreach_mm")
def foreach_mm(chip, a):
    """A list of matrix products: one GEMM per pair (no multi-tensor-apply kernel for matmuls)."""
    parts = [costs.gemm(x.shape[0], w.shape[1], x.shape[1], dtype=dtypes.matmul_key(x.dtype), chip=chip)
             for x, w in zip(a["self"], a["mat2"])]  # fmt: skip
    if not parts:
        return costs.generic(0, 0, chip)
    longest = max(parts, key=lambda c: c.ns)
    return costs.Cost(sum(c.flops for c in parts), sum(c.bytes for c in parts), sum(c.ns for c in parts),
                      longest.bound, sum(c.compute_ns for c in parts), sum(c.memory_ns for c in parts), 0.0)


def _register_foreach():
    for name in torch._C._dispatch_get_all_op_names():
        if name.startswith("aten::_foreach_") and name not in _registry and not name.startswith("aten::_foreach_mm"):
            _registry[name] = Formula(lambda chip, a, _n=name: _foreach(chip, a, _n), [name])


_register_foreach()
