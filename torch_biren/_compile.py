"""torch.compile on biren. Inductor generates code for CUDA and the CPU only; for graphs whose
inputs live on biren its default backend hands over to AOTAutograd without fusion ("aot_eager"):
Dynamo still captures the graph, and each op runs as a biren kernel, charged as in eager mode.
With mode="reduce-overhead", inference calls replay as biren graphs (biren/graphs.py reduce_overhead),
as CUDA graph trees do on CUDA. Other backends, and graphs on other devices, are untouched."""

import functools
import warnings

import torch


def _on_biren(gm, inputs):
    """Whether the graph touches biren: an input on it, or any value Dynamo traced (a graph may
    take only sizes and make its tensors on the device)."""
    from torch.utils._pytree import tree_leaves

    values = [*inputs, *(n.meta.get("example_value", n.meta.get("val")) for n in gm.graph.nodes)]
    return any(isinstance(t, torch.Tensor) and t.device.type == "biren" for t in tree_leaves(values))


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
        from torch._dynamo.backends.debugging import aot_eager

        graphs = self.config.get("triton.cudagraphs", False)  # mode="reduce-overhead"
        warnings.warn("torch.compile: Inductor has no code generator for biren; the graph runs through "
                      "AOTAutograd without fusion (backend 'aot_eager'): same numerics, each op a biren kernel "
                      + ("replayed as a biren graph (torch.biren.graph) in inference" if graphs else
                         "charged as in eager mode"), UserWarning, stacklevel=2)  # fmt: skip
        compiled = aot_eager(model_, inputs_)
        if graphs:
            from .biren.graphs import reduce_overhead

            return reduce_overhead(compiled)
        return compiled

    __call__._biren = True
    wrapper.__call__ = __call__
