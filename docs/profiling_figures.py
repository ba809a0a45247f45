"""Regenerates the pictures and printed outputs of docs/profiling.md:

    python docs/profiling_figures.py      # writes docs/img/*.png and docs/img/*.txt
"""

import json
import os
import tempfile

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch.profiler import ProfilerActivity, profile, record_function

import torch_biren
from torch_biren.adapt import zoo

IMG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "img")


def timeline_png(trace_path, out):
    """A torch.profiler trace as Perfetto lays it out: the CPU ops (host wall time) above, the biren
    stream tracks (simulated time, zoomed: the simulated card is far faster than this host) below."""
    events = [e for e in json.load(open(trace_path))["traceEvents"] if e.get("ph") == "X"]
    cpu = [e for e in events if e.get("cat") in ("cpu_op", "user_annotation")]
    dev = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy")]
    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    colors = {}
    for i, (evs, title, scale, unit) in enumerate(((cpu, "CPU ops and record_function (host wall time)", 1e3, "ms"),
                                                    (dev, "biren:0 device tracks (simulated time)", 1, "us"))):  # fmt: skip
        ax = fig.add_subplot(2, 1, i + 1)
        t0 = min(e["ts"] for e in evs)
        keys = sorted({("record_function" if e["cat"] == "user_annotation" else "aten ops") if i == 0
                       else f"stream {e['tid']}" for e in evs})  # fmt: skip
        for e in evs:
            key = (("record_function" if e["cat"] == "user_annotation" else "aten ops") if i == 0
                   else f"stream {e['tid']}")  # fmt: skip
            base = e["name"].split(": ")[-1]
            c = colors.setdefault(base, f"C{len(colors) % 10}")
            ax.barh(keys.index(key), e["dur"] / scale, left=(e["ts"] - t0) / scale, color=c, edgecolor="k", lw=0.2)
        ax.set_yticks(range(len(keys)), keys, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(unit, fontsize=8)
    fig.suptitle("torch.profiler trace of a Qwen2 forward on biren (colour: op; kernels link to the op that issued them)",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def memory_png(snapshot, out):
    """Bytes held over the snapshot's trace, split by the function that allocated them."""
    trace = snapshot["device_traces"][0]
    live, series, owner = {}, [], {}
    for e in trace:
        if e["action"] == "alloc":
            frames = [f for f in e["frames"] if f["filename"].endswith(".py") and "torch" not in f["filename"]]
            live[e["addr"]] = (e["size"], frames[0]["name"] if frames else "?")
        elif e["action"] == "free_completed":
            live.pop(e["addr"], None)
        by = {}
        for size, who in live.values():
            by[who] = by.get(who, 0) + size
        series.append(by)
        for k in by:
            owner[k] = True
    fig = Figure(figsize=(9, 3.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    keys = sorted(owner)
    ax.stackplot(range(len(series)), [[s.get(k, 0) / 2**20 for s in series] for k in keys], labels=keys)
    ax.set_xlabel("allocator event")
    ax.set_ylabel("MiB allocated")
    ax.set_title("torch.biren.memory._snapshot(): active memory by allocating function", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main():
    os.makedirs(IMG, exist_ok=True)
    torch.manual_seed(0)
    model = zoo.build("qwen2", num_hidden_layers=2).to("biren").eval()
    ids = torch.randint(0, model.config.vocab_size, (2, 32), device="biren")
    with torch.no_grad():
        model(input_ids=ids)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.PrivateUse1]) as prof:
        with torch.no_grad(), record_function("forward"):
            model(input_ids=ids)
        torch.biren.synchronize()
    with open(os.path.join(IMG, "key_averages.txt"), "w") as f:  # pasted into docs/profiling.md
        f.write(prof.key_averages().table(sort_by="device_time_total", row_limit=8))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "trace.json")
        prof.export_chrome_trace(path)
        timeline_png(path, os.path.join(IMG, "profiler_timeline.png"))
    with torch_biren.profiler.profile() as own, torch.no_grad():
        model(input_ids=ids)
    own.roofline(os.path.join(IMG, "roofline.png"))
    with open(os.path.join(IMG, "biren_profile_table.txt"), "w") as f:
        f.write(own.table(row_limit=6))

    torch.biren.memory._record_memory_history()
    train = zoo.build("qwen2", num_hidden_layers=2).to("biren").train()
    opt = torch.optim.AdamW(train.parameters())

    def training_step():
        loss = train(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()

    for _ in range(2):
        training_step()
    memory_png(torch.biren.memory._snapshot(), os.path.join(IMG, "memory_timeline.png"))
    torch.biren.memory._record_memory_history(enabled=None)


if __name__ == "__main__":
    main()
