"""What both accuracy modes share: which module is running, and moving op arguments to the CPU."""

import torch
from torch.utils._pytree import tree_map


class ModulePath:
    """The dotted path of the innermost module running now (names from `model` when given, else
    class names), kept by global forward hooks while active."""

    def __init__(self, model=None):
        self.names = {id(m): n for n, m in model.named_modules()} if model is not None else {}
        self.stack = []
        self.handles = []

    def __enter__(self):
        def pre(mod, args):
            self.stack.append(self.names[id(mod)] if id(mod) in self.names else type(mod).__name__)

        def post(mod, args, out):
            if self.stack:
                self.stack.pop()

        self.handles = [torch.nn.modules.module.register_module_forward_pre_hook(pre),
                        torch.nn.modules.module.register_module_forward_hook(post, always_call=True)]  # fmt: skip
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        self.stack.clear()

    def current(self):
        if not self.stack:
            return "(no module)"
        if self.names:  # qualified names already nest; the innermost says it all
            return self.stack[-1] or "(root)"
        return ".".join(self.stack)


def is_biren(t):
    return isinstance(t, torch.Tensor) and t.device.type == "biren"


def host_copy(t):
    """A CPU copy of a biren tensor, read through a zero-copy view so that the device's simulated
    clock is not charged for the check."""
    from .. import _C

    if is_biren(t):
        return _C._cpu_view(t).clone()
    return t.clone() if isinstance(t, torch.Tensor) else t


def to_cpu_args(args, kwargs):
    def conv(x):
        if isinstance(x, torch.Tensor):
            return host_copy(x)
        if isinstance(x, torch.device) and x.type == "biren":
            return torch.device("cpu")
        return x

    kwargs = dict(kwargs)
    if isinstance(kwargs.get("device"), (str, torch.device)) and torch.device(kwargs["device"]).type == "biren":
        kwargs["device"] = torch.device("cpu")
    return tree_map(conv, args), tree_map(conv, kwargs)


def describe(args):
    """'f32[2, 8], bf16[8, 8], 3' for an op's arguments."""
    out = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append(f"{str(a.dtype).replace('torch.', '')}{list(a.shape)}")
        elif isinstance(a, (list, tuple)) and a and all(isinstance(x, torch.Tensor) for x in a):
            out.append("[" + ", ".join(describe(a)) + "]")
        else:
            out.append(repr(a))
    return ", ".join(out)


def tensors(x):
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for e in x for t in tensors(e)]
    return []
