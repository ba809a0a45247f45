"""Projection of full-size models on clusters of cards, without allocating their memory: the model
traced on the meta device into the kernels the live biren device would charge (trace.py), priced by
the device model (torch_biren.sim), with the parallel plan, communication, memory and a report.
Above torch_biren.ops (whose fused-op descriptions the trace shares) and torch_biren.adapt (the zoo).

    from torch_biren.projection import project
    print(project("qwen2.5-72b", cards=64, batch=512, seq=4096, tp=8, pp=4).report())
"""

from .models import model_names, resolve
from .plan import Plan, ProjectionError
from .project import MODES, project
from .report import Result

__all__ = ["project", "ProjectionError", "Plan", "Result", "MODES", "model_names", "resolve"]
