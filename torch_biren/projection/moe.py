"""Mixture-of-experts layers as they train: expert-parallel dispatch and combine, the routed
experts' grouped GEMMs at per-expert token counts, shared experts, load imbalance and overlap.

One MoE layer, one micro-batch, the busiest card of an expert-parallel group of `ep` cards:

- Volume. A card routes T tokens to k experts each: R = T x k rows of `hidden` elements. Spread
  evenly over the group, (ep - 1)/ep of them leave the card. With g of the group's cards in a
  server and N = ceil(ep / g) servers, (ep - g)/ep of the rows cross the network and (g - 1)/ep stay
  on the card links (sim/collectives.py's hierarchical all-to-all).
- Node-limited routing (DeepSeek-V3, arXiv 2412.19437 sec. 2.1.2): each token goes to at most M
  servers, and crosses the network once per server however many of its experts sit there (the
  server's card that receives it forwards it over the card links). With its k experts spread
  evenly over m = min(M, N) servers a token reaches D = m (1 - (1 - 1/m)^k) servers on average,
  D (N - 1)/N of them remote: network rows T x D (N - 1)/N instead of R (ep - g)/ep; card-link
  rows (direct plus forwarded) R (g - 1)/g. The two run concurrently (forwarding is pipelined
  behind the network transfers), so one all-to-all takes the longer of the two.
- Load imbalance: `imbalance` = the busiest card's rows / the mean (1 = balanced). Its grouped
  GEMMs and the all-to-all it receives scale by it; the step waits for the busiest card.
- Training runs four all-to-alls per MoE layer and micro-batch (dispatch, combine, and their
  gradients), inference two. Dispatch may travel in FP8 (DeepSeek-V3: 1 byte per element) and
  combine in BF16; gradients travel at the combine width.
- Overlap (DualPipe-style, one micro-batch's all-to-all under another's compute): hidden =
  min(communication, the compute it runs under); while overlapping, `comm_units_share` of the
  compute units serve communication, so that compute slows by 1 / (1 - share).
- Grouped GEMMs: each local expert's GEMMs at its own row count (sim/costs.gemm per group, its
  tiles and waves), one launch per grouped GEMM; forward gate/up (n = 2I) and down, backward the
  data and weight gradients of both.

    m = MoE.from_config(hf_config)
    r = layer(m, tokens=4096, ep=64, cards_per_server=8, topo=topology(512, "H800"))
    r.compute_ns, r.comm_ns, r.exposed_ns, r.hidden_ns, r.volumes, r.expert_weight_bytes
"""

from dataclasses import dataclass, field, replace

from ..adapt import flops
from ..sim import collectives, costs, dtypes
from .plan import ProjectionError


@dataclass(frozen=True)
class MoE:
    """The model facts an MoE layer's cost needs."""

    hidden: int
    expert_inter: int  # each routed expert's intermediate size (moe_intermediate_size)
    experts: int  # routed experts
    top_k: int
    shared_experts: int = 0
    shared_inter: int = 0  # each shared expert's intermediate size

    @classmethod
    def from_config(cls, cfg):
        """From an HF config: Qwen2/3-MoE (num_experts; Qwen2-MoE's shared_expert_intermediate_size),
        DeepSeek-V2/V3 (n_routed_experts, n_shared_experts of moe_intermediate_size each) or Mixtral
        (num_local_experts as wide as intermediate_size)."""
        e, k = flops.routed_experts(cfg)
        if not e:
            raise ProjectionError(f"{type(cfg).__name__} has no routed experts (num_experts / n_routed_experts / "
                                  "num_local_experts)")
        inter = flops.expert_width(cfg)
        if not inter:
            raise ProjectionError(f"{type(cfg).__name__}: MoE config without moe_intermediate_size")
        shared = getattr(cfg, "n_shared_experts", None) or 0
        shared_inter = inter if shared else 0
        if not shared and getattr(cfg, "shared_expert_intermediate_size", None):
            shared, shared_inter = 1, cfg.shared_expert_intermediate_size
        return cls(cfg.hidden_size, inter, e, k, shared, shared_inter)


@dataclass(frozen=True)
class Options:
    """How the MoE layer is run. The defaults are the plain case: balanced routing, no node limit,
    no overlap, BF16 on the wire; overlapped, the chip's comm_units_share of its units serve the
    all-to-alls unless comm_units_share says otherwise."""

    imbalance: float = 1.0  # busiest card's rows / mean rows
    node_limit: int = 0  # M: servers a token may reach (0: no limit; DeepSeek-V3: 4)
    overlap: bool = False  # dispatch/combine under the compute of another micro-batch
    comm_units_share: float = None  # compute units serving communication while overlapping (None: the chip's)
    dispatch_bytes: float = 2.0  # per element on the wire (FP8 dispatch: 1)
    combine_bytes: float = 2.0

    def check(self):
        if not self.imbalance >= 1.0:
            raise ProjectionError(f"MoE imbalance is the busiest card's rows over the mean, >= 1; got {self.imbalance}")
        if isinstance(self.node_limit, bool) or not isinstance(self.node_limit, int) or self.node_limit < 0:
            raise ProjectionError(f"MoE node_limit must be a non-negative integer (0: none), got {self.node_limit!r}")
        if self.comm_units_share is not None and not 0.0 <= self.comm_units_share < 1.0:
            raise ProjectionError(f"MoE comm_units_share must be in [0, 1), got {self.comm_units_share}")
        for n in ("dispatch_bytes", "combine_bytes"):
            if not getattr(self, n) > 0:
                raise ProjectionError(f"MoE {n} must be positive, got {getattr(self, n)}")
        return self


# DeepSeek-V3 as its report trains it (arXiv 2412.19437 sec. 3.2): node-limited routing to 4 nodes,
# FP8 dispatch, BF16 combine, DualPipe overlap with 20 of the H800's 132 SMs given to communication.
DEEPSEEK_V3 = Options(node_limit=4, overlap=True, comm_units_share=20 / 132, dispatch_bytes=1.0, combine_bytes=2.0)


@dataclass
class LayerCost:
    """One MoE layer, one micro-batch, on the busiest card (forward + backward when training)."""

    compute_ns: dict  # {"routed experts": ns, "shared experts": ns, "router": ns}
    comm_ns: dict  # {"dispatch": ns, "combine": ns}: all passes
    exposed_ns: float  # communication not hidden under compute
    hidden_ns: float
    slowdown_ns: float  # compute lost to the units serving overlapped communication
    volumes: dict  # bytes one card sends per all-to-all: {"dispatch network": ..., "dispatch card links": ...}
    calls: dict  # all-to-alls per layer and micro-batch: {"dispatch": n, "combine": n}
    rows_per_expert: list  # the busiest card's rows per local expert
    expert_weight_bytes: int  # routed experts' weights on one card (plus the shared experts')
    servers: int  # servers the ep group spans
    per_server: int  # the group's cards in one server
    assumptions: list = field(default_factory=list)
    per_step: dict = field(default_factory=dict)  # set by price_all_to_all: the step's ns

    @property
    def compute_total_ns(self):
        return sum(self.compute_ns.values()) + self.slowdown_ns

    @property
    def comm_total_ns(self):
        return sum(self.comm_ns.values())


def servers_reached(k, servers, node_limit=0):
    """Expected distinct servers a token's k experts sit on, k spread evenly over m = min(M, N)."""
    m = min(node_limit, servers) if node_limit else servers
    if m <= 1:
        return 1.0
    return m * (1.0 - (1.0 - 1.0 / m) ** k)


def dispatch_rows(tokens, k, ep, per_server, node_limit=0):
    """(network rows, card-link rows) one card sends in one dispatch (see the module doc)."""
    g = max(1, min(per_server, ep))
    n = -(-ep // g)
    rows = tokens * k
    if n == 1:
        return 0.0, rows * (ep - 1) / ep
    if not node_limit:
        return rows * (ep - g) / ep, rows * (g - 1) / ep
    d = servers_reached(k, n, node_limit)
    return tokens * d * (n - 1) / n, rows * (g - 1) / g


def all_to_all_ns(net_bytes, link_bytes, servers, per_server, topo, imbalance=1.0):
    """One hierarchical all-to-all: the network part over each card's NIC among `servers` servers,
    the card-link part among `per_server` cards, concurrently; scaled by the busiest card's share;
    plus one launch."""
    net = link = 0.0
    if servers > 1 and net_bytes > 0:  # a buffer whose (N-1)/N leaves is the flat all-to-all's S
        s = net_bytes * servers / (servers - 1)
        net = collectives.collective("all_to_all", s, servers, _servers_topo(topo, servers), ranks_per_server=1).link_ns
    if per_server > 1 and link_bytes > 0:
        s = link_bytes * per_server / (per_server - 1)
        link = collectives.collective("all_to_all", s, per_server, topo, ranks_per_server=per_server).link_ns
    body = max(net, link) * imbalance
    return body + topo.chip.launch_ns if body else 0.0


def _servers_topo(topo, servers):
    # One rank per server on the network: a topology at least that many cards wide.
    return topo if topo.cards >= servers else replace(topo, cards=servers)


def _grouped(chip, shapes, dtype):
    """One grouped GEMM over per-group (m, n, k): the groups' times back to back, one launch."""
    body = sum(max(0.0, costs.gemm(m, n, k, dtype=dtype, chip=chip).ns - chip.launch_ns) for m, n, k in shapes if m)
    return body + chip.launch_ns if body else 0.0


def expert_ns(chip, rows, hidden, inter, dtype="bf16", backward=True):
    """Grouped GEMMs of experts of width `inter` with rows[i] rows each: forward gate/up (n = 2I) and
    down; backward the data gradients and the weight gradients of both."""
    h, i = hidden, inter
    t = _grouped(chip, [(r, 2 * i, h) for r in rows], dtype) + _grouped(chip, [(r, h, i) for r in rows], dtype)
    if backward:
        t += (_grouped(chip, [(r, i, h) for r in rows], dtype) + _grouped(chip, [(h, i, r) for r in rows], dtype)
              + _grouped(chip, [(r, h, 2 * i) for r in rows], dtype) + _grouped(chip, [(2 * i, h, r) for r in rows], dtype))
    return t


def layer(moe, tokens, ep=1, cards_per_server=8, topo=None, chip=None, mode="train", dtype="bf16", options=None,
          tp=1, overlap_window_ns=0.0, rows_per_expert=None):
    """Cost of one MoE layer for one micro-batch of `tokens` tokens on each card (see the module
    doc). overlap_window_ns: the compute an overlapped all-to-all can run under (e.g. the layer's
    attention and experts of another micro-batch). rows_per_expert: the busiest card's rows per
    local expert, to override the balanced count x imbalance."""
    o = (options or Options()).check()
    if isinstance(ep, bool) or not isinstance(ep, int) or ep <= 0 or moe.experts % ep:
        raise ProjectionError(f"ep={ep} must be a positive integer dividing the {moe.experts} experts")
    if topo is None:
        topo = collectives.topology(max(ep * tp, 1), chip, cards_per_server)
    chip = chip or topo.chip
    train = mode == "train"
    k, h = moe.top_k, moe.hidden
    local = moe.experts // ep
    g = max(1, min(ep, cards_per_server // max(1, tp)))
    n = -(-ep // g)
    if rows_per_expert is None:
        # Whole rows dealt as evenly as they go: when there are fewer rows than local experts (small
        # decode batches) some experts get one row and the rest none, rather than all rounding to 0.
        total = int(round(tokens * k / moe.experts * ep * o.imbalance * local))
        q, extra = divmod(total, local)
        rows = rows_per_expert = [q + 1] * extra + [q] * (local - extra)
    elif len(rows_per_expert) != local:
        raise ProjectionError(f"rows_per_expert lists {len(rows_per_expert)} experts; a card holds {local}")
    else:
        rows = [int(round(r)) for r in rows_per_expert]
    compute = {"routed experts": expert_ns(chip, rows, h, moe.expert_inter, dtype, backward=train)}
    if moe.shared_experts:
        s = moe.shared_experts * moe.shared_inter // max(1, tp)
        compute["shared experts"] = expert_ns(chip, [tokens], h, s, dtype, backward=train)
    router = costs.gemm(tokens, moe.experts, h, dtype=dtype, chip=chip).ns
    compute["router"] = router * (3 if train else 1)  # forward, and the data and weight gradients

    net_rows, link_rows = dispatch_rows(tokens, k, ep, g, o.node_limit)
    volumes, comm = {}, {}
    calls = {"dispatch": 2 if train else 1, "combine": 2 if train else 1}
    for what, width in (("dispatch", o.dispatch_bytes), ("combine", o.combine_bytes)):
        net, link = net_rows * h * width, link_rows * h * width
        volumes[f"{what} network"], volumes[f"{what} card links"] = net, link
        once = all_to_all_ns(net, link, n, g, topo, o.imbalance)
        if train:  # the backward pass of each travels at the gradient (combine) width
            grad = all_to_all_ns(net_rows * h * o.combine_bytes, link_rows * h * o.combine_bytes, n, g, topo,
                                 o.imbalance)
            comm[what] = once + grad
        else:
            comm[what] = once
    total = sum(comm.values())
    hidden = slowdown = 0.0
    share = chip.comm_units_share if o.comm_units_share is None else o.comm_units_share
    if o.overlap and total:
        window = overlap_window_ns / (1.0 - share)
        hidden = min(total, window)
        slowdown = (hidden / window) * overlap_window_ns * share / (1.0 - share)
    elt = dtypes.itemsize(dtype)
    weights = local * 3 * h * moe.expert_inter * elt
    if moe.shared_experts:
        weights += 3 * h * moe.shared_experts * moe.shared_inter // max(1, tp) * elt
    notes = [f"MoE: {moe.experts} experts over ep={ep} ({local} per card), top-{k}; the group spans {n} server(s) "
             f"of {g} card(s); "
             + ("routing is balanced" if o.imbalance == 1 else f"routing imbalance {o.imbalance:g}x (busiest card / mean)")
             + (f"; node-limited to {o.node_limit} servers per token" if o.node_limit else "")
             + (f"; dispatch/combine overlapped with compute ({share:.0%} of the units serve it)"
                if o.overlap else "; dispatch/combine not overlapped")]
    return LayerCost(compute, comm, total - hidden, hidden, slowdown, volumes, calls, rows_per_expert, int(weights), n, g,
                     notes)


# -- project(): the traced MoE layer (routing assumed balanced, the routed experts as one GEMM over all
# rows, as the live grouped_mm op charges) corrected by the model above.

TRACED_EXPERTS = "aten::_grouped_mm"
ALL_TO_ALL = "expert-parallel all-to-all"  # communication.py's entry


def applies(name, cfg, options):
    """Full-size MoE models, or any MoE model given options (the tiny ones stay as the live device runs them)."""
    from .models import experts

    return bool(experts(cfg)[0]) and (options is not None or not name.startswith("tiny-"))


def options_from(value):
    if value is None or isinstance(value, Options):
        return value
    if isinstance(value, dict):
        try:
            return Options(**value)
        except TypeError as err:
            raise ProjectionError(f"MoE options: {err}") from None
    raise ProjectionError(f"MoE options must be a projection.moe.Options or a dict, got {type(value).__name__}")


def adjust_layer_costs(lc, cfg, pl, topo, chip, mode, tokens, cards_per_server, dtype, options):
    """(LayerCosts, LayerCost): a copy of `lc` (left as it is) whose traced routed-expert GEMMs of one
    MoE layer (total/fwd/busy["moe"]) are replaced by their per-expert grouped-GEMM time at the
    busiest card's rows, plus the compute slowed by overlapped communication; and the LayerCost,
    whose all-to-alls replace communication.py's."""
    lc = lc.copy()
    o = options or Options()
    m = MoE.from_config(cfg)
    dt = dtypes.key(dtype)
    window = lc.total["moe"]
    cost = layer(m, tokens, pl.ep, cards_per_server, topo, chip, mode, dt, o, pl.tp, overlap_window_ns=window)
    traced = lc.busy["moe"].get(TRACED_EXPERTS, 0.0)
    delta = cost.compute_ns["routed experts"] - traced + cost.slowdown_ns
    lc.total["moe"] += delta
    lc.busy["moe"][TRACED_EXPERTS] = traced + delta
    if mode == "train" and lc.fwd.get("moe"):
        fwd = layer(m, tokens, pl.ep, cards_per_server, topo, chip, "prefill", dt, replace(o, overlap=False), pl.tp)
        lc.fwd["moe"] += fwd.compute_ns["routed experts"] - traced / 3  # the traced forward is 2 of 6 GEMMs' worth
    cost.assumptions.append("MoE routed experts priced per expert at the busiest card's rows (grouped GEMM per "
                            "group); their gather, SwiGLU and combine as traced (balanced)")
    return lc, cost


def price_all_to_all(comm, cost, layers_on_path):
    """communication.py's expert-parallel all-to-all (in the list of Collectives `comm`) priced as the
    dispatch/combine of `layers_on_path` MoE layer passes (micro-batch slots x MoE layers on the
    stage), exposed as far as compute does not hide them; the per-step figures kept on cost."""
    for c in comm:
        if c.name == ALL_TO_ALL:
            c.ns = cost.comm_total_ns * layers_on_path
            c.exposed_ns = cost.exposed_ns * layers_on_path
    cost.per_step = {"dispatch": cost.comm_ns["dispatch"] * layers_on_path, "combine": cost.comm_ns["combine"] *
                     layers_on_path, "exposed": cost.exposed_ns * layers_on_path,
                     "hidden": cost.hidden_ns * layers_on_path}


def describe(cost):
    """One report line: the all-to-alls per step, exposed and hidden, and the volumes per call."""
    from ..sim.profiler import format_time

    s = cost.per_step
    mb = lambda b: f"{b / 1e6:,.1f} MB"  # noqa: E731
    v = cost.volumes
    return (f"MoE all-to-all per step: dispatch {format_time(s.get('dispatch', 0))}, combine {format_time(s.get('combine', 0))}"
            f" ({format_time(s.get('exposed', 0))} exposed, {format_time(s.get('hidden', 0))} hidden); per card and call: dispatch "
            f"{mb(v['dispatch network'])} network + {mb(v['dispatch card links'])} card links, combine "
            f"{mb(v['combine network'])} + {mb(v['combine card links'])}; {cost.servers} server(s) x {cost.per_server} "
            f"card(s) per ep group; expert weights {cost.expert_weight_bytes / 2**30:,.2f} GiB per card per layer")
