"""torch_biren.profiler.profile(): every device op of a block with its simulated start, duration,
FLOPs, bytes, achieved throughput, limiting resource and kernel kind; table(), Chrome trace,
roofline PNG. torch.profiler.record_function ranges appear in the trace."""

from .sim.profiler import Profile, profile

__all__ = ["profile", "Profile"]
