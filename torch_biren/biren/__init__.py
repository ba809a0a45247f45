"""torch.biren: the torch.cuda-style API of the simulated Biren device."""

import torch

from .. import _C
from .device import (
    _is_in_bad_fork,
    _lazy_init,
    current_device,
    device,
    device_count,
    device_of,
    get_device_capability,
    get_device_name,
    get_device_properties,
    init,
    is_available,
    is_bf16_supported,
    is_initialized,
    set_device,
    synchronize,
)
from .memory import (
    empty_cache,
    max_memory_allocated,
    max_memory_reserved,
    mem_get_info,
    memory_allocated,
    memory_reserved,
    memory_stats,
    memory_summary,
    reset_accumulated_memory_stats,
    reset_peak_memory_stats,
    set_per_process_memory_fraction,
)
from .random import (
    get_rng_state,
    get_rng_state_all,
    initial_seed,
    manual_seed,
    manual_seed_all,
    seed,
    seed_all,
    set_rng_state,
    set_rng_state_all,
)
from .streams import Event, Stream, current_stream, default_stream, set_stream, stream
from .graphs import (
    BirenGraph,
    CUDAGraph,
    graph,
    graph_pool_handle,
    is_current_stream_capturing,
    make_graphed_callables,
)
from . import amp


def get_amp_supported_dtype():
    """Dtypes torch.autocast("biren") may cast to (BR1xx: BF16 and FP16 matrix engines)."""
    return [torch.bfloat16, torch.float16]


def __getattr__(name):
    # A property of the module, as on torch.cuda: one default generator per visible device.
    if name == "default_generators":
        from .random import default_generators

        return default_generators()
    raise AttributeError(f"module 'torch.biren' has no attribute '{name}'")


def _get_device_index(device, optional=False):
    from .device import _index

    return _index(device, optional)


__all__ = [name for name in dir() if not name.startswith("_")]
