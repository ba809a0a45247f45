import pytest
import torch


def test_stream_objects():
    s = torch.biren.Stream()
    assert s.device_type == torch.biren.current_stream().device_type
    assert torch.biren.current_stream().stream_id == 0
    with torch.biren.stream(s):
        assert torch.biren.current_stream().stream_id == s.stream_id
    assert torch.biren.current_stream().stream_id == 0
    assert torch.biren.default_stream().stream_id == 0
    assert s.query()
    s.synchronize()


def test_events_measure_simulated_time():
    a = torch.randn(512, 512, device="biren")
    start, end = torch.biren.Event(enable_timing=True), torch.biren.Event(enable_timing=True)
    start.record()
    for _ in range(4):
        a = a * 1.0001
    end.record()
    end.synchronize()
    ms = start.elapsed_time(end)
    assert ms > 0
    # Identical work, identical simulated time: wall time plays no part.
    start.record()
    b = torch.randn(512, 512, device="biren")
    start2 = torch.biren.Event(enable_timing=True)
    start2.record()
    for _ in range(4):
        b = b * 1.0001
    end.record()
    assert start2.elapsed_time(end) == pytest.approx(ms)


def test_events_need_timing_flag():
    e1, e2 = torch.biren.Event(), torch.biren.Event()
    e1.record()
    e2.record()
    with pytest.raises(ValueError, match="enable_timing=True"):
        e1.elapsed_time(e2)


def test_two_streams_overlap_and_wait_event():
    torch.biren.synchronize()
    x = torch.randn(1024, 1024, device="biren")
    s1, s2 = torch.biren.Stream(), torch.biren.Stream()
    t0 = torch.biren.Event(enable_timing=True)
    t0.record()
    s1.wait_event(t0)
    s2.wait_event(t0)
    with torch.biren.stream(s1):
        for _ in range(3):
            y = x * 2
    with torch.biren.stream(s2):
        for _ in range(3):
            z = x * 3
    e1, e2 = torch.biren.Event(enable_timing=True), torch.biren.Event(enable_timing=True)
    e1.record(s1)
    e2.record(s2)
    d1, d2 = t0.elapsed_time(e1), t0.elapsed_time(e2)
    # Independent streams run side by side: s2 did not wait for s1's work.
    assert d2 < d1 + d2 * 0.9
    # After waiting on s1's event, s2 cannot be earlier than s1.
    s2.wait_event(e1)
    e3 = torch.biren.Event(enable_timing=True)
    e3.record(s2)
    assert t0.elapsed_time(e3) >= d1
    # wait_stream orders the default stream after s2.
    torch.biren.current_stream().wait_stream(s2)
    e4 = torch.biren.Event(enable_timing=True)
    e4.record()
    assert t0.elapsed_time(e4) >= t0.elapsed_time(e3)
    del y, z


def test_synchronize_joins_host_to_device():
    from torch_biren import _C

    x = torch.randn(2048, 2048, device="biren")
    for _ in range(3):
        x = x + 1
    torch.biren.synchronize()
    assert _C._sim_elapsed_ns(0) >= _C._sim_stream_clock(0, 0)


def test_stream_context_restores_the_device():
    assert torch.biren.current_device() == 0
    contexts = {
        "torch.biren.stream": lambda s: torch.biren.stream(s),
        "torch.biren.Stream": lambda s: s,
        "torch.Stream": lambda s: torch.Stream(stream_id=s.stream_id, device_index=1, device_type=s.device_type),
    }
    for name, ctx in contexts.items():
        s = torch.biren.Stream(device=1)
        with ctx(s):
            # As on CUDA: the stream's device is current inside the block.
            assert torch.biren.current_device() == 1, name
            assert torch.biren.current_stream().stream_id == s.stream_id, name
            assert torch.ones(1, device="biren").device == torch.device("biren:1"), name
        assert torch.biren.current_device() == 0, name
        assert torch.biren.current_stream(1).stream_id == 0, name  # device 1's stream is back too
        assert torch.ones(1, device="biren").device == torch.device("biren:0"), name


def test_nested_stream_contexts_unwind_in_order():
    a, b = torch.biren.Stream(device=0), torch.biren.Stream(device=2)
    with torch.biren.stream(a):
        with b:
            assert (torch.biren.current_device(), torch.biren.current_stream().stream_id) == (2, b.stream_id)
        assert (torch.biren.current_device(), torch.biren.current_stream().stream_id) == (0, a.stream_id)
        with b:
            with b:  # the same stream object entered twice
                pass
            assert torch.biren.current_device() == 2
        assert torch.biren.current_device() == 0
    assert torch.biren.current_stream().stream_id == 0 and torch.biren.current_stream(2).stream_id == 0


def test_stream_without_an_index_is_on_the_current_device():
    s = torch.Stream(device="biren")
    assert s.device == torch.device("biren:0")
    with torch.biren.device(3):
        s3 = torch.Stream(device="biren")
        e = torch.Event(device="biren", enable_timing=True)
        e.record(s3)
    assert s3.device_index == 3 and torch.biren.Stream().device_index == 0
    with s3:
        x = torch.ones(8, device="biren")
    assert x.device == torch.device("biren:3")


def test_invalid_device_index_in_every_stream_api():
    calls = {
        "current_stream(98)": lambda: torch.biren.current_stream(98),
        "default_stream(9)": lambda: torch.biren.default_stream(9),
        "synchronize(9)": lambda: torch.biren.synchronize(9),
        "synchronize(-3)": lambda: torch.biren.synchronize(-3),
        "Stream(device=9)": lambda: torch.biren.Stream(device=9),
        "torch.Stream('biren:8')": lambda: torch.Stream(device="biren:8"),
        "accelerator.synchronize(8)": lambda: torch.accelerator.synchronize(8),
        "accelerator.current_stream(8)": lambda: torch.accelerator.current_stream(8),
    }
    for name, call in calls.items():
        with pytest.raises(RuntimeError, match=r"invalid device ordinal: device biren:-?\d+ requested but 8 biren"):
            call()
    torch.biren.synchronize(7)


def test_legacy_profiler_reports_device_time_of_each_op():
    x = torch.randn(64, 64, device="biren")
    torch.biren.synchronize()
    with torch.autograd.profiler.profile(use_device="biren") as prof:
        start = torch.biren.Event(enable_timing=True)
        end = torch.biren.Event(enable_timing=True)
        start.record()
        y = (x @ x).sin()
        end.record()
    events = prof.key_averages()
    assert all(e.cpu_time_total >= 0 and e.self_cpu_time_total >= 0 for e in events), events.table()
    by = {e.key: e for e in events}
    assert by["aten::mm"].device_time_total > 0 and by["aten::sin"].device_time_total > 0
    # Device times are the simulated ones: mm and sin together take what the events around them saw
    # (the profiler keeps whole microseconds of each).
    simulated_us = start.elapsed_time(end) * 1e3
    assert by["aten::mm"].device_time_total + by["aten::sin"].device_time_total == pytest.approx(simulated_us, abs=2)
    del y


def test_elapsed_time_of_the_same_op_is_bit_identical_wherever_it_starts():
    # The clock is integer picoseconds: a float clock gave 0.04559883418704192 ms for a 2048^3 mm at
    # one offset and ...191 at another (here a smaller mm, same rule).
    from torch_biren import sim

    a = torch.randn(512, 512, device="biren")
    b = torch.randn(512, 512, device="biren")
    c = torch.randn(1000, 3, device="biren")
    times = set()
    for offset in range(4):
        for _ in range(offset):
            c = c * 1.000001 + 0.5  # move the clock by amounts with fractional nanoseconds
        torch.biren.synchronize()  # the host joins the stream, so the mm waits the same issue time
        start, end = torch.biren.Event(enable_timing=True), torch.biren.Event(enable_timing=True)
        start.record()
        a.mm(b)
        end.record()
        times.add(start.elapsed_time(end))
        assert isinstance(sim.elapsed_ps(), int)
    assert len(times) == 1, times
