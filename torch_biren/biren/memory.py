"""Device memory: statistics and limits of the simulated card, in torch.cuda's vocabulary."""

import torch

from .. import _C
from .device import _index
from .memory_snapshot import _attach_out_of_memory_observer, _dump_snapshot, _record_memory_history, _snapshot  # noqa: F401


def memory_stats(device=None):
    """CUDA-format allocator statistics ("allocated_bytes.all.current", ...)."""
    _C._lazy_init()
    return torch.accelerator.memory_stats(_index(device))


def _stat(device, key):
    return memory_stats(device).get(key, 0)


def memory_allocated(device=None):
    return _stat(device, "allocated_bytes.all.current")


def max_memory_allocated(device=None):
    return _stat(device, "allocated_bytes.all.peak")


def memory_reserved(device=None):
    return _stat(device, "reserved_bytes.all.current")


def max_memory_reserved(device=None):
    return _stat(device, "reserved_bytes.all.peak")


def reset_peak_memory_stats(device=None):
    torch.accelerator.reset_peak_memory_stats(_index(device))


def reset_accumulated_memory_stats(device=None):
    torch.accelerator.reset_accumulated_memory_stats(_index(device))


def empty_cache():
    """Returns cached, unused blocks of every device to the host."""
    _C._empty_cache(-1)


def mem_get_info(device=None):
    """(free, total) bytes of the card: capacity minus what this process has reserved."""
    return tuple(_C._mem_get_info(_index(device)))


def set_per_process_memory_fraction(fraction, device=None):
    if not isinstance(fraction, float):
        raise TypeError("Invalid type for fraction argument, must be `float`")
    if not 0 <= fraction <= 1:
        raise ValueError(f"Invalid fraction value: {fraction}. Allowed range: 0~1")
    _C._set_memory_fraction(fraction, _index(device))


def _fmt(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024


def memory_summary(device=None, abbreviated=False):
    """A printable table of the allocator's statistics, in the layout torch.cuda.memory_summary uses."""
    idx = _index(device)
    s = memory_stats(idx)
    rows = [
        ("Allocated memory", "allocated_bytes", True),
        ("Active memory", "active_bytes", True),
        ("Requested memory", "requested_bytes", True),
        ("Reserved memory", "reserved_bytes", True),
        ("Allocations", "allocation", False),
        ("Active allocs", "active", False),
        ("Device reserved segments", "segment", False),
    ]
    pools = ("all",) if abbreviated else ("all", "large_pool", "small_pool")
    width = 87
    lines = ["=" * width, f"|{'PyTorch biren memory summary, device ID ' + str(idx):^{width - 2}}|", "-" * width]
    free, total = mem_get_info(idx)
    lines.append(f"| {'capacity ' + _fmt(total) + ', free ' + _fmt(free):<{width - 4}} |")
    lines.append("-" * width)
    lines.append(f"| {'Metric':<32} | {'Cur Usage':>10} | {'Peak Usage':>10} | {'Tot Alloc':>10} | {'Tot Freed':>10} |")
    lines.append("-" * width)
    for title, key, is_bytes in rows:
        for pool in pools:
            fmt = _fmt if is_bytes else str
            vals = [s.get(f"{key}.{pool}.{m}", 0) for m in ("current", "peak", "allocated", "freed")]
            label = title if pool == "all" else f"  from {pool.replace('_pool', '')} pool"
            lines.append(f"| {label:<32} | " + " | ".join(f"{fmt(v):>10}" for v in vals) + " |")
        lines.append("-" * width)
    lines.append(f"| {'Allocation retries':<32} | {s.get('num_alloc_retries', 0):>10} | {'':>10} | {'':>10} | {'':>10} |")
    lines.append(f"| {'Out-of-memory errors':<32} | {s.get('num_ooms', 0):>10} | {'':>10} | {'':>10} | {'':>10} |")
    lines.append("=" * width)
    return "\n".join(lines) + "\n"
