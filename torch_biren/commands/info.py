"""The simulated devices, as a vendor's SMI tool shows them: chip, memory in use, compute units,
memory placement mode and SVI partition, plus the chip's peaks (numbers labelled inferred are the
device model's defaults, not published figures; see TORCH_BIREN_CHIP to change them).
"""

HELP = "show the simulated biren devices (like a vendor SMI tool)"

MiB = 2**20


def add_arguments(p):
    p.add_argument("--chip", default=None, help="show this chip instead of the process's (BR166 by default)")


def _row(cells, widths):
    return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"


def run(args):
    import torch

    import torch_biren

    from ..sim.chip import set_chip, current_chip
    from .adapt import check_chip

    if torch_biren.load_error() is not None:
        from ..cli import UsageError

        raise UsageError(f"the biren device did not load: {torch_biren.load_error()}")
    if args.chip:
        check_chip(args.chip)
        set_chip(args.chip)
    chip = current_chip()
    n = torch.biren.device_count()
    head = ["Dev", "Name", "Mode", "SVI", "Memory-Usage", "SPCs", "L2", "Cap"]
    rows = []
    for i in range(n):
        prop = torch.biren.get_device_properties(i)
        free, total = torch.biren.mem_get_info(i)
        used = torch.biren.memory_allocated(i)
        rows.append([str(i), prop.name, prop.memory_mode, f"1/{prop.svi_instances}" if prop.svi_instances > 1 else "-",
                     f"{used // MiB}MiB / {total // MiB}MiB", str(prop.multi_processor_count),
                     f"{prop.L2_cache_size // MiB}MiB", f"{prop.major}.{prop.minor}"])  # fmt: skip
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    title = f"torch_biren {_version()} · PyTorch {torch.__version__} · simulated {chip.label()} · {n} devices"
    print(title)
    print(rule)
    print(_row(head, widths))
    print(rule.replace("-", "="))
    for r in rows:
        print(_row(r, widths))
    print(rule)
    peaks = ", ".join(f"{d.upper()} {chip.matrix_flops(d) / 1e12:,.0f}" for d in chip.matrix_dtypes)
    print(f"Matrix peak (dense TFLOPS): {peaks}; vector FP32 {chip.vector_flops / 1e12:,.1f}")
    print(f"HBM {chip.hbm_peak_Bps / 1e9:,.0f} GB/s peak ({chip.mem_bw_Bps / 1e9:,.0f} GB/s effective in {chip.mode}),"
          f" host link {chip.host_link_Bps / 1e9:,.0f} GB/s, card links {chip.card_link_Bps / 1e9:,.0f} GB/s,"
          f" {chip.dies} die{'s' if chip.dies > 1 else ''}")
    inferred = chip.inferred()
    if inferred:
        print(f"Inferred (not published) numbers: {', '.join(inferred)}")
        for line in inferred_ranges(chip):
            print(line)
    print(f"Spec: {chip.path or chip.name}")
    return 0


def _fmt(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "x".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
    return f"{v:.4g}"


def inferred_ranges(chip):
    """One line per inferred number: its default and the low-high range the chip file gives (for
    efficiency tables, the factors scaling them); `python -m torch_biren sensitivity` varies them."""
    lines = []
    for name, q in chip.quantities():
        if q.label != "I" or q.value is None:
            continue
        table = name.split(".")[0].endswith("efficiency") and isinstance(q.value, (list, tuple, dict))
        value = "table" if table else _fmt(q.value)
        if q.range is None:
            span = "no range given"
        elif table:
            span = f"x{_fmt(q.range[0])} .. x{_fmt(q.range[1])}"
        else:
            span = f"{_fmt(q.range[0])} .. {_fmt(q.range[1])}"
        lines.append(f"  {name:<26} {value:<12} range {span}")
    return lines


def _version():
    try:
        from importlib.metadata import version

        return version("torch_biren")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "(source tree)"
