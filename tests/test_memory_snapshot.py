"""Memory snapshots in torch.cuda.memory's format (torch_biren/biren/memory_snapshot.py), read by
PyTorch's own visualizer; OOM observers and the dump-on-OOM variable."""

import pickle
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.cuda._memory_viz as viz


@pytest.fixture
def history():
    torch.biren.memory._record_memory_history()
    yield
    torch.biren.memory._record_memory_history(enabled=None)


def make_activations():  # a named frame the snapshot must show
    return [torch.empty(3 << 20, dtype=torch.uint8, device="biren") for _ in range(2)]


def test_snapshot_shows_live_blocks_with_their_stacks(history):
    kept = make_activations()
    snap = torch.biren.memory._snapshot()
    ours = {t.data_ptr() for t in kept}
    blocks = {b["address"]: (s, b) for s in snap["segments"] for b in s["blocks"]}
    for ptr in ours:
        seg, block = blocks[ptr]
        assert block["state"] == "active_allocated" and block["requested_size"] == 3 << 20
        assert seg["device"] == 0 and seg["total_size"] >= 3 << 20 and seg["segment_type"] == "large"
        assert any(f["name"] == "make_activations" and f["filename"].endswith("test_memory_snapshot.py")
                   for f in block["frames"])  # fmt: skip
    trace = snap["device_traces"][0]
    allocs = [e for e in trace if e["action"] == "alloc" and e["addr"] in ours]
    assert len(allocs) == 2 and all(e["size"] == 3 << 20 for e in allocs)
    del kept
    actions = [e["action"] for e in torch.biren.memory._snapshot()["device_traces"][0] if e["addr"] in ours]
    assert actions.count("free_completed") == 2


def test_pytorchs_visualizer_renders_it(history, tmp_path):
    kept = make_activations()
    path = tmp_path / "snap.pickle"
    torch.biren.memory._dump_snapshot(str(path))
    snap = pickle.loads(path.read_bytes())
    html = viz.trace_plot(snap)
    assert "<html" in html.lower() and len(html) > 10_000
    assert "<html" in viz.segment_plot(snap).lower()
    summary = viz.segsum(snap)
    assert "total_allocated: " in summary and "a segment in the allocator" in summary
    del kept


def test_snapshot_without_history_lists_segments():
    torch.biren.memory._record_memory_history(enabled=None)
    t = torch.empty(1 << 20, device="biren")
    segs = [s for s in torch.biren.memory._snapshot()["segments"] if s["address"] == t.data_ptr()]
    assert len(segs) == 1 and segs[0]["blocks"][0]["frames"] == []


def test_oom_observer_and_message_state_the_allocator():
    seen = []
    torch.biren.memory._attach_out_of_memory_observer(lambda *a: seen.append(a))
    total = torch.biren.mem_get_info()[1]
    with pytest.raises(torch.OutOfMemoryError) as err:
        torch.empty(total + (1 << 30), dtype=torch.uint8, device="biren")
    msg = str(err.value)
    assert "biren out of memory. Tried to allocate" in msg and "total capacity of" in msg
    assert "is allocated by PyTorch" in msg and "reserved by PyTorch but unallocated" in msg
    device, requested, device_total, device_free = seen[-1]
    assert (device, requested, device_total) == (0, total + (1 << 30), total) and device_free <= total
    torch.ones(4, device="biren").sum().item()  # still usable


def test_env_var_dumps_a_snapshot_on_oom(tmp_path):
    path = tmp_path / "oom.pickle"
    code = textwrap.dedent("""
        import torch
        torch.biren.memory._record_memory_history()
        keep = torch.empty(1 << 20, device="biren")
        try:
            torch.empty(torch.biren.mem_get_info()[1] * 2, dtype=torch.uint8, device="biren")
        except torch.OutOfMemoryError:
            print("raised")
    """)
    env = {**__import__("os").environ, "TORCH_BIREN_OOM_SNAPSHOT": str(path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert "raised" in out.stdout, out.stderr
    assert "snapshot written to" in out.stderr
    snap = pickle.loads(path.read_bytes())
    assert [e["action"] for e in snap["device_traces"][0]][-1] == "oom"
