"""What the profiler shows of simulated time: a per-op table, a Chrome/Perfetto trace and a roofline.

Profile(records, ranges, chip) takes what the runtime's timeline recorded:
    records  (name, kind, device, stream, start_ns, dur_ns, flops, bytes, bound), kind one of
             triton | native | fallback | copy | collective, bound one of compute | memory | link | launch
    ranges   (name, device, start_ns, end_ns), from torch.profiler.record_function
profile() records a block of a live run into a Profile; it is the only part that needs the
runtime (torch_biren._C).
"""

import contextlib
import json
import textwrap
from collections import defaultdict
from typing import NamedTuple

from .chip import current_chip


class Record(NamedTuple):
    name: str
    kind: str
    device: int
    stream: int
    start_ns: float
    dur_ns: float
    flops: float
    bytes: float
    bound: str


class Range(NamedTuple):
    name: str
    device: int
    start_ns: float
    end_ns: float


def format_time(ns):
    for scale, unit, fmt in ((1e9, "s", "{:.2f}"), (1e6, "ms", "{:.2f}"), (1e3, "us", "{:.1f}")):
        if ns >= scale:
            return f"{fmt.format(ns / scale)} {unit}"
    return f"{ns:.0f} ns"


def _si(x):
    for scale, unit in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= scale:
            return f"{x / scale:.2f} {unit}"
    return f"{x:.0f}"


class Profile:
    def __init__(self, records, ranges=(), chip=None, elapsed_ns=None):
        self.records = [Record(*r) for r in records]
        self.ranges = [Range(*r) for r in ranges]
        self.chip = chip or current_chip()
        self.elapsed_ns = elapsed_ns  # the device's simulated span over the block, when known

    def rows(self):
        """One dict per (op name, kind), longest total time first."""
        groups = defaultdict(list)
        for r in self.records:
            groups[(r.name, r.kind)].append(r)
        rows = []
        for (name, kind), rs in groups.items():
            total = sum(r.dur_ns for r in rs)
            by_bound = defaultdict(float)
            for r in rs:
                by_bound[r.bound] += r.dur_ns
            flops, nbytes = sum(r.flops for r in rs), sum(r.bytes for r in rs)
            rows.append({
                "name": name, "kind": kind, "calls": len(rs), "total_ns": total, "avg_ns": total / len(rs),
                "flops": flops, "bytes": nbytes,
                "tflops": flops / total / 1e3 if total else 0.0, "gbps": nbytes / total if total else 0.0,
                "bound": max(by_bound, key=lambda b: (by_bound[b], b)),
            })  # fmt: skip
        rows.sort(key=lambda r: (-r["total_ns"], r["name"], r["kind"]))
        busy = sum(r["total_ns"] for r in rows)
        if self.elapsed_ns is not None and self.elapsed_ns > busy:
            # Gaps in which the device waited for the host to issue work: launch-bound time.
            idle = self.elapsed_ns - busy
            rows.append({"name": "(idle: waiting for host issue)", "kind": "idle", "calls": 0, "total_ns": idle,
                         "avg_ns": 0.0, "flops": 0.0, "bytes": 0.0, "tflops": 0.0, "gbps": 0.0, "bound": "launch"})
        return rows

    @staticmethod
    def _shown(rows, row_limit):
        # The idle row is often most of a small model's step: a row limit never hides it.
        ops = [r for r in rows if r["kind"] != "idle"]
        return ops[:row_limit] + [r for r in rows if r["kind"] == "idle"]

    def table(self, row_limit=None):
        """Per-op summary of simulated kernel time with totals and the chip's inferred numbers."""
        rows = self.rows()
        total = sum(r["total_ns"] for r in rows)
        flops, nbytes = sum(r["flops"] for r in rows), sum(r["bytes"] for r in rows)
        head = ("Name", "Kind", "Calls", "Total", "Avg", "%", "FLOPs", "Bytes", "TFLOP/s", "GB/s", "Bound")
        body = [
            (r["name"], r["kind"], str(r["calls"]) if r["calls"] else "", format_time(r["total_ns"]),
             format_time(r["avg_ns"]) if r["calls"] else "",
             f"{100 * r['total_ns'] / total:.1f}" if total else "-", _si(r["flops"]), _si(r["bytes"]),
             f"{r['tflops']:.1f}", f"{r['gbps']:.1f}", r["bound"])
            for r in self._shown(rows, row_limit)
        ]  # fmt: skip
        foot = ("Total", "", str(sum(r["calls"] for r in rows)), format_time(total), "", "100.0" if total else "-",
                _si(flops), _si(nbytes), f"{flops / total / 1e3 if total else 0:.1f}",
                f"{nbytes / total if total else 0:.1f}", "")  # fmt: skip
        widths = [max(len(row[i]) for row in [head, *body, foot]) for i in range(len(head))]

        def line(cells):  # names, kind and bound left-aligned, numbers right-aligned
            padded = (c.ljust(w) if i in (0, 1, 10) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
            return "  ".join(padded).rstrip()

        rule = "-" * len(line(head))
        lines = [f"Simulated kernel time on {self.chip.label()}", rule, line(head), rule]
        lines += [line(b) for b in body] + [rule, line(foot), rule]
        inferred = ", ".join(self.chip.inferred())
        if inferred:
            lines += textwrap.wrap(f"Inferred chip numbers (label I): {inferred}", len(rule))
        return "\n".join(lines)

    def export_chrome_trace(self, path):
        """Chrome/Perfetto JSON: a process per device, a track per stream, record_function ranges on
        a track of their own; timestamps are simulated microseconds."""
        events = []
        devices = sorted({r.device for r in self.records} | {r.device for r in self.ranges})
        for dev in devices:
            events.append({"ph": "M", "name": "process_name", "pid": dev, "tid": 0,
                           "args": {"name": f"biren:{dev} {self.chip.label()} (simulated)"}})  # fmt: skip
            events.append({"ph": "M", "name": "thread_name", "pid": dev, "tid": 0, "args": {"name": "ranges"}})
            streams = sorted({r.stream for r in self.records if r.device == dev})
            tids = {s: i + 1 for i, s in enumerate(streams)}
            for s, tid in tids.items():
                events.append({"ph": "M", "name": "thread_name", "pid": dev, "tid": tid,
                               "args": {"name": f"stream {s}"}})  # fmt: skip
            for r in self.records:
                if r.device == dev:
                    events.append({
                        "ph": "X", "name": r.name, "cat": r.kind, "pid": dev, "tid": tids[r.stream],
                        "ts": r.start_ns / 1e3, "dur": r.dur_ns / 1e3,
                        "args": {"kind": r.kind, "flops": r.flops, "bytes": r.bytes, "bound": r.bound},
                    })  # fmt: skip
        for g in self.ranges:
            events.append({"ph": "X", "name": g.name, "cat": "user_annotation", "pid": g.device, "tid": 0,
                           "ts": g.start_ns / 1e3, "dur": (g.end_ns - g.start_ns) / 1e3})  # fmt: skip
        with open(path, "w") as f:
            json.dump({"traceEvents": events, "displayTimeUnit": "ns", "otherData": {"chip": self.chip.label()}}, f)

    def roofline(self, path, dtype="bf16"):
        """PNG of every kernel with FLOPs and bytes against the chip's ceilings: the `dtype` matrix
        peak, the FP32 vector peak, and device-memory bandwidth (peak and after the efficiency table)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        chip = self.chip
        shown = [r for r in self.records if r.flops > 0 and r.bytes > 0 and r.dur_ns > 0]
        matrix, vector, bw = chip.matrix_flops(dtype), chip.vector_flops, chip.mem_bw_Bps
        best_bw = bw * chip.mem_eff_table[0][1]
        xs = [r.flops / r.bytes for r in shown] + [vector / bw, matrix / bw]
        lo, hi = min(xs) / 4, max(xs) * 4
        fig = Figure(figsize=(8, 5.5))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.set_xscale("log")
        ax.set_yscale("log")
        for peak, label, style in ((matrix, f"{dtype} matrix peak", "-"), (vector, "FP32 vector peak", "--")):
            ax.plot([peak / bw, hi], [peak, peak], "k" + style, lw=1.5, label=label)
        ax.plot([lo, matrix / bw], [bw * lo, matrix], "C3-", lw=1.5, label=f"HBM peak {bw / 1e9:.0f} GB/s")
        ax.plot([lo, matrix / best_bw], [best_bw * lo, matrix], "C3:", lw=1.5,
                label=f"HBM achievable {best_bw / 1e9:.0f} GB/s")  # fmt: skip
        by_kind = defaultdict(list)
        for r in shown:
            by_kind[r.kind].append(r)
        longest = max((r.dur_ns for r in shown), default=1.0)
        for i, (kind, rs) in enumerate(sorted(by_kind.items())):
            ax.scatter([r.flops / r.bytes for r in rs], [r.flops / r.dur_ns * 1e9 for r in rs],
                       s=[12 + 100 * (r.dur_ns / longest) ** 0.5 for r in rs], color=f"C{i}", alpha=0.6,
                       label=f"{kind} ({len(rs)})")  # fmt: skip
        ax.set_xlim(lo, hi)
        ax.set_xlabel("arithmetic intensity (FLOP/byte)")
        ax.set_ylabel("achieved FLOP/s (simulated)")
        hidden = len(self.records) - len(shown)
        note = f"; {hidden} kernels without FLOPs or bytes not shown" if hidden else ""
        ax.set_title(f"Roofline on {chip.label()}{note}", fontsize=10)
        ax.grid(True, which="both", alpha=0.2)
        ax.legend(fontsize=8, loc="lower right")
        fig.savefig(path, dpi=110)


@contextlib.contextmanager
def profile(chip=None):
    """Record the block's simulated kernels and record_function ranges on the live device:

        with profile() as prof:
            model(x)
        print(prof.table())
    """
    from torch_biren import _C

    prof = Profile([], [], chip)
    device = _C._get_device()
    start = _C._sim_elapsed_ns(device)
    mark = _C._sim_begin_recording()
    try:
        yield prof
    finally:
        records, ranges = _C._sim_end_recording(mark)
        prof.elapsed_ns = _C._sim_elapsed_ns(device) - start
        prof.records += [Record(*r) for r in records]
        prof.ranges += [Range(*r) for r in ranges]
