"""Graphs: capture device work once, replay it with one launch (torch.cuda.graphs for biren).

How it works. Every op reaches the device through one of two paths, the C++ boxed fallback or a
Python/Triton op of torch_biren.ops, and both end in the C++ timeline's charge(). A capture
therefore has two halves:

- Numerics. A TorchDispatchMode records each op that touches a biren tensor, with the very tensors
  it read and wrote. replay() calls the same ops again on those tensors, below autograd and autocast.
  Where an op returned new memory, its new result is copied into the captured output, so later ops
  and the user read the captured tensors, as CUDA's fixed addresses make them. Ops on CPU tensors
  alone ran once, during capture, and are not replayed, as on CUDA. The graph holds the tensors it
  recorded (CUDA's private memory pool) until reset().
- Time. While a device captures, the timeline appends each charged kernel to the graph instead of
  running it (a captured kernel does not run on CUDA either), and host waits raise (synchronize,
  .item(), .cpu(), print of a device tensor, Event.synchronize): CUDA fails them with "operation
  not permitted when stream is capturing". A replay re-runs the ops muted, then charges the graph:
  the host pays graph_launch_ns once instead of host_issue_ns per op, and the kernels run back to
  back on the stream, each its captured time less launch_ns plus graph_kernel_gap_ns (chip file).

Differences from CUDA: ops run during capture as well, so memory the capture allocated holds real
values at once; memory that existed before it is put back as it was at the end of the capture
(a captured kernel does not run on CUDA, so e.g. a KV cache's position counter does not advance);
work on any stream of the capturing device joins the capture; `pool` is accepted for parity (the
memory a graph keeps is the tensors it recorded).
"""

import gc
import itertools

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_leaves, tree_unflatten

from .. import _C
from .device import current_device, synchronize
from .streams import Stream, current_stream
from .streams import stream as _stream_ctx

_pool_ids = itertools.count(1)

# Ops that size their output from device values: CUDA needs a host read for them, so they cannot be
# captured (torch.nonzero_static and friends, which take the size from the caller, can).
_DATA_DEPENDENT = {"aten::nonzero", "aten::masked_select", "aten::_unique2", "aten::unique_dim",
                   "aten::unique_consecutive", "aten::repeat_interleave"}  # fmt: skip
# Factories whose values do not matter: nothing to redo on replay.
_NO_REPLAY = {"aten::empty", "aten::empty_strided", "aten::empty_like", "aten::new_empty",
              "aten::new_empty_strided"}  # fmt: skip


def graph_pool_handle():
    """An opaque memory-pool handle that graphs may share (torch.cuda.graph_pool_handle)."""
    return (0, next(_pool_ids))


def is_current_stream_capturing():
    """Whether the current device is capturing a graph."""
    return _C._sim_capturing(current_device())


def _is_biren(x):
    return isinstance(x, torch.Tensor) and x.device.type == "biren"


def _storage_ptr(t):
    return t.untyped_storage().data_ptr() if t.device.type != "meta" else None


class _Op:
    """One recorded call, and which of its outputs are new memory to refill on replay."""

    __slots__ = ("func", "args", "kwargs", "out", "refill")

    def __init__(self, func, args, kwargs, out):
        self.func, self.args, self.kwargs, self.out = func, args, kwargs, out
        inputs = {_storage_ptr(t) for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        flat, _ = tree_flatten(out)
        self.refill = [i for i, t in enumerate(flat) if isinstance(t, torch.Tensor) and _storage_ptr(t) not in inputs]

    def run(self):
        new = self.func(*self.args, **self.kwargs)
        if self.refill:
            flat_new, _ = tree_flatten(new)
            flat_out, _ = tree_flatten(self.out)
            for i in self.refill:
                flat_out[i].copy_(flat_new[i])


class _Recorder(TorchDispatchMode):
    def __init__(self, device):
        super().__init__()
        self.device = device
        self.ops = []
        self.fresh = set()  # storages the captured work allocated
        self.saved = {}  # storage pointer -> (storage, its contents before the capture wrote to it)

    def _save_before_write(self, func, args, kwargs):
        # Captured kernels do not run on CUDA, so a capture leaves memory that existed before it as it
        # was (a KV cache's position counter, a buffer updated in place); ops here do run, so the old
        # contents are kept and put back at the end of the capture.
        schema = func._schema
        for i, a in enumerate(schema.arguments):
            if a.alias_info is None or not a.alias_info.is_write:
                continue
            t = args[i] if i < len(args) else kwargs.get(a.name)
            self.save(t if isinstance(t, (list, tuple)) else [t])

    def save(self, tensors):
        """Keeps the contents of the tensors' memory from before the capture, to put back at its end."""
        for x in tensors:
            if _is_biren(x):
                st = x.untyped_storage()
                ptr = st.data_ptr()
                if ptr not in self.fresh and ptr not in self.saved:
                    with _Mute():
                        self.saved[ptr] = (st, st.clone())

    def restore(self):
        with _Mute(), torch.no_grad():
            for st, old in self.saved.values():
                st.copy_(old)
        self.saved.clear()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func._schema.name
        if name in _DATA_DEPENDENT and any(_is_biren(t) for t in tree_leaves((args, kwargs))):
            _C._sim_capture_abort(self.device)  # as CUDA, the capture is lost
            raise RuntimeError(
                f"biren: {func} sizes its output from device values, which needs a host read: not permitted while "
                f"biren:{self.device} is capturing a graph (CUDA: operation not permitted when stream is capturing). "
                "Give the size explicitly (e.g. torch.nonzero_static) or run it outside the graph."
            )
        self._save_before_write(func, args, kwargs)
        try:
            out = func(*args, **kwargs)
        except RuntimeError as e:
            if "is capturing a graph" in str(e) and "biren:" in str(e):
                raise RuntimeError(f"{e}\n(raised by {func} during graph capture)") from None
            raise
        for t in tree_leaves(out):
            if _is_biren(t):
                self.fresh.add(_storage_ptr(t))  # (already-known storages are in saved, not affected)
        if name not in _NO_REPLAY and any(_is_biren(t) for t in tree_leaves((args, kwargs, out))):
            self.ops.append(_Op(func, args, kwargs, out))
        return out


_RECORDING = {}  # device index -> the _Recorder of the capture running on it


def launch(fn, device, writes=()):
    """fn() (a fused kernel writing into tensors it closes over), recorded for replay while `device`
    captures a graph: kernels launched below the dispatcher (torch_biren.ops' RoPE, SwiGLU and
    cross-entropy, Inductor's generated kernels) are invisible to the recorder's dispatch mode.
    `writes`: the tensors fn writes, whose memory from before the capture is put back at its end
    (a kernel updating an input in place). Returns fn's result."""
    recorder = _RECORDING.get(device.index if isinstance(device, torch.device) else device)
    if recorder is not None:
        recorder.save(writes)
    out = fn()
    if recorder is not None:
        recorder.ops.append(_Op(fn, (), {}, None))
    return out


class _Mute:
    """Replay's numerics pass: the ops run, the timeline charges nothing (the graph is charged)."""

    def __enter__(self):
        self.prev = _C._sim_set_muted(True)

    def __exit__(self, *exc):
        _C._sim_set_muted(self.prev)
        return False


class BirenGraph:
    """A captured graph of biren work (torch.cuda.CUDAGraph): capture_begin/capture_end around
    the work, or the torch.biren.graph context; replay() re-runs it with one launch."""

    def __init__(self, keep_graph=False):
        self._id = None
        self._ops = []
        self._device = None
        self._recorder = None
        self._pool = None
        self._written = set()

    def capture_begin(self, pool=None, capture_error_mode="global"):
        if capture_error_mode not in ("global", "thread_local", "relaxed"):
            raise ValueError(f"capture_error_mode must be global, thread_local or relaxed, got {capture_error_mode!r}")
        if self._id is not None or self._recorder is not None:
            raise RuntimeError("biren: this graph already holds a capture; call reset() before capturing again")
        device = current_device()
        s = current_stream(device)
        if s.stream_id == 0:
            raise RuntimeError(
                "biren: graphs must be captured on a non-default stream (as on CUDA): use torch.biren.graph(g), "
                "which captures on a side stream, or capture inside torch.biren.stream(torch.biren.Stream())"
            )
        _C._sim_capture_begin(device, s.stream_id)
        self._device, self._pool = device, pool if pool is not None else graph_pool_handle()
        self._recorder = _Recorder(device)
        self._recorder.__enter__()
        _RECORDING[device] = self._recorder

    def capture_end(self):
        if self._recorder is None:
            raise RuntimeError("biren: capture_end() without capture_begin()")
        recorder, self._recorder = self._recorder, None
        recorder.__exit__(None, None, None)
        _RECORDING.pop(self._device, None)
        self._written = set(recorder.saved)  # memory from before the capture that replays write to
        recorder.restore()  # muted; the device is still capturing, so nothing is charged either way
        self._id = _C._sim_capture_end(self._device)  # raises if a capture rule was broken
        self._ops = recorder.ops

    def _capture_abort(self):
        _RECORDING.pop(getattr(self, "_device", None), None)
        if self._recorder is not None:
            self._recorder.__exit__(None, None, None)
            self._recorder.restore()
            self._recorder = None
        _C._sim_capture_abort(self._device)

    def replay(self):
        """Re-runs the captured work on the captured tensors, charged as one graph launch."""
        if self._id is None:
            raise RuntimeError("biren: replay() of a graph that has not been captured (or was reset)")
        if _C._sim_capturing(self._device):
            raise RuntimeError(f"biren: replay() is not permitted while biren:{self._device} is capturing a graph")
        with _Mute(), torch.no_grad(), torch._C._ExcludeDispatchKeyGuard(_BELOW_AUTOCAST):
            for op in self._ops:
                op.run()
        _C._sim_graph_launch(self._device, current_stream(self._device).stream_id, self._id)

    def reset(self):
        """Drops the capture and the memory it holds."""
        if self._id is not None:
            _C._sim_graph_free(self._id)
        self._id, self._ops = None, []

    def pool(self):
        return self._pool

    def num_kernels(self):
        """Kernels a replay launches (the ops that charged device time during capture)."""
        return _C._sim_graph_size(self._id) if self._id is not None else 0

    def __del__(self):
        if getattr(self, "_id", None) is not None:
            try:
                _C._sim_graph_free(self._id)
            except Exception:  # interpreter shutdown
                pass

    def __repr__(self):
        state = f"{len(self._ops)} ops, {self.num_kernels()} kernels" if self._id is not None else "empty"
        return f"<torch.biren.BirenGraph {state}>"


CUDAGraph = BirenGraph

_BELOW_AUTOCAST = torch._C.DispatchKeySet(torch._C.DispatchKey.AutocastPrivateUse1)


class graph:
    """Context manager capturing the work in its block into `cuda_graph`, a BirenGraph (torch.cuda.graph's
    signature, so CUDA scripts pass it by the same keyword): synchronizes, then captures on `stream`
    (default: a side stream shared by all captures). enable_annotations and check_input_liveness are
    accepted and change nothing: a biren graph holds its recorded tensors, so its inputs stay alive."""

    default_capture_stream = None

    def __init__(self, cuda_graph, pool=None, stream=None, capture_error_mode="global", enable_annotations=False,
                 check_input_liveness=False):
        biren_graph = cuda_graph
        if stream is None:
            if graph.default_capture_stream is None:
                graph.default_capture_stream = Stream()
            stream = graph.default_capture_stream
        self.graph, self.pool, self.stream, self.mode = biren_graph, pool, stream, capture_error_mode

    def __enter__(self):
        synchronize()
        gc.collect()
        self._ctx = _stream_ctx(self.stream)
        self._ctx.__enter__()
        try:
            self.graph.capture_begin(pool=self.pool, capture_error_mode=self.mode)
        except BaseException:
            self._ctx.__exit__(None, None, None)
            raise
        return self.graph

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.graph.capture_end()
            else:
                self.graph._capture_abort()  # the body's error is the one to see
        finally:
            self._ctx.__exit__(exc_type, exc, tb)
        return False


def make_graphed_callables(callables, sample_args, num_warmup_iters=3, allow_unused_input=False, pool=None):
    """Graphed versions of callables (functions or nn.Modules), forward and backward each one
    replay (torch.cuda.make_graphed_callables). sample_args: a tuple of tensors per callable."""
    just_one = not isinstance(callables, tuple)
    if just_one:
        callables, sample_args = (callables,), (sample_args,)
    out = []
    for fn, args in zip(callables, sample_args):
        out.append(_graph_one(fn, tuple(args), num_warmup_iters, allow_unused_input, pool))
    return out[0] if just_one else tuple(out)


def _graph_one(fn, args, warmup, allow_unused, pool):
    if isinstance(fn, torch.nn.Module) and getattr(fn, "_backward_hooks", None):
        raise RuntimeError("make_graphed_callables does not support modules with registered backward hooks")
    for a in args:
        if not isinstance(a, torch.Tensor):
            raise TypeError(f"make_graphed_callables: sample_args must be tensors, got {type(a).__name__}")
    params = tuple(fn.parameters()) if isinstance(fn, torch.nn.Module) else ()
    inputs = args + params
    needs_grad = tuple(t for t in inputs if t.requires_grad)

    def grads_of(outs, grad_outs):
        pairs = [(o, g) for o, g in zip(outs, grad_outs) if o.requires_grad]
        if not pairs or not needs_grad:
            return ()
        return torch.autograd.grad([o for o, _ in pairs], needs_grad, [g for _, g in pairs],
                                   allow_unused=allow_unused)  # fmt: skip

    side = Stream()
    side.wait_stream(current_stream())
    with _stream_ctx(side):
        for _ in range(warmup):
            outs, _ = tree_flatten(fn(*args))
            grads_of(outs, [torch.ones_like(o) for o in outs])
    current_stream().wait_stream(side)

    fwd, bwd = BirenGraph(), BirenGraph()
    with graph(fwd, pool=pool):
        result = fn(*args)
    static_outs, spec = tree_flatten(result)
    static_grad_outs = [torch.empty_like(o) if o.requires_grad else None for o in static_outs]
    with graph(bwd, pool=fwd.pool()):
        static_grads = grads_of(static_outs, static_grad_outs)
    grad_of = dict(zip(map(id, needs_grad), static_grads)) if static_grads else {}
    static_grad_inputs = tuple(grad_of.get(id(t)) for t in inputs)

    class Graphed(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *new_inputs):
            for static, new in zip(inputs, new_inputs):
                if static.data_ptr() != new.data_ptr():  # parameters are their own static inputs
                    static.copy_(new)
            fwd.replay()
            return tuple(o.detach() for o in static_outs)

        @staticmethod
        def backward(ctx, *grads):
            for static, g in zip(static_grad_outs, grads):
                if static is not None and g is not None:
                    static.copy_(g)
            bwd.replay()
            return tuple(g.detach() if g is not None else None for g in static_grad_inputs)

    def graphed(*user_args):
        outs = Graphed.apply(*user_args, *params)
        return tree_unflatten(list(outs), spec)

    graphed._graphs = (fwd, bwd)
    if isinstance(fn, torch.nn.Module):
        training, plain = fn.training, fn.forward

        def forward(*user_args):  # the graphs hold one training mode with autograd on
            if fn.training == training and torch.is_grad_enabled():
                return graphed(*user_args)
            return plain(*user_args)

        fn.forward = forward
        return fn
    return graphed


def reduce_overhead(compiled):
    """torch.compile(mode="reduce-overhead") on biren: the compiled graph is replayed as a biren
    graph, as Inductor's CUDA graph trees do on CUDA. Per input signature: the first call runs as
    is (warm-up), the second captures, later calls copy the inputs whose memory changed into the
    captured ones and replay. Inputs at the same address on the warm-up and capture calls
    (parameters, buffers, a static KV cache) are used in place; an input the graph updates in place
    that arrives at a new address is copied in and, after the replay, back out. Outputs are the graph's own tensors,
    overwritten by the next replay (as on CUDA). Calls that record autograd run the compiled graph
    unchanged: training graphs would need forward and backward captured apart."""
    state = {}

    def run(*args):
        if torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
            return compiled(*args)
        key = tuple((tuple(a.shape), tuple(a.stride()), a.dtype, a.device) if isinstance(a, torch.Tensor) else a
                    for a in args)  # fmt: skip
        entry = state.get(key)
        ptrs = [a.data_ptr() if isinstance(a, torch.Tensor) else None for a in args]
        if entry is None:
            state[key] = ptrs
            return compiled(*args)
        if isinstance(entry, list):  # second call: capture
            static = [a if p == q or not isinstance(a, torch.Tensor) else a.clone() for a, p, q in zip(args, ptrs, entry)]
            g = BirenGraph()
            with graph(g):
                outs = compiled(*static)
            sptrs = [s.data_ptr() if isinstance(s, torch.Tensor) else None for s in static]
            written = [isinstance(s, torch.Tensor) and s.untyped_storage().data_ptr() in g._written for s in static]
            entry = state[key] = (g, static, sptrs, written, outs)
        g, static, static_ptrs, written, outs = entry
        copied = []
        for a, s, p, sp, w in zip(args, static, ptrs, static_ptrs, written):
            if isinstance(a, torch.Tensor) and p != sp:
                s.copy_(a)
                if w:
                    copied.append((a, s))
        g.replay()
        for a, s in copied:  # an input the graph updates in place (e.g. a KV cache) gets the update
            a.copy_(s)
        return outs

    return run
