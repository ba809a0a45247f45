"""Inductor for biren: torch.compile fuses a biren graph's pointwise and reduction ops into Triton
kernels that run on the device's memory and are charged by the device model; GEMMs, convolutions
and attention stay extern calls (aten ops on biren, the project's own kernels).

backend.py registers the device with Inductor (its scheduling, wrapper code and device ops);
launcher.py loads each generated kernel and launches it on zero-copy views of device memory;
cost.py charges it from the bytes it moves and the vector operations of its body."""

from .backend import CONFIG, install

__all__ = ["CONFIG", "install"]
