"""Collective cost model: ring and tree alpha-beta formulas over card-to-card links and the
inter-server network, for the live device (bccl charges collectives with it) and for projections.

    topo = topology(cards=64, chip="BR166", network="roce-200")
    c = collective("all_reduce", 1 << 30, ranks=8, topo=topo)        -> costs.Cost (bound link | launch)
    bus_bandwidth("all_reduce", 1 << 30, 8, c)                       -> (algbw GB/s, busbw GB/s)

nbytes is the buffer size as nccl-tests prints it: the per-rank buffer for all_reduce, broadcast,
reduce, all_to_all and send_recv; the whole gathered buffer (ranks x shard) for all_gather, gather,
reduce_scatter and scatter. With n ranks, per-step latency a and bandwidth B each way per card:

    ring  all_reduce      2(n-1) a + 2(n-1)/n * S / B      (reduce-scatter then all-gather)
          all_gather, reduce_scatter, all_to_all, gather, scatter   (n-1) a + (n-1)/n * S / B
          broadcast, reduce (pipelined chain)                       (n-1) a + S / B
          send_recv                                                  a + S / B
    tree  all_reduce      2 ceil(log2 n) a + 2 S / B       (double binary tree; wins on small sizes)
          broadcast, reduce     ceil(log2 n) a + S / B;  barrier  2 ceil(log2 n) a

B is the link bandwidth times an achieved-efficiency factor (the chip file's collective_efficiency):
the fraction of link bandwidth NCCL reaches in nccl-tests, fitted per system, since no alpha-beta
model reaches line rate.
Under NUMA or SVI a rank is a die or an instance with its share of the card links; a group within
one card runs over the die link instead (B = its share of one direction, die_link_Bps / 2).
A group spanning servers runs hierarchically: within each server over the card links, across servers
over each card's own NIC on 1/g of the data (g = the group's ranks per server), e.g. all_reduce =
intra reduce-scatter + inter all_reduce on S/g + intra all-gather. The bus-bandwidth factors are
nccl-tests': 2(n-1)/n for all_reduce, (n-1)/n for all_gather, reduce_scatter and all_to_all, 1 for
the rest.

The chip files give the efficiency and the default inter-server network; the NIC presets and the
per-step latencies are parameters with stated defaults; `topo.assumptions` lists the inferred ones.
"""

import math
from dataclasses import dataclass, field, replace

from .chip import Chip, current_chip, load_chip
from .costs import Cost

KINDS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "reduce", "all_to_all", "send_recv", "gather",
         "scatter", "barrier")  # fmt: skip
ALGORITHMS = ("auto", "ring", "tree")

# For chip files without collective_efficiency (the bundled ones all give it): the A100 NVLink fit.
DEFAULT_ACHIEVED = (0.68, "I", "no collective measurement in the chip file: the A100 NVLink fit (point-to-point "
                               "links, no in-switch reduction)")

# Inter-server networks: per-card NIC bandwidth each way (line rate; the efficiency factor applies).
NETWORKS = {
    "roce-100": 12.5e9, "roce-200": 25e9, "roce-400": 50e9,
    "ib-200": 25e9, "ib-400": 50e9,
}  # fmt: skip
DEFAULT_NETWORK = "roce-200"  # for chip files without a network
INTRA_ALPHA_NS = 2000.0  # per ring step within a server (NCCL LL/simple protocol latencies are 1-5 us)
INTER_ALPHA_NS = 6000.0  # per step across servers (RDMA round trip plus NIC latency)


@dataclass(frozen=True)
class Topology:
    """Cards of one chip in servers: intra-server links per card each way (intra_Bps, intra_alpha_ns),
    one NIC per card across servers (inter_Bps, inter_alpha_ns); efficiency scales both bandwidths."""

    chip: Chip = field(repr=False)
    cards: int = 8
    cards_per_server: int = 8
    intra_Bps: float = 0.0
    intra_alpha_ns: float = INTRA_ALPHA_NS
    inter_Bps: float = 0.0
    inter_alpha_ns: float = INTER_ALPHA_NS
    efficiency: float = DEFAULT_ACHIEVED[0]
    # Devices per card (NUMA dies, SVI instances) and each one's die-link bandwidth each way: a group
    # on one card runs over the die link, not the card links.
    card_devices: int = 1
    die_Bps: float = 0.0
    name: str = ""
    assumptions: tuple = ()

    @property
    def servers(self):
        return -(-self.cards // self.cards_per_server)

    def describe(self):
        net = f", {self.servers} servers over {self.inter_Bps / 1e9:.1f} GB/s per card" if self.servers > 1 else ""
        return (f"{self.cards} x {self.chip.name}, {self.cards_per_server} per server over "
                f"{self.intra_Bps / 1e9:.0f} GB/s card links{net}, achieved {self.efficiency:.0%} of link")


def _positive_int(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return v


def topology(cards=8, chip=None, cards_per_server=8, network=None, efficiency=None, intra_alpha_ns=None,
             inter_alpha_ns=None):
    """A cluster of `cards` cards of `chip` (name, path or Chip; default current_chip()).

    network: inter-server NIC per card: a preset (roce-100/200/400, ib-200/400), bytes/s each way (a
    number or a numeric string), or
    'supernode-N' (an optical supernode: N cards joined by the card links as if in one server, an
    assumption about Biren's optical interconnect, not a published figure). Default: the vendor's DGX
    NIC for NVIDIA chips, roce-200 for others (an assumption)."""
    chip = current_chip() if chip is None else chip if isinstance(chip, Chip) else load_chip(chip)
    _positive_int("cards", cards)
    _positive_int("cards_per_server", cards_per_server)
    assumptions = []
    name = network
    default_network = chip.spec.get("network")
    if network is None:
        network = default_network.value if default_network else DEFAULT_NETWORK
        name = network
        if default_network is None or default_network.label == "I":
            assumptions.append(f"inter-server network {network} (one NIC per card; no public figure for "
                               f"{chip.name} clusters)")
    if isinstance(network, str) and network.startswith("supernode-"):
        try:
            cards_per_server = _positive_int("supernode size", int(network.split("-", 1)[1]))
        except ValueError:
            raise ValueError(f"network {network!r}: expected supernode-N with N a positive integer") from None
        assumptions.append(f"optical supernode of {cards_per_server} cards at full card-link bandwidth "
                           "(assumed; no public figure)")
        network = default_network.value if default_network else DEFAULT_NETWORK
    if isinstance(network, str) and network in NETWORKS:
        inter = NETWORKS[network]
    else:
        try:  # bytes/s, also as a string (command lines, TORCH_BIREN_NETWORK)
            inter = float(network)
        except ValueError:
            raise ValueError(f"unknown network {network!r}; known: {', '.join(NETWORKS)}, supernode-N, or bytes/s"
                             ) from None
        if not inter > 0:
            raise ValueError(f"network bandwidth must be positive, got {network!r}")
        name = f"{inter / 1e9:g} GB/s"
    cards_per_server = min(cards_per_server, cards)
    if efficiency is None:
        q = chip.spec.get("collective_efficiency")
        efficiency, label, source = (q.value, q.label, q.source) if q else DEFAULT_ACHIEVED
        if label == "I":
            assumptions.append(f"collective efficiency {efficiency:.0%} of link bandwidth: {source}")
    if intra_alpha_ns is None:
        assumptions.append(f"per-step latency {INTRA_ALPHA_NS / 1e3:g} us in a server, {INTER_ALPHA_NS / 1e3:g} us "
                           "across servers")
    return Topology(
        chip=chip, cards=cards, cards_per_server=cards_per_server, intra_Bps=chip.card_link_Bps,
        intra_alpha_ns=INTRA_ALPHA_NS if intra_alpha_ns is None else float(intra_alpha_ns), inter_Bps=inter,
        inter_alpha_ns=INTER_ALPHA_NS if inter_alpha_ns is None else float(inter_alpha_ns),
        efficiency=float(efficiency), card_devices=chip.instances, die_Bps=chip.die_link_Bps / 2,
        name=f"{cards}x{chip.name} ({name})", assumptions=tuple(assumptions),
    )  # fmt: skip


def _log2(n):
    return math.ceil(math.log2(n)) if n > 1 else 0


def _flat(kind, S, n, alpha, bw, algorithm):
    """Seconds*1e9 of one collective among n ranks on links of bandwidth bw (bytes/s) and latency alpha."""
    if n <= 1:
        return 0.0
    t = S / bw * 1e9
    f = (n - 1) / n
    ring = {
        "all_reduce": 2 * (n - 1) * alpha + 2 * f * t,
        "all_gather": (n - 1) * alpha + f * t,
        "reduce_scatter": (n - 1) * alpha + f * t,
        "all_to_all": (n - 1) * alpha + f * t,
        "gather": (n - 1) * alpha + f * t,
        "scatter": (n - 1) * alpha + f * t,
        "broadcast": (n - 1) * alpha + t,
        "reduce": (n - 1) * alpha + t,
        "send_recv": alpha + t,
        "barrier": 2 * (n - 1) * alpha,
    }[kind]
    tree = {
        "all_reduce": 2 * _log2(n) * alpha + 2 * t,
        "broadcast": _log2(n) * alpha + t,
        "reduce": _log2(n) * alpha + t,
        "barrier": 2 * _log2(n) * alpha,
    }.get(kind)
    if algorithm == "ring" or tree is None:
        return ring
    if algorithm == "tree":
        return tree
    return min(ring, tree)


def collective(kind, nbytes, ranks, topo=None, algorithm="auto", ranks_per_server=None):
    """Cost of one collective over `ranks` ranks (see the module doc for nbytes and the formulas).

    ranks_per_server: how many of the group's ranks share a server (default: as many as fit, i.e.
    consecutive ranks); 1 for a data-parallel group whose other ranks hold tensor-parallel peers."""
    if kind not in KINDS:
        raise ValueError(f"unknown collective {kind!r}; known: {', '.join(KINDS)}")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    _positive_int("ranks", ranks)
    if nbytes < 0:
        raise ValueError(f"nbytes must be >= 0, got {nbytes!r}")
    topo = topo or topology(cards=max(ranks, 8))
    if ranks > topo.cards:
        raise ValueError(f"{ranks} ranks do not fit on {topo.cards} cards")
    g = ranks_per_server or min(ranks, topo.cards_per_server)
    g = max(1, min(g, ranks, topo.cards_per_server))
    m = -(-ranks // g)  # servers the group spans
    S = float(nbytes)
    bi, be = topo.intra_Bps * topo.efficiency, topo.inter_Bps * topo.efficiency
    ai, ae = topo.intra_alpha_ns, topo.inter_alpha_ns
    if m == 1 and topo.die_Bps and ranks <= topo.card_devices:  # the dies (instances) of one card
        body = _flat(kind, S, ranks, ai, topo.die_Bps * topo.efficiency, algorithm)
    elif m == 1:
        body = _flat(kind, S, ranks, ai, bi, algorithm)
    elif g == 1:
        body = _flat(kind, S, ranks, ae, be, algorithm)
    elif kind == "all_reduce":
        body = (2 * _flat("reduce_scatter", S, g, ai, bi, "ring") + _flat("all_reduce", S / g, m, ae, be, algorithm))
    elif kind in ("all_gather", "reduce_scatter"):
        # Across servers on 1/g of the buffer per card, then within the server on the whole buffer.
        body = _flat(kind, S / g, m, ae, be, "ring") + _flat(kind, S, g, ai, bi, "ring")
    elif kind in ("all_to_all", "gather", "scatter"):
        # The part bound for other servers leaves over each card's NIC; the rest stays on the links.
        inter = S * (ranks - g) / ranks
        body = max((m - 1) * ae + inter / be * 1e9, _flat(kind, S * g / ranks, g, ai, bi, "ring"))
    elif kind in ("broadcast", "reduce"):
        body = _flat(kind, S, m, ae, be, algorithm) + _flat(kind, S, g, ai, bi, algorithm)
    elif kind == "send_recv":
        body = ae + S / be * 1e9
    else:  # barrier
        body = _flat("barrier", 0, g, ai, bi, algorithm) + _flat("barrier", 0, m, ae, be, algorithm)
    launch = topo.chip.launch_ns
    if ranks <= 1:
        body = 0.0
    bound = "link" if body > launch else "launch"
    return Cost(0.0, float(nbytes), body + launch, bound, 0.0, 0.0, body)


BUS_FACTOR = {"all_reduce": lambda n: 2 * (n - 1) / n, "all_gather": lambda n: (n - 1) / n,
              "reduce_scatter": lambda n: (n - 1) / n, "all_to_all": lambda n: (n - 1) / n}  # fmt: skip


def bus_bandwidth(kind, nbytes, ranks, cost):
    """(algbw, busbw) in GB/s as nccl-tests reports them: algbw = nbytes / time, busbw = algbw x
    the kind's factor (2(n-1)/n all_reduce; (n-1)/n all_gather, reduce_scatter, all_to_all; else 1)."""
    if kind not in KINDS:
        raise ValueError(f"unknown collective {kind!r}; known: {', '.join(KINDS)}")
    ns = cost.ns if isinstance(cost, Cost) else float(cost)
    algbw = nbytes / ns if ns > 0 else 0.0  # bytes per ns = GB/s
    factor = BUS_FACTOR.get(kind, lambda n: 1.0)(ranks) if kind != "barrier" else 0.0
    return algbw, algbw * factor


def with_efficiency(topo, efficiency):
    """The topology with another achieved-efficiency factor (e.g. 1.0 for line-rate figures)."""
    return replace(topo, efficiency=float(efficiency))
