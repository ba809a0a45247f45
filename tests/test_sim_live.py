"""The device model on the live device: profiler output, totals, determinism, chip switching."""

import json

import pytest
import torch

import torch_biren
from subprocess_run import run_python
from torch_biren import sim
from torch_biren.adapt import zoo
from torch_biren.sim import chip as chips


def _step(model, ids):
    with torch.profiler.record_function("train_step"):
        model(ids, labels=ids).loss.backward()


@pytest.fixture(scope="module")
def profiled_step():
    model = zoo.build("qwen2").to("biren").train()
    ids = torch.randint(0, zoo.VOCAB, (2, 16)).to("biren")
    _step(model, ids)  # warm up
    torch.biren.synchronize()
    with torch_biren.profiler.profile() as prof:
        _step(model, ids)
        side = torch.biren.Stream()
        with torch.biren.stream(side):
            ids.float().sum()
    return prof


def test_chrome_trace_has_a_track_per_stream(profiled_step, tmp_path):
    path = tmp_path / "trace.json"
    profiled_step.export_chrome_trace(path)
    trace = json.loads(path.read_text())
    names = {e["args"]["name"] for e in trace["traceEvents"] if e.get("name") == "thread_name"}
    assert "stream 0" in names and len([n for n in names if n.startswith("stream")]) == 2
    assert any(e.get("name") == "train_step" and e["ph"] == "X" for e in trace["traceEvents"])
    kinds = {e["args"]["kind"] for e in trace["traceEvents"] if e.get("ph") == "X" and "args" in e}
    assert {"triton", "fallback", "copy"} <= kinds


def test_roofline_png(profiled_step, tmp_path):
    path = tmp_path / "roofline.png"
    profiled_step.roofline(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_totals_equal_simulated_elapsed_time(profiled_step):
    rows = profiled_step.rows()
    assert sum(r["total_ns"] for r in rows) == pytest.approx(profiled_step.elapsed_ns, rel=1e-9)
    table = profiled_step.table()
    assert "aten::mm" in table and "Total" in table


SCRIPT = """
import torch
import torch_biren
from torch_biren.adapt import zoo
m = zoo.build("llama").to("biren")
ids = torch.randint(0, 256, (2, 8), generator=torch.Generator().manual_seed(0)).to("biren")
m(ids, labels=ids).loss.backward()
torch.biren.synchronize()
print(repr(torch_biren.sim.elapsed_ns(0)))
"""


def test_simulated_time_is_deterministic():
    a, b = run_python(SCRIPT), run_python(SCRIPT)
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout and float(a.stdout) > 0


def test_chip_switch_follows_into_the_device():
    try:
        chips.set_chip("BR106")
        p = torch.biren.get_device_properties(0)
        assert p.name == "Biren BR106" and p.total_memory == 32512 * 2**20
        free, total = torch.biren.mem_get_info()
        assert total == 32512 * 2**20
        a = torch.randn(4096, 4096, device="biren")  # 64 MiB: memory-bound on both chips

        def sim_ns():
            torch.biren.synchronize()
            t0 = sim.elapsed_ns(0)
            a.mul_(1.0)
            torch.biren.synchronize()
            return sim.elapsed_ns(0) - t0

        on_br106 = sim_ns()
        chips.set_chip("BR166")
        on_br166 = sim_ns()
        assert on_br106 / on_br166 == pytest.approx(2.0, rel=0.15)  # twice the HBM bandwidth
    finally:
        chips.set_chip("BR166")
    assert torch.biren.get_device_name() == "Biren BR166"


def test_chip_from_environment_and_svi():
    r = run_python("import torch; p = torch.biren.get_device_properties(); print(p.name, torch.biren.device_count())",
                   env={"TORCH_BIREN_CHIP": "BR106"})
    assert r.stdout.split() == ["Biren", "BR106", "8"], r.stderr
    r = run_python("import torch; p = torch.biren.get_device_properties(); print(p.total_memory >> 20, torch.biren.device_count())",
                   env={"TORCH_BIREN_SVI": "4", "BIREN_VISIBLE_DEVICES": "0,1"})
    assert r.stdout.split() == [str(65024 // 4), "8"], r.stderr


def test_elapsed_time_and_reset_api():
    x = torch.randn(256, 256, device="biren:1")
    sim.reset()
    assert sim.elapsed_ns("biren:1") == 0
    x @ x
    torch.biren.synchronize(1)
    spent = sim.elapsed_ms(1)
    assert spent > 0 and sim.elapsed_ns(torch.device("biren", 1)) == spent * 1e6
    sim.reset("biren:1")
    assert sim.elapsed_ns(1) == 0
    with pytest.raises(ValueError, match="expected a biren device, got cpu"):
        sim.elapsed_ns("cpu")
