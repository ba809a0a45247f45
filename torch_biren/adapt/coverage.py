"""Which path each op of a model took on biren (torch_biren.op_counts(): triton, native, fallback,
copy), summed, grouped by op family, and attributed to the model's layers.

Op-name families tell whether GEMMs and attention kernels have device kernels. They cannot tell
whether a *layer* runs on one: HF's RMSNorm is written as pow/mean/rsqrt/mul, each of which is a
generic elementwise op. `LayerOps` therefore also attributes the ops of a forward pass to the
innermost module that issued them (forward hooks; a module's own ops exclude its children's) and
classes them by layer: norm layers, attention cores, linear/expert GEMMs, and the rest.
"""

import re
from collections import defaultdict

import torch

import torch_biren

KINDS = ("triton", "native", "fallback", "copy")

_GEMM = re.compile(r"^aten::(mm|addmm|bmm|baddbmm|addbmm|linear|matmul|_grouped_mm|grouped_mm)(\.|$)")
_ATTN = re.compile(r"scaled_dot_product|flash_attention|efficient_attention|_fused_sdp|cudnn_attention")
_NORM = re.compile(r"rms_norm|layer_norm|group_norm|batch_norm")
_SOFTMAX = re.compile(r"^aten::_?softmax|^aten::_softmax_backward")


def family(op):
    """gemm | attention | norm | copy | other, from the op's name."""
    if op.startswith("Memcpy"):
        return "copy"
    if _GEMM.search(op):
        return "gemm"
    if _ATTN.search(op):
        return "attention"
    if _NORM.search(op):
        return "norm"
    return "other"


def diff(after, before):
    """op_counts() after minus before: {op: {kind: n}} without zeros."""
    out = {}
    for op, kinds in after.items():
        d = {k: n - before.get(op, {}).get(k, 0) for k, n in kinds.items()}
        d = {k: n for k, n in d.items() if n}
        if d:
            out[op] = d
    return out


def add(into, counts):
    for op, kinds in counts.items():
        slot = into.setdefault(op, {})
        for k, n in kinds.items():
            slot[k] = slot.get(k, 0) + n
    return into


def by_kind(counts):
    """{kind: calls} over all ops."""
    out = dict.fromkeys(KINDS, 0)
    for kinds in counts.values():
        for k, n in kinds.items():
            out[k] = out.get(k, 0) + n
    return out


def by_family(counts):
    """{family: {kind: calls}} and the ops of each family that ran through the fallback."""
    fam = defaultdict(lambda: dict.fromkeys(KINDS, 0))
    fallback = defaultdict(dict)
    for op, kinds in counts.items():
        f = family(op)
        for k, n in kinds.items():
            fam[f][k] = fam[f].get(k, 0) + n
        if kinds.get("fallback"):
            fallback[f][op] = kinds["fallback"]
    return dict(fam), dict(fallback)


def _layer_class(module):
    name = type(module).__name__
    if name.endswith(("RMSNorm", "LayerNorm")) or name.endswith("Norm"):
        return "norm"
    if name.endswith("Attention"):
        return "attention"
    if name.endswith("Experts"):
        return "experts"
    if isinstance(module, torch.nn.Linear):
        return "linear"
    return "other"


def _op_layer(layer, op):
    """The layer class an op belongs to, given the class of the module that issued it."""
    if layer == "attention":  # the core (scores, softmax, P@V) vs rope, cache and mask work
        return "attention" if (_GEMM.search(op) or _ATTN.search(op) or _SOFTMAX.search(op)) else "attention-other"
    if layer == "experts":  # expert modules also gather, scatter and weigh tokens
        return "linear" if _GEMM.search(op) else "moe-dispatch"
    if layer == "other" and _GEMM.search(op):
        return "linear"
    return layer


class LayerOps:
    """Forward hooks attributing biren ops to layer classes while active:

        with LayerOps(model) as lo:
            model(x)
        lo.layers  -> {layer class: {op: {kind: n}}}
    """

    def __init__(self, model):
        self.model = model
        self.layers = {}
        self._stack = []
        self._handles = []

    def _pre(self, module, args):
        self._stack.append([torch_biren.op_counts(), {}])

    def _post(self, module, args, out):
        before, children = self._stack.pop()
        total = diff(torch_biren.op_counts(), before)
        own = diff(total, children)
        layer = _layer_class(module)
        for op, kinds in own.items():
            add(self.layers.setdefault(_op_layer(layer, op), {}), {op: kinds})
        if self._stack:
            add(self._stack[-1][1], total)

    def __enter__(self):
        for m in self.model.modules():
            self._handles.append(m.register_forward_pre_hook(self._pre))
            self._handles.append(m.register_forward_hook(self._post))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._stack.clear()

    def summary(self):
        """{layer class: {kind: calls, 'fallback_ops': {op: calls}}}."""
        out = {}
        for layer, counts in sorted(self.layers.items()):
            row = by_kind(counts)
            row["fallback_ops"] = {op: k["fallback"] for op, k in sorted(counts.items()) if k.get("fallback")}
            out[layer] = row
        return out
