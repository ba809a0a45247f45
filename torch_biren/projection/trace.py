"""Trace a model on the meta device into the kernels the live biren device would charge, price each
by the same cost functions (sim/registry.py, sim/costs.py), then replay them on the device timeline.

    t = trace(lambda: model(ids, labels=ids).loss.backward())    # model on "meta"; no chip involved
    ops = price(t.kernels, chip)                                 # [Op(name, Cost)]
    elapsed_ns, busy = replay(ops, chip)

A trace records each kernel's cost function and its arguments (shapes, dtypes, sizes), not its
price, so one trace is priced on any chip: which kernels run at which shapes does not depend on the
chip's numbers, only what they cost does (a projection's ranges re-price one trace per range end).

What the live device does, mirrored here:
- every aten op that reaches the backend is one kernel: a registry formula where one exists, else
  costs.generic(largest numel, bytes in + out), the C++ fallback's charge; views and empty tensors
  are free;
- the fused paths biren registers above the backend (scaled_dot_product_attention -> the
  overrideable flash kernel, rms_norm and cross_entropy_loss at the autograd key) and the kernels
  torch_biren.ops.patch_model routes HF modules to (RMSNorm, SwiGLU MLP, rotate-half RoPE) are one
  kernel each, forward and backward, named and priced by the ops' own descriptions (ops/_fused.py);
- MoE experts (HF's stacked-expert modules) run as grouped GEMMs with routing assumed balanced
  (every expert gets tokens x k / E rows), since routing on meta tensors has no data;
- the host issues each kernel after chip.host_issue_ns and the device runs them in order (one
  stream), as csrc/sim/timeline.cpp does; or, replayed as a graph (replay(graph=True)), one graph
  launch and then the kernels back to back with the device-side gap, as its graph_launch does.
"""

import contextlib
import math
import weakref
from collections import defaultdict
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from ..ops.attention import ATTENTION, like_query
from ..ops.cross_entropy import CROSS_ENTROPY
from ..ops.cross_entropy import fusable as cross_entropy_fusable
from ..ops.hf import rope_modules
from ..ops.rms_norm import RMS_NORM
from ..ops.rms_norm import fusable as rms_norm_fusable
from ..ops.rope import ROPE
from ..ops.swiglu import SWIGLU
from .. import _C
from ..sim import costs, dtypes, registry

aten = torch.ops.aten


class Op(NamedTuple):
    name: str
    cost: costs.Cost


class Kernel(NamedTuple):
    """One recorded kernel: its timeline name and its price, fn(*args, chip=chip) -> Cost, with args
    free of tensors and of the chip (hashable: kernels repeated layer after layer are priced once)."""

    name: str
    fn: object
    args: tuple

    def cost(self, chip):
        return self.fn(*self.args, chip=chip)


class Spec(registry.TensorSpec):
    """A recorded tensor: shape, dtype and device type, with the methods the cost functions use."""

    __slots__ = ()

    def numel(self):
        return math.prod(self.shape)

    def dim(self):
        return len(self.shape)

    def element_size(self):
        return self.dtype.itemsize


def _freeze(x):
    """Arguments as a cost function reads them: tensors as Specs, lists as tuples, dicts as item tuples."""
    if isinstance(x, torch.Tensor):
        return Spec(x.shape, x.dtype, x.device.type)  # torch.Size: a hashable tuple with numel()
    if isinstance(x, (list, tuple)):
        return tuple(_freeze(y) for y in x)
    if isinstance(x, dict):
        return tuple((k, _freeze(v)) for k, v in x.items())
    return x


def _registry_cost(func, args, kwargs, chip):
    return registry.cost_of(func, args, dict(kwargs), chip)


def _copy_cost(src_bytes, dst_bytes, chip):
    return costs.copy(src_bytes, "d2d", chip, out_bytes=dst_bytes)


def _generic_cost(numel, nbytes, fp64, chip):
    return costs.generic(numel, nbytes, chip, fp64)


# Ops the live device runs without charging (csrc/aten/minimal.cpp); views are free too, and ops
# without a biren kernel are traced through their composite (_decomposes).
_FREE = frozenset(_C._uncharged_ops())


def _tensors(x):
    if isinstance(x, torch.Tensor):
        yield x
    elif isinstance(x, (list, tuple)):
        for y in x:
            yield from _tensors(y)
    elif isinstance(x, dict):
        for y in x.values():
            yield from _tensors(y)


def _nbytes(t):
    return t.numel() * t.element_size()


class _Recorder(TorchDispatchMode):
    def __init__(self, ops):
        super().__init__()
        self.ops = ops
        self.quiet = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.quiet:
            return func(*args, **kwargs)
        name = registry.op_name(func)
        if func.is_view or name in _FREE:
            return func(*args, **kwargs)
        if _decomposes(func):
            # No biren kernel: the dispatcher runs the op's composite, whose parts are the kernels.
            with self:
                return func._op_dk(_CEA, *args, **kwargs)
        ins = [t for t in _tensors((args, kwargs)) if t.device.type == "meta"]
        # Inputs as the fallback counts them, before the kernel runs: an out= argument it resizes (arange's
        # empty one) counts at its size before.
        ins_sized = [(t.numel(), _nbytes(t), t.dtype) for t in ins]
        out = func(*args, **kwargs)
        outs = [t for t in _tensors(out) if t.device.type == "meta"]
        if not ins and not outs:
            return out
        if name in ("aten::copy_", "aten::_copy_from"):
            src, dst = (args[1], args[0]) if name == "aten::copy_" else (args[0], args[1])
            self.ops.append(Kernel("Memcpy DtoD", _copy_cost, (_nbytes(src), _nbytes(dst))))
            return out
        if registry.has_cost(func):
            self.ops.append(Kernel(name, _registry_cost, (func, _freeze(args), _freeze(kwargs))))
        else:
            numel = max([n for n, _, _ in ins_sized] + [t.numel() for t in outs])
            nbytes = sum(b for _, b, _ in ins_sized) + sum(_nbytes(t) for t in outs)
            fp64 = any(d == torch.float64 for _, _, d in ins_sized) or any(t.dtype == torch.float64 for t in outs)
            self.ops.append(Kernel(name, _generic_cost, (numel, nbytes, fp64)))
        return out


_CEA = torch._C.DispatchKey.CompositeExplicitAutograd
_decompose_cache = {}


def _decomposes(func):
    """True when a biren tensor would reach this op's CompositeExplicitAutograd kernel (no biren
    kernel registered for it), so that its parts, not the op, are charged."""
    hit = _decompose_cache.get(func)
    if hit is None:
        name = func.name()
        has = torch._C._dispatch_has_kernel_for_dispatch_key
        hit = not has(name, "PrivateUse1") and has(name, "CompositeExplicitAutograd")
        _decompose_cache[func] = hit
    return hit


class _Tracer:
    """Shared state of one trace: the kernel list, the recorder (quiet inside fused stand-ins) and
    the marks (kernel counts at mark())."""

    def __init__(self):
        self.ops = []
        self.marks = []
        self.recorder = _Recorder(self.ops)
        self.saved = {}  # storage address -> (bytes, weak references to the saved tensors on it)
        self.saved_bytes = 0

    def pack(self, t):
        """saved_tensors_hooks' pack: note the buffer autograd keeps (the tensor itself is kept)."""
        # A weight saved as a view (mm saves weight.t()) is a parameter, not an activation; views of one
        # buffer (q, k and v projections saving the same input) hold its memory once.
        root = t._base if isinstance(t, torch.Tensor) and t._base is not None else t
        if isinstance(t, torch.Tensor) and t.device.type == "meta" and not isinstance(root, torch.nn.Parameter):
            storage = t.untyped_storage()
            nbytes, refs = self.saved.get(storage._cdata, (0, []))
            if not any(r() is not None for r in refs):  # a new buffer (an address reused after a free)
                refs = []
            refs.append(weakref.ref(t))
            self.saved[storage._cdata] = (storage.nbytes(), refs)
        return t

    def live_saved(self):
        """Bytes of the saved buffers some graph node still holds (a node autograd freed holds none)."""
        return sum(n for n, refs in self.saved.values() if any(r() is not None for r in refs))

    def charge(self, name, fn, *tensors):
        """A fused kernel priced by fn(*tensors, chip=...) (an op description's cost)."""
        self.ops.append(Kernel(name, fn, _freeze(tensors)))

    @contextlib.contextmanager
    def quiet(self):
        self.recorder.quiet += 1
        try:
            yield
        finally:
            self.recorder.quiet -= 1


_active = None  # the _Tracer of the trace in progress


# Fused stand-ins: one kernel forward and one backward, outputs of the right shape, as on biren. Names
# and costs are the live ops' own descriptions (torch_biren/ops/_fused.py), not restated here.


class _SDPA(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, mask, causal, scale):
        t = _active
        b, h, lq = q.shape[:-3].numel(), q.shape[-3], q.shape[-2]  # lse: one per batch, head and query
        with t.quiet():
            out = like_query(q, (*q.shape[:-1], v.shape[-1]))
            lse = q.new_empty((b, h, lq), dtype=torch.float32)
        t.charge(ATTENTION.name, ATTENTION.cost, q, k, v, mask, causal, scale)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.mask, ctx.causal = mask, causal
        return out

    @staticmethod
    def backward(ctx, dout):
        t = _active
        q, k, v, out, lse = ctx.saved_tensors
        t.charge(ATTENTION.backward_name, ATTENTION.backward_cost, dout, q, k, v, ctx.mask, ctx.causal)
        with t.quiet():
            return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v), None, None, None


class _RMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight):
        t = _active
        t.charge(RMS_NORM.name, RMS_NORM.cost, x, weight)
        with t.quiet():
            rstd = x.new_empty(x.shape[:-1], dtype=torch.float32)
            out = torch.empty_like(x)
        ctx.save_for_backward(x, weight, rstd)
        return out

    @staticmethod
    def backward(ctx, dy):
        t = _active
        x, weight, rstd = ctx.saved_tensors
        t.charge(RMS_NORM.backward_name, RMS_NORM.backward_cost, dy, x, rstd, weight)
        with t.quiet():
            return torch.empty_like(x), None if weight is None else torch.empty_like(weight)


class _CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, target, reduction):
        t = _active
        t.charge(CROSS_ENTROPY.name, CROSS_ENTROPY.cost, logits)
        with t.quiet():
            lse = logits.new_empty(logits.shape[:-1], dtype=torch.float32)
            loss = logits.new_empty(logits.shape[:-1] if reduction == "none" else ())
        ctx.save_for_backward(logits, target, lse)
        return loss

    @staticmethod
    def backward(ctx, grad):
        t = _active
        logits = ctx.saved_tensors[0]
        t.charge(CROSS_ENTROPY.backward_name, CROSS_ENTROPY.backward_cost, logits)
        with t.quiet():
            return torch.empty_like(logits), None, None


class _SwiGLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gate, up):
        t = _active
        t.charge(SWIGLU.name, SWIGLU.cost, gate, up)
        ctx.save_for_backward(gate, up)
        with t.quiet():
            return torch.empty_like(gate)

    @staticmethod
    def backward(ctx, dy):
        t = _active
        gate, up = ctx.saved_tensors
        dy = dy.contiguous()  # a copy when the gradient arrives strided, as in ops/swiglu.py
        t.charge(SWIGLU.backward_name, SWIGLU.backward_cost, dy, gate, up)
        with t.quiet():
            return torch.empty_like(gate), torch.empty_like(up)


class _Rope(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k):
        t = _active
        t.charge(ROPE.name, ROPE.cost, q, k)
        with t.quiet():
            return torch.empty_like(q), torch.empty_like(k)

    @staticmethod
    def backward(ctx, dq, dk):
        t = _active
        dq, dk = dq.contiguous(), dk.contiguous()  # as ops/rope.py
        t.charge(ROPE.backward_name, ROPE.backward_cost, dq, dk)
        with t.quiet():
            return torch.empty_like(dq), torch.empty_like(dk)


class _Experts(torch.autograd.Function):
    """Routed experts with balanced routing: tokens x k rows through grouped GEMMs (gate/up, SwiGLU,
    down), gathered before and combined after; as ops/grouped_mm.py charges, each grouped GEMM is one
    launch over a GEMM per expert (rows split evenly)."""

    @staticmethod
    def forward(ctx, x, gate_up, down, rows):
        t = _active
        h, inter, dt = x.shape[-1], down.shape[-1], dtypes.key(x.dtype)
        tokens = x.shape[0]
        experts = gate_up.shape[0]
        t.ops.extend(_expert_kernels(tokens, rows, h, inter, dt, backward=False, experts=experts))
        ctx.shape = (tokens, rows, h, inter, dt)
        ctx.experts, ctx.x_shape = experts, x.shape
        with t.quiet():
            # What the grouped GEMMs' backward needs: the gathered rows (the gate/up weight gradient),
            # the gate/up output (SwiGLU's backward) and the SwiGLU output (the down weight gradient).
            gathered, gate_up_out, act = (x.new_empty((rows, n)) for n in (h, 2 * inter, inter))
            ctx.save_for_backward(gathered, gate_up_out, act)
            return torch.empty_like(x)

    @staticmethod
    def backward(ctx, dy):
        t = _active
        t.ops.extend(_expert_kernels(*ctx.shape, backward=True, experts=ctx.experts))
        gathered = ctx.saved_tensors[0]
        with t.quiet():
            return gathered.new_empty(ctx.x_shape), None, None, None


def _d2d(nbytes, chip):
    return costs.copy(nbytes, "d2d", chip)


def _combine(numel, dt, chip):
    return costs.elementwise(numel, dt, chip, inputs=2, outputs=1, flops_per_element=2)


def _grouped(problems, dt, chip):  # one grouped launch, a GEMM per expert (ops/grouped_mm.py)
    return costs.grouped_gemm(list(problems), dtype=dt, chip=chip)


def _swiglu(numel, dt, backward, chip):
    return costs.swiglu(numel, dt, chip, backward=backward)


def _expert_kernels(tokens, rows, h, inter, dt, backward, experts=1):
    elt = dtypes.itemsize(dt)
    gather = Kernel("aten::index_select", _d2d, (rows * h * elt,))
    combine = Kernel("aten::index_add_", _combine, (rows * h, dt))
    q, r = divmod(rows, experts)
    sizes = [q + (i < r) for i in range(experts)]  # balanced routing

    def grouped(problem):
        return Kernel("aten::_grouped_mm", _grouped, (tuple(problem(g) for g in sizes), dt))

    if not backward:
        return [gather, grouped(lambda g: (g, 2 * inter, h)),
                Kernel("torch_biren::swiglu", _swiglu, (rows * inter, dt, False)),
                grouped(lambda g: (g, h, inter)), combine]
    return [gather,
            grouped(lambda g: (g, inter, h)),        # d(act) = dy @ down
            grouped(lambda g: (h, inter, g)),        # d(down)
            Kernel("torch_biren::swiglu_backward", _swiglu, (rows * inter, dt, True)),
            grouped(lambda g: (g, h, 2 * inter)),    # dx
            grouped(lambda g: (2 * inter, h, g)),    # d(gate_up)
            combine]  # fmt: skip


def _experts_forward(self, hidden_states, top_k_index, top_k_weights):
    k = top_k_index.shape[-1]
    rows = hidden_states.shape[0] * k
    return _Experts.apply(hidden_states, self.gate_up_proj, self.down_proj, rows)


def _rms_forward(self, hidden_states):
    # As ops/hf.py's: through F.rms_norm, which _Functions fuses when the live op would.
    return F.rms_norm(hidden_states, (hidden_states.shape[-1],), self.weight, self.variance_epsilon)


def _mlp_forward(self, x):
    return self.down_proj(_SwiGLU.apply(self.gate_proj(x), self.up_proj(x)))


def _rope(q, k, cos, sin, *args, **kwargs):
    return _Rope.apply(q, k)


def _additive(mask, dtype):
    """A boolean mask as sdpa turns it into an additive one before the fused kernel (ATen's
    convert_boolean_attn_mask: where(mask, 0, -inf) in the query's dtype), charged as live."""
    zero = torch.scalar_tensor(0.0, dtype=dtype, device=mask.device)
    return torch.where(mask, zero, torch.scalar_tensor(-math.inf, dtype=dtype, device=mask.device))


class _Functions(TorchFunctionMode):
    """Routes the composite ops biren registers above the backend to their one-kernel stand-ins."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            q, k, v = args[:3]
            mask = kwargs.get("attn_mask", args[3] if len(args) > 3 else None)
            causal = kwargs.get("is_causal", args[5] if len(args) > 5 else False)
            if mask is not None and mask.dtype == torch.bool:  # HF's StaticCache masks its padded length
                mask = _additive(mask, q.dtype)
            # GQA needs nothing more: the flash kernel reads shared K/V heads directly.
            return _SDPA.apply(q, k, v, mask, bool(causal), kwargs.get("scale"))
        if func in (F.rms_norm, torch.rms_norm):
            x, shape = args[:2]
            w = args[2] if len(args) > 2 else kwargs.get("weight")
            if rms_norm_fusable(x, shape, w):  # the live aten::rms_norm's own test
                if len(shape) == 1:
                    return _RMSNorm.apply(x, w)
                flat = x.reshape(*x.shape[: x.dim() - len(shape)], -1)
                return _RMSNorm.apply(flat, None if w is None else w.reshape(-1)).view(x.shape)
        if func is F.cross_entropy:
            logits, target = args[:2]
            if cross_entropy_fusable(logits, target, kwargs.get("weight"), kwargs.get("label_smoothing")):
                return _CrossEntropy.apply(logits, target, kwargs.get("reduction", "mean"))
        return func(*args, **kwargs)


def _fuse(linears, undo):
    """Megatron's linear_qkv / linear_fc1 (stack.fused_projections): the projections of one input
    (q, k, v; gate, up) as one GEMM over their weights side by side, split into views of its output;
    backward one input-gradient and one weight-gradient GEMM, the split's backward one concatenation,
    instead of a GEMM each and the input gradients added. The fused weight is a stand-in parameter
    (no gradient memory is counted from it: memory.py counts the model's parameters)."""
    first = linears[0]
    sizes = [lin.out_features for lin in linears]
    meta = dict(dtype=first.weight.dtype, device=first.weight.device)
    weight = torch.nn.Parameter(torch.empty(sum(sizes), first.in_features, **meta))
    bias = torch.nn.Parameter(torch.empty(sum(sizes), **meta)) if first.bias is not None else None
    pending = {}  # id(input) -> [input, the split output, pieces handed out]

    def piece(i):
        def forward(x):
            hit = pending.get(id(x))
            if hit is None or hit[0] is not x:
                hit = pending[id(x)] = [x, torch.split(F.linear(x, weight, bias), sizes, dim=-1), 0]
            hit[2] += 1
            if hit[2] == len(linears):
                del pending[id(x)]
            return hit[1][i]

        return forward

    for i, lin in enumerate(linears):
        undo.append((lin, "forward", lin.__dict__.get("forward")))
        lin.forward = piece(i)


def _fusable(module, names):
    linears = [getattr(module, n, None) for n in names]
    return all(isinstance(lin, torch.nn.Linear) for lin in linears) and \
        len({(lin.in_features, lin.bias is None, lin.weight.dtype) for lin in linears}) == 1


@contextlib.contextmanager
def _patched(model, fused, fuse_projections=False):
    """Point the model's experts (always) and, when `fused`, the modules torch_biren.ops.patch_model
    replaces (the ops' own `replaces` and RoPE families) at the stand-ins; with fuse_projections, each
    attention's q, k, v and each gated MLP's gate, up projections at one GEMM (_fuse); undone on exit."""
    undo = []
    for module in model.modules():
        if hasattr(module, "gate_up_proj") and hasattr(module, "down_proj") and \
                getattr(module.gate_up_proj, "dim", lambda: 0)() == 3:
            undo.append((module, "forward", module.__dict__.get("forward")))
            module.forward = _experts_forward.__get__(module)
            continue
        if fuse_projections:
            for names in (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj")):
                if _fusable(module, names):
                    _fuse([getattr(module, n) for n in names], undo)
        if fused and RMS_NORM.replaces(module):
            undo.append((module, "forward", module.__dict__.get("forward")))
            module.forward = _rms_forward.__get__(module)
        elif fused and SWIGLU.replaces(module):
            undo.append((module, "forward", module.__dict__.get("forward")))
            module.forward = _mlp_forward.__get__(module)
    for modeling in rope_modules(model) if fused else ():
        undo.append((modeling, "apply_rotary_pos_emb", modeling.apply_rotary_pos_emb))
        modeling.apply_rotary_pos_emb = _rope
    try:
        yield
    finally:
        for obj, attr, old in reversed(undo):
            if old is None:
                delattr(obj, attr)
            else:
                setattr(obj, attr, old)


class Trace(NamedTuple):
    kernels: list  # [Kernel] in issue order
    saved_bytes: int  # bytes of the distinct buffers autograd saved for backward (activations)
    marks: list  # len(kernels) at each mark() during the trace


def mark():
    """Inside a traced fn: note how many kernels have been issued so far (e.g. the end of forward)."""
    _active.marks.append(len(_active.ops))
    if len(_active.marks) == 1:
        _active.saved_bytes = _active.live_saved()


def trace(fn, model=None, fused=True, fuse_projections=False):
    """Run fn() (on meta tensors) and return the kernels the live device would charge, in order, and
    the bytes of the buffers autograd holds for backward at the first mark() (the end of forward),
    else when fn returns. fuse_projections: q, k, v and gate, up as one GEMM each (_fuse), as
    Megatron-Core and serving engines run them, which the live device does not."""
    global _active
    tracer = _Tracer()

    old, _active = _active, tracer
    try:
        with contextlib.ExitStack() as stack:
            if model is not None:
                stack.enter_context(_patched(model, fused, fuse_projections))
            stack.enter_context(torch.autograd.graph.saved_tensors_hooks(tracer.pack, lambda t: t))
            stack.enter_context(_Functions())
            stack.enter_context(tracer.recorder)
            fn()
            if not tracer.marks:
                tracer.saved_bytes = tracer.live_saved()
    finally:
        _active = old
    return Trace(tracer.ops, tracer.saved_bytes, tracer.marks)


def price(kernels, chip, memo=None):
    """[Op(name, Cost)] of the kernels on `chip`; memo: a dict kept per chip, so that a kernel met
    again (the same function at the same shapes, as in every decoder layer) is priced once."""
    memo = {} if memo is None else memo
    out = []
    for k in kernels:
        key = (k.fn, k.args)
        try:
            cost = memo.get(key)
        except TypeError:  # an unhashable argument: price it each time
            out.append(Op(k.name, k.cost(chip)))
            continue
        if cost is None:
            cost = memo[key] = k.cost(chip)
        out.append(Op(k.name, cost))
    return out


def _ps(ns):
    """ns as the live clock keeps it: whole picoseconds, rounded half away from zero (csrc/sim/timeline.cpp)."""
    return math.floor(ns * 1000 + 0.5)


def replay(ops, chip, host_ns=0.0, device_ns=0.0, graph=False):
    """The device timeline over `ops`: (elapsed_ns, {name: busy ns}). Eager: the host issues each op
    after chip.host_issue_ns; an op starts when the host has issued it and the stream is free.
    graph: the ops replayed as one captured graph (torch.biren.graph, CUDA Graphs), as
    csrc/sim/timeline.cpp's graph_launch charges it: the host pays chip.graph_launch_ns once, then
    the kernels run back to back, each its own time less chip.launch_ns plus chip.graph_kernel_gap_ns.
    Summed in integer picoseconds, as the live clock is, so a projection and a live run agree to the bit."""
    host, dev = _ps(host_ns), _ps(device_ns)
    busy = defaultdict(int)
    if graph:
        launch, gap = _ps(chip.launch_ns), _ps(chip.graph_kernel_gap_ns)
        dev = max(dev, host + _ps(chip.graph_launch_ns))
        for op in ops:
            dur = max(0, _ps(op.cost.ns) - launch) + gap
            dev += dur
            busy[op.name] += dur
        return dev / 1000, {name: ps / 1000 for name, ps in busy.items()}
    issue = _ps(chip.host_issue_ns)
    for op in ops:
        dur = _ps(op.cost.ns)
        host += issue
        dev = max(dev, host) + dur
        busy[op.name] += dur
    return dev / 1000, {name: ps / 1000 for name, ps in busy.items()}
