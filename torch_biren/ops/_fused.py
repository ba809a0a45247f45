"""The description of a fused op that the live device and the projection's trace share: the kernel
names it charges, its cost from the tensors' shapes, and the Hugging Face code it stands in for.
Each op file defines its own (ops/rms_norm.py RMS_NORM, ops/swiglu.py SWIGLU, ...); ops/hf.py and
torch_biren/projection/trace.py read them, so neither restates an op."""

from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class FusedOp:
    name: str  # the forward kernel on the timeline
    backward_name: str  # the backward kernel
    cost: Callable  # (*tensors, chip=None) -> sim.costs.Cost of the forward; reads shapes and dtypes only
    backward_cost: Callable  # the same for the backward
    replaces: Optional[Callable] = None  # module -> True for the HF modules whose forward the op takes over
    families: tuple = ()  # HF model types whose module-level function the op takes over (RoPE)
