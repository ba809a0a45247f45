"""Charging collectives to the simulated timeline: each rank charges its own card's current stream
once per collective, with the time of sim/collectives.py's alpha-beta model (kind "collective",
bound "link"), so the profiler and trace show them as link-bound kernels.

A collective starts when its last rank reaches it: a rank that arrives early also waits the gap
between its stream clock and the latest rank's (the straggler wait a real NCCL kernel spends
spinning).
"""

import os

from .. import _C

# bccl operation -> the cost model's kind and the nccl-tests buffer size (see sim/collectives.py).
# bytes_in/bytes_out: this rank's input/output bytes for the call.
_KIND = {
    "all_reduce": ("all_reduce", lambda i, o, n: i),
    "all_reduce_coalesced": ("all_reduce", lambda i, o, n: i),
    "broadcast": ("broadcast", lambda i, o, n: i),
    "reduce": ("reduce", lambda i, o, n: i),
    "all_gather": ("all_gather", lambda i, o, n: i * n),
    "all_gather_into_tensor": ("all_gather", lambda i, o, n: i * n),
    "all_gather_coalesced": ("all_gather", lambda i, o, n: i * n),
    "all_gather_into_tensor_coalesced": ("all_gather", lambda i, o, n: i * n),
    "reduce_scatter": ("reduce_scatter", lambda i, o, n: o * n),
    "reduce_scatter_tensor": ("reduce_scatter", lambda i, o, n: o * n),
    "reduce_scatter_tensor_coalesced": ("reduce_scatter", lambda i, o, n: o * n),
    "all_to_all": ("all_to_all", lambda i, o, n: max(i, o)),
    "all_to_all_single": ("all_to_all", lambda i, o, n: max(i, o)),
    "gather": ("gather", lambda i, o, n: i * n),
    "scatter": ("scatter", lambda i, o, n: o * n),
    "send": ("send_recv", lambda i, o, n: i),
    "recv": ("send_recv", lambda i, o, n: o),
    "barrier": ("barrier", lambda i, o, n: 0),
}

_memo = {}


class Pricer:
    """Costs for one process group: its size, the ranks per server, the simulated topology."""

    def __init__(self, size, global_ranks, world_size):
        from . import placement

        self.size = size
        per_server = placement.cards_per_server(world_size)
        self.per_server = placement.ranks_per_server(global_ranks, per_server)
        self.cards = max(world_size, size)
        self.server_cards = per_server
        self.network = os.environ.get("TORCH_BIREN_NETWORK") or None

    def cost(self, op, bytes_in, bytes_out, ranks=None):
        """sim.costs.Cost of `op` with this rank's bytes (ranks: 2 for send/recv)."""
        from ..sim import collectives
        from ..sim.chip import current_chip

        kind, size_of = _KIND[op]
        n = ranks or self.size
        nbytes = size_of(bytes_in, bytes_out, self.size)
        chip = current_chip()
        key = (kind, nbytes, n, self.per_server, self.cards, self.server_cards, self.network, id(chip))
        c = _memo.get(key)
        if c is None:
            topo = collectives.topology(cards=self.cards, chip=chip, cards_per_server=self.server_cards,
                                        network=self.network)
            c = collectives.collective(kind, nbytes, n, topo=topo,
                                       ranks_per_server=min(self.per_server, n) if ranks is None else None)
            _memo[key] = c
        return c

    def charge(self, device_index, op, bytes_in, bytes_out, wait_ns=0.0, ranks=None):
        c = self.cost(op, bytes_in, bytes_out, ranks)
        _C._sim_charge(device_index, f"bccl:{op}", "collective", 0.0, c.bytes, c.ns + max(0.0, wait_ns), c.bound
                       if wait_ns <= 0 else "link")
        return c


def stream_clock(device_index):
    """The simulated clock of the device's current stream, in ns."""
    import torch

    s = torch.biren.current_stream(device_index)
    return _C._sim_stream_clock(device_index, s.stream_id)
