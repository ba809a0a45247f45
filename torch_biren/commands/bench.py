"""Benchmarks of the simulated hardware, printed like the vendor tools print them.

    python -m torch_biren bench collectives                      # 8 x BR166 in one server
    python -m torch_biren bench collectives --cards 64 --network roce-400
    python -m torch_biren bench collectives --chip H100 --op all_reduce --min-bytes 1M --max-bytes 8G

`collectives` prints nccl-tests' columns for each collective over a range of sizes: size, element
count, time, algorithm bandwidth (size / time) and bus bandwidth (algbw x the collective's factor,
comparable with the link speed), from the same alpha-beta model the bccl backend charges
(torch_biren.sim.collectives). Sizes follow nccl-tests: the per-rank buffer for all_reduce,
broadcast, reduce and all_to_all; the whole gathered buffer for all_gather and reduce_scatter.
"""

HELP = "benchmark the simulated hardware (collectives: nccl-tests-style bus bandwidth)"

KINDS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "reduce", "all_to_all", "send_recv")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def add_arguments(p):
    p.add_argument("what", choices=["collectives"], help="what to benchmark")
    p.add_argument("--chip", default=None, help="chip name or spec file (default: the process's, BR166)")
    p.add_argument("--cards", type=int, default=8, help="cards taking part (default 8, one server)")
    p.add_argument("--cards-per-server", type=int, default=8, help="cards per server (default 8)")
    p.add_argument("--network", default=None,
                   help="inter-server network: roce-100/200/400, ib-200/400, supernode-N or bytes/s per card "
                        "(default: the chip's usual one)")
    p.add_argument("--op", action="append", choices=KINDS, help="collective(s) to show (default: all)")
    p.add_argument("--min-bytes", default="8", help="smallest size (e.g. 8, 1K, 4M; default 8)")
    p.add_argument("--max-bytes", default="8G", help="largest size (default 8G)")
    p.add_argument("--factor", type=int, default=4, help="size step factor (default 4)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="element type for the count column (default float32)")


def _bytes(s):
    from ..cli import UsageError

    s = str(s).strip().upper().removesuffix("B")
    unit = s[-1:] if s[-1:] in _UNITS and s[-1:] != "" else ""
    try:
        n = int(float(s[: len(s) - len(unit)]) * _UNITS[unit])
    except ValueError:
        raise UsageError(f"not a size: {s!r} (examples: 8, 64K, 4M, 1G)") from None
    if n < 0:
        raise UsageError(f"size must be >= 0, got {s!r}")
    return n


def _fmt(ns):
    us = ns / 1e3
    return f"{us:10.1f}" if us < 1e6 else f"{us:10.3g}"


def run(args):
    from ..cli import UsageError
    from ..sim import collectives as cm
    from .adapt import check_chip

    check_chip(args.chip)
    lo, hi = _bytes(args.min_bytes), _bytes(args.max_bytes)
    if lo > hi:
        raise UsageError(f"--min-bytes ({args.min_bytes}) exceeds --max-bytes ({args.max_bytes})")
    if args.factor < 2:
        raise UsageError(f"--factor must be at least 2, got {args.factor}")
    try:
        topo = cm.topology(cards=args.cards, chip=args.chip, cards_per_server=args.cards_per_server,
                           network=args.network)
    except ValueError as err:
        raise UsageError(str(err)) from None
    elem = {"float32": 4, "bfloat16": 2, "float16": 2}[args.dtype]
    sizes = []
    s = max(lo, elem)
    while s <= hi:
        sizes.append(s)
        s *= args.factor
    kinds = args.op or list(KINDS)
    n = args.cards
    print(f"# bccl collectives (simulated): {topo.describe()}")
    for a in topo.assumptions:
        print(f"#   assumed: {a}")
    print("# time is one collective on the simulated timeline (alpha-beta model, torch_biren.sim.collectives);"
          " busbw is nccl-tests' bus bandwidth")
    for kind in kinds:
        ranks = 2 if kind == "send_recv" else n
        print(f"#\n# {kind}, {ranks} ranks, {args.dtype}")
        print(f"# {'size':>12} {'count':>12} {'type':>8} {'time(us)':>10} {'algbw(GB/s)':>12} {'busbw(GB/s)':>12}")
        for size in sizes:
            c = cm.collective(kind, size, ranks, topo=topo)
            algbw, busbw = cm.bus_bandwidth(kind, size, ranks, c)
            print(f"  {size:>12} {size // elem:>12} {args.dtype:>8} {_fmt(c.ns)} {algbw:12.2f} {busbw:12.2f}")
        big = cm.collective(kind, sizes[-1], ranks, topo=topo) if sizes else None
        if big is not None:
            print(f"# {kind}: bus bandwidth at {sizes[-1]} bytes {cm.bus_bandwidth(kind, sizes[-1], ranks, big)[1]:.1f} GB/s")
    return 0
