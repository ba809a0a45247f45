"""torch.compile on biren. Graphs whose values live on biren go to Inductor with biren's backend
(torch_biren/inductor): pointwise and reduction ops fuse into generated Triton kernels that run on
the device's memory and are charged by the device model; GEMMs, convolutions and attention stay
extern calls to the device's own kernels. With mode="reduce-overhead", inference calls replay as
biren graphs (biren/graphs.py reduce_overhead), as CUDA graph trees do on CUDA.

A graph Inductor cannot compile for biren, or whose generated kernel fails on its first run, runs
through AOTAutograd without fusion ("aot_eager", each op a biren kernel charged as in eager mode)
after one warning naming the reason. Other backends, and graphs on other devices, are untouched.

Device work the compiler itself issues while it compiles (FakeTensorMode running torch.tensor
constants for real, as when Inductor traces its attention patterns; Inductor's constant folding
computing a uniform value with torch.full(...).item()) runs, as it does on CUDA, but is not the
program's: it goes on no stream (on a card it hides under the compile's seconds of host time, while
the stream is idle), is counted apart (`_C._op_counts(compile_time=True)`) and is exempt from the
fallback policy. Dynamo's compile contexts bound it (compile_time_scopes)."""

import contextlib
import functools
import warnings

import torch


def outside_dynamo(fn):
    """fn run with Dynamo's frame hook off, as torch._dynamo.disable runs it, without importing
    Dynamo: for Python code the dispatcher calls from C++ (the device kernels registered from
    Python, the cost hook). A frame Dynamo runs eagerly (one it skipped after a graph break) would
    otherwise hand each of them, and all they call down to Triton's interpreter, to Dynamo to trace."""
    from torch._C._dynamo.eval_frame import set_eval_frame

    @functools.wraps(fn)
    def run(*args, **kwargs):
        prior = set_eval_frame(None)
        try:
            return fn(*args, **kwargs)
        finally:
            set_eval_frame(prior)

    return run


@contextlib.contextmanager
def compiling():
    """Device work issued inside is the compiler's (see the module's docstring), on this thread."""
    from . import _C

    prior = _C._sim_set_compiling(True)
    try:
        yield
    finally:
        _C._sim_set_compiling(prior)


def compile_time_scopes(handler):
    """Marks the device work of each compile as the compiler's: Dynamo's callback handler
    (torch._dynamo.callback_handler) bounds every compile with its install_callbacks context, a
    frame's (Dynamo's trace and the backend's compile) and a backward's that AOTAutograd compiles
    on its first call. Its context is wrapped rather than a callback registered: torch._dynamo.reset()
    clears the callbacks, and a context begins and ends on the compiling thread, which the flag marks."""
    from torch._dynamo.callback import CallbackTrigger

    install = handler.install_callbacks
    if getattr(install, "_biren", False):
        return
    triggers = (CallbackTrigger.DYNAMO, CallbackTrigger.LAZY_BACKWARD)  # not CUDA graph recording: real runs

    @contextlib.contextmanager
    @functools.wraps(install)
    def install_callbacks(trigger, compile_id):
        with install(trigger, compile_id), compiling() if trigger in triggers else contextlib.nullcontext():
            yield

    install_callbacks._biren = True
    handler.install_callbacks = install_callbacks


def _on_biren(gm, inputs):
    """Whether the graph touches biren: an input on it, or any value Dynamo traced (a graph may
    take only sizes and make its tensors on the device)."""
    from torch.utils._pytree import tree_leaves

    values = [*inputs, *(n.meta.get("example_value", n.meta.get("val")) for n in gm.graph.nodes)]
    return any(isinstance(t, torch.Tensor) and t.device.type == "biren" for t in tree_leaves(values))


_warned = set()


def _reason(e):
    """The exception's type and first line, Inductor's wrapping taken off."""
    inner = e
    while isinstance(getattr(inner, "inner_exception", None), Exception):  # InductorError, BackendCompilerFailed
        inner = inner.inner_exception
    lines = str(inner).strip().splitlines()
    return f"{type(inner).__name__}: {lines[0]}" if lines else type(inner).__name__


def _fall_back(reason, model_, inputs_):
    from torch._dynamo.backends.debugging import aot_eager

    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"torch.compile: Inductor could not compile this graph for biren ({reason}); it runs "
                      "through AOTAutograd without fusion (backend 'aot_eager'): same numerics, each op a "
                      "biren kernel charged as in eager mode", UserWarning, stacklevel=3)  # fmt: skip
    return aot_eager(model_, inputs_)


def _first_run_checked(compiled, model_, inputs_):
    """The compiled graph, falling back to aot_eager if a generated kernel fails on its first call
    (the interpreter lacking an op): the graph runs again from its inputs, so an input the graph
    updates in place that a kernel before the failing one already wrote would be updated twice.
    A failure past the first call is raised as it is."""
    from .inductor.launcher import KernelLaunchError

    state = {"fn": None}

    def run(*args):
        fn = state["fn"]
        if fn is not None:
            return fn(*args)
        kept = [list(a) if isinstance(a, list) else a for a in args]  # a boxed call empties its list
        try:
            out = compiled(*args)
        except KernelLaunchError as e:
            with compiling():  # AOTAutograd traces the graph again, outside Dynamo's compile
                state["fn"] = _fall_back(str(e), model_, inputs_)
            return state["fn"](*kept)
        state["fn"] = compiled
        return out

    run._boxed_call = getattr(compiled, "_boxed_call", False)
    return run


def install():
    from .biren import dynamo

    dynamo.install()  # get_interface_for_device("biren"), which Dynamo and Inductor consult
    wrapper = torch._TorchCompileInductorWrapper
    original = wrapper.__call__
    if getattr(original, "_biren", False):
        return

    @functools.wraps(original)
    def __call__(self, model_, inputs_, **kwargs):
        if not _on_biren(model_, inputs_):
            return original(self, model_, inputs_, **kwargs)
        from . import inductor

        graphs = self.config.get("triton.cudagraphs", False)  # mode="reduce-overhead"
        inductor.install()
        patches = {**(kwargs.pop("config_patches", None) or {}), **inductor.CONFIG}
        try:
            compiled = _first_run_checked(original(self, model_, inputs_, config_patches=patches, **kwargs), model_,
                                          inputs_)
        except (torch._dynamo.exc.RestartAnalysis, torch._dynamo.exc.SkipFrame):
            raise  # Dynamo's own control flow: it traces the frame again
        except Exception as e:  # an Inductor failure for this graph: the graph still runs
            compiled = _fall_back(_reason(e), model_, inputs_)
        if graphs:
            from .biren.graphs import reduce_overhead

            return reduce_overhead(compiled)
        return compiled

    __call__._biren = True
    wrapper.__call__ = __call__
