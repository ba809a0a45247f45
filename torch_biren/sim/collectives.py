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
the fraction of link bandwidth NCCL's Simple protocol reaches in nccl-tests, since no alpha-beta
model reaches line rate. Each collective runs under the faster of two protocols, as NCCL picks one
per size (the chip file's collective_protocols): Simple, with a per-step latency a that holds its
pipeline fill, and LL, whose flags halve the payload of each line (a fraction ll_share of Simple's
bandwidth) and whose per-step latency is a few times smaller. Inside one server "auto" is the ring:
NCCL's tree is a chain within a node, never faster than the ring there.
Under NUMA or SVI a rank is a die or an instance with its share of the card links; a group within
one card runs over the die link instead (B = its share of one direction, die_link_Bps / 2).
A group spanning servers runs hierarchically: within each server over the card links, across servers
over each card's own NIC on 1/g of the data (g = the group's ranks per server), e.g. all_reduce =
intra reduce-scatter + inter all_reduce on S/g + intra all-gather. The bus-bandwidth factors are
nccl-tests': 2(n-1)/n for all_reduce, (n-1)/n for all_gather, reduce_scatter and all_to_all, 1 for
the rest.

The chip files give the efficiency, the protocol latencies (A100's are fitted to nccl-tests runs in
benchmarks/calibrate.py; chips without them take A100's) and the default inter-server network; the
NIC presets and the latency across servers are parameters with stated defaults; `topo.assumptions`
lists the inferred ones.
"""

import functools
import math
from dataclasses import dataclass, field, replace

from .chip import Chip, current_chip, load_chip
from .costs import Cost

KINDS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "reduce", "all_to_all", "send_recv", "gather",
         "scatter", "barrier")  # fmt: skip
ALGORITHMS = ("auto", "ring", "tree")

FIT_CHIP = "A100"  # chip files without collective_efficiency or collective_protocols take its fit

# Inter-server networks: per-card NIC bandwidth each way (line rate; the efficiency factor applies).
NETWORKS = {
    "roce-100": 12.5e9, "roce-200": 25e9, "roce-400": 50e9,
    "ib-200": 25e9, "ib-400": 50e9,
}  # fmt: skip
DEFAULT_NETWORK = "roce-200"  # for chip files without a network
INTER_ALPHA_NS = 6000.0  # per step across servers (RDMA round trip plus NIC latency)


@dataclass(frozen=True)
class Topology:
    """Cards of one chip in servers: intra-server links per card each way (intra_Bps, intra_alpha_ns:
    the Simple protocol's per-step latency), one NIC per card across servers (inter_Bps,
    inter_alpha_ns); efficiency scales both bandwidths. The LL protocol steps in ll_alpha_ns within a
    server at ll_share of the Simple protocol's bandwidth."""

    chip: Chip = field(repr=False)
    cards: int = 8
    cards_per_server: int = 8
    intra_Bps: float = 0.0
    intra_alpha_ns: float = 0.0
    inter_Bps: float = 0.0
    inter_alpha_ns: float = INTER_ALPHA_NS
    efficiency: float = 1.0
    ll_alpha_ns: float = 0.0
    ll_share: float = 1.0
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


@functools.lru_cache(maxsize=None)
def _fit_entry(name):
    """FIT_CHIP's value of spec entry `name`: the stand-in for chip files without one."""
    return load_chip(FIT_CHIP).spec[name].value


def _chip_entry(chip, name, assumptions, describe):
    """The chip's spec entry `name`, else FIT_CHIP's; an inferred or borrowed one is named in assumptions
    (describe: value -> what it is)."""
    q = chip.spec.get(name)
    if q is None:
        value = _fit_entry(name)
        assumptions.append(f"{describe(value)}: {FIT_CHIP}'s nccl-tests fit (no {chip.name} measurement)")
        return value
    if q.label == "I":
        assumptions.append(f"{describe(q.value)}: {q.source}")
    return q.value


def _protocols(p):
    return (f"collective protocols: Simple {p['simple_step_ns'] / 1e3:g} us, LL {p['ll_step_ns'] / 1e3:g} us per "
            f"step, LL at {p['ll_share']:g} of Simple's bandwidth")


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
    NIC for NVIDIA chips, roce-200 for others (an assumption). efficiency, intra_alpha_ns: override the
    Simple protocol's fraction of link bandwidth and per-step latency in a server (LL keeps the chip's
    step and its share of Simple's bandwidth); inter_alpha_ns: the per-step latency across servers."""
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
        efficiency = _chip_entry(chip, "collective_efficiency", assumptions,
                                 lambda e: f"collective efficiency {e:.0%} of link bandwidth")
    protocols = _chip_entry(chip, "collective_protocols", assumptions, _protocols)
    if intra_alpha_ns is None:
        intra_alpha_ns = protocols["simple_step_ns"]
    if inter_alpha_ns is None:
        assumptions.append(f"per-step latency {INTER_ALPHA_NS / 1e3:g} us across servers (a parameter)")
    return Topology(
        chip=chip, cards=cards, cards_per_server=cards_per_server, intra_Bps=chip.card_link_Bps,
        intra_alpha_ns=float(intra_alpha_ns), inter_Bps=inter,
        inter_alpha_ns=INTER_ALPHA_NS if inter_alpha_ns is None else float(inter_alpha_ns),
        efficiency=float(efficiency), ll_alpha_ns=float(protocols["ll_step_ns"]),
        ll_share=float(protocols["ll_share"]), card_devices=chip.instances, die_Bps=chip.die_link_Bps / 2,
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


def _body(kind, S, ranks, g, topo, algorithm, ai, share):
    """ns on the links of one collective under one protocol: per-step latency ai within a server,
    bandwidths at share of the Simple protocol's; g of the group's ranks per server."""
    m = -(-ranks // g)  # servers the group spans
    bi, be = topo.intra_Bps * topo.efficiency * share, topo.inter_Bps * topo.efficiency * share
    ae = topo.inter_alpha_ns
    inside = "ring" if algorithm == "auto" else algorithm  # NCCL's tree is a chain within a node
    if m == 1 and topo.die_Bps and ranks <= topo.card_devices:  # the dies (instances) of one card
        return _flat(kind, S, ranks, ai, topo.die_Bps * topo.efficiency * share, inside)
    if m == 1:
        return _flat(kind, S, ranks, ai, bi, inside)
    if g == 1:
        return _flat(kind, S, ranks, ae, be, algorithm)
    if kind == "all_reduce":
        return 2 * _flat("reduce_scatter", S, g, ai, bi, "ring") + _flat("all_reduce", S / g, m, ae, be, algorithm)
    if kind in ("all_gather", "reduce_scatter"):
        # Across servers on 1/g of the buffer per card, then within the server on the whole buffer.
        return _flat(kind, S / g, m, ae, be, "ring") + _flat(kind, S, g, ai, bi, "ring")
    if kind in ("all_to_all", "gather", "scatter"):
        # The part bound for other servers leaves over each card's NIC; the rest stays on the links.
        inter = S * (ranks - g) / ranks
        return max((m - 1) * ae + inter / be * 1e9, _flat(kind, S * g / ranks, g, ai, bi, "ring"))
    if kind in ("broadcast", "reduce"):
        return _flat(kind, S, m, ae, be, algorithm) + _flat(kind, S, g, ai, bi, inside)
    if kind == "send_recv":
        return ae + S / be * 1e9
    return _flat("barrier", 0, g, ai, bi, inside) + _flat("barrier", 0, m, ae, be, algorithm)


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
    body = 0.0
    if ranks > 1:  # NCCL picks the faster protocol for the size
        body = min(_body(kind, float(nbytes), ranks, g, topo, algorithm, topo.intra_alpha_ns, 1.0),
                   _body(kind, float(nbytes), ranks, g, topo, algorithm, topo.ll_alpha_ns, topo.ll_share))
    launch = topo.chip.launch_ns
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
