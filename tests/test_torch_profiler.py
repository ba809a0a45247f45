"""torch.profiler shows the simulated device (csrc/profiler/activity_profiler.cpp): kernels, copies
and collectives on per-device, per-stream tracks with their simulated durations, linked to the CPU op
that issued them."""

import json

import pytest
import torch
from torch.profiler import ProfilerActivity, profile, record_function, schedule, tensorboard_trace_handler

import torch_biren
from torch_biren import _C
from torch_biren.adapt import zoo

ACTIVITIES = [ProfilerActivity.CPU, ProfilerActivity.PrivateUse1]


@pytest.fixture(scope="module")
def layer():
    torch.manual_seed(0)
    model = zoo.build("qwen2", num_hidden_layers=1).to("biren").eval()
    ids = torch.randint(0, model.config.vocab_size, (2, 16), device="biren")
    with torch.no_grad():
        model(input_ids=ids)  # warm: the first call compiles kernels
    return model, ids


def _profiled(model, ids):
    torch.biren.synchronize()
    with profile(activities=ACTIVITIES) as prof, torch_biren.profiler.profile() as own:
        with torch.no_grad(), record_function("qwen_forward"):
            model(input_ids=ids)
        torch.biren.synchronize()
    return prof, own


def test_device_events_carry_simulated_durations_linked_to_cpu_ops(layer, tmp_path):
    prof, own = _profiled(*layer)
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    events = json.loads(path.read_text())["traceEvents"]
    device = [e for e in events if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy")]
    assert len(device) == len(own.records) > 10
    # Each device event is one timeline record: same name, device, stream and duration (the trace
    # writes microseconds with 3 decimals: ns).
    got = sorted((e["name"], e["pid"], e["tid"], round(e["dur"] * 1e3)) for e in device)
    named = lambda r: r.name if r.kind in ("copy", "collective") else f"{r.kind}: {r.name}"  # noqa: E731
    want = sorted((named(r), r.device, r.stream, round(r.dur_ns)) for r in own.records)
    assert [g[:3] for g in got] == [w[:3] for w in want]
    assert all(abs(g[3] - w[3]) <= 1 for g, w in zip(got, want))
    # Linked to the CPU op that launched them through the op's External id.
    cpu_ops = {e["args"]["External id"]: e["name"] for e in events if e.get("cat") == "cpu_op"}
    linked = [e for e in device if e["args"].get("External id") in cpu_ops]
    assert len(linked) == len(device)
    # the device event is named for the kernel the GEMM chose, as CUDA's are: "triton: aten::mm [64x64x64]"
    assert any(e["name"].startswith("triton: aten::mm [") and cpu_ops[e["args"]["External id"]] == "aten::mm" for e in linked)
    assert any(e.get("name") == "qwen_forward" and e.get("cat") == "user_annotation" for e in events)


def test_key_averages_device_totals_equal_the_simulated_clock(layer):
    model, ids = layer
    torch.biren.synchronize()
    start = _C._sim_elapsed_ns(0)
    prof, own = _profiled(model, ids)
    elapsed = _C._sim_elapsed_ns(0) - start
    kernels = [e for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.PrivateUse1]
    device_total_ns = sum(e.self_device_time_total for e in kernels) * 1e3
    busy = sum(r.dur_ns for r in own.records)
    idle = next(r["total_ns"] for r in own.rows() if r["kind"] == "idle")
    assert device_total_ns == pytest.approx(busy, abs=len(own.records))
    assert device_total_ns + idle == pytest.approx(elapsed, abs=len(own.records))
    table = prof.key_averages().table(sort_by="device_time_total", row_limit=20)
    total_us = float(table.split("Self BIREN time total:")[1].split("us")[0].replace("ms", ""))
    assert total_us * 1e3 == pytest.approx(device_total_ns, rel=1e-3) and "triton: aten::mm [" in table


def test_copies_and_streams_get_their_own_tracks(tmp_path):
    side = torch.biren.Stream()
    x = torch.randn(256, 256)
    with profile(activities=ACTIVITIES) as prof:
        a = x.to("biren")
        with torch.biren.stream(side):
            b = a @ a
        b.cpu()
    path = tmp_path / "t.json"
    prof.export_chrome_trace(str(path))
    events = [e for e in json.loads(path.read_text())["traceEvents"] if e.get("cat") in ("kernel", "gpu_memcpy")]
    tracks = {(e["name"], e["tid"]) for e in events}
    assert ("Memcpy HtoD", 0) in tracks and ("Memcpy DtoH", 0) in tracks
    assert any(n.startswith("triton: aten::mm [") and s == side.stream_id for n, s in tracks) and side.stream_id != 0


def test_schedule_and_tensorboard_handler_record_only_active_steps(tmp_path):
    x = torch.randn(64, 64, device="biren")
    with profile(activities=ACTIVITIES, schedule=schedule(wait=1, warmup=1, active=2),
                 on_trace_ready=tensorboard_trace_handler(str(tmp_path))) as prof:  # fmt: skip
        for step in range(4):
            with record_function(f"step{step}"):
                x = (x @ x).tanh()
            prof.step()
    files = list(tmp_path.glob("*.pt.trace.json"))
    assert len(files) == 1
    events = json.loads(files[0].read_text())["traceEvents"]
    steps = {e["name"] for e in events if e.get("cat") == "user_annotation" and e["name"].startswith("step")}
    assert steps == {"step2", "step3"}
    kernels = [e for e in events if e.get("cat") == "kernel"]
    assert sum(e["name"].startswith("triton: aten::mm [") for e in kernels) == 2


def test_cpu_only_profile_has_no_device_events():
    x = torch.randn(64, 64, device="biren")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        x @ x
    assert all(e.device_type == torch.autograd.DeviceType.CPU for e in prof.events())
