import json

import expecttest

from torch_biren.sim import costs
from torch_biren.sim.chip import load_chip
from torch_biren.sim.profiler import Profile

BR166 = load_chip("BR166")


def synthetic():
    """Two streams on device 0, one on device 1, and two nested ranges."""
    g = costs.gemm(4096, 4096, 4096, chip=BR166)
    a = costs.elementwise(2**24, "bf16", BR166)
    h2d = costs.copy(2**26, "h2d", BR166)
    att = costs.attention(4, 32, 8, 2048, 2048, 128, causal=True, chip=BR166)
    tiny = costs.generic(1024, 4096, BR166)
    records = [
        ("aten::mm", "triton", 0, 0, 0.0, g.ns, g.flops, g.bytes, g.bound),
        ("aten::mm", "triton", 0, 0, g.ns, g.ns, g.flops, g.bytes, g.bound),
        ("aten::add.Tensor", "fallback", 0, 0, 2 * g.ns, a.ns, a.flops, a.bytes, a.bound),
        ("aten::copy_", "copy", 0, 7, 0.0, h2d.ns, 0, h2d.bytes, h2d.bound),
        ("aten::_scaled_dot_product_flash_attention_for_cpu", "native", 1, 0, 0.0, att.ns, att.flops, att.bytes, att.bound),
        ("aten::neg", "fallback", 1, 0, att.ns, tiny.ns, tiny.flops, tiny.bytes, tiny.bound),
        ("aten::neg", "fallback", 1, 0, att.ns + tiny.ns, tiny.ns, tiny.flops, tiny.bytes, tiny.bound),
    ]
    ranges = [("step", 0, 0.0, 2 * g.ns + a.ns), ("forward", 0, 0.0, 2 * g.ns)]
    return Profile(records, ranges, BR166)


class TestTable(expecttest.TestCase):
    def test_table(self):
        self.assertExpectedInline(synthetic().table(), """\
Simulated kernel time on BR166 (UMA)
-----------------------------------------------------------------------------------------------------------------------------------------
Name                                               Kind      Calls     Total       Avg      %     FLOPs     Bytes  TFLOP/s    GB/s  Bound
-----------------------------------------------------------------------------------------------------------------------------------------
aten::copy_                                        copy          1   1.05 ms   1.05 ms   63.7         0   67.11 M      0.0    63.7  link
aten::mm                                           triton        2  323.3 us  161.6 us   19.5  274.88 G  201.33 M    850.2   622.7  compute
aten::_scaled_dot_product_flash_attention_for_cpu  native        1  194.5 us  194.5 us   11.8  137.51 G  168.82 M    706.9   867.9  compute
aten::add.Tensor                                   fallback      1   72.5 us   72.5 us    4.4   16.78 M  100.66 M      0.2  1389.4  memory
aten::neg                                          fallback      2   11.0 us    5.5 us    0.7    2.05 k    8.19 k      0.0     0.7  launch
-----------------------------------------------------------------------------------------------------------------------------------------
Total                                                            7   1.65 ms            100.0  412.40 G  537.93 M    249.2   325.1
-----------------------------------------------------------------------------------------------------------------------------------------
Inferred chip numbers (label I): hbm_peak_Bps, mem_efficiency, matrix_flops.bf16, matrix_flops.fp16, matrix_flops.tf32,
matrix_flops.fp32, matrix_flops.int8, vector_flops, compute_units, matrix_tile, matrix_efficiency, attention_efficiency, l2_bytes,
clock_hz, host_link_Bps, card_links, card_link_Bps, launch_ns, host_issue_ns, graph_launch_ns, graph_kernel_gap_ns, capability,
collective_efficiency, comm_units_share, die_link_latency_ns, die_link_share, fp64_emulation_slowdown, gemm_kernels, l2_Bps,
memory_latency_ns, network""")

    def test_empty_table(self):
        self.assertExpectedInline(Profile([], [], load_chip("H100")).table(), """\
Simulated kernel time on H100
---------------------------------------------------------------------
Name   Kind  Calls  Total  Avg  %  FLOPs  Bytes  TFLOP/s  GB/s  Bound
---------------------------------------------------------------------
---------------------------------------------------------------------
Total            0   0 ns       -      0      0      0.0   0.0
---------------------------------------------------------------------
Inferred chip numbers (label I): matrix_tile, attention_efficiency,
graph_kernel_gap_ns, comm_units_share, l2_Bps, memory_latency_ns""")


def test_rows_aggregate_per_op_and_kind():
    rows = {(r["name"], r["kind"]): r for r in synthetic().rows()}
    mm = rows[("aten::mm", "triton")]
    g = costs.gemm(4096, 4096, 4096, chip=BR166)
    assert mm["calls"] == 2 and mm["total_ns"] == 2 * g.ns and mm["flops"] == 2 * g.flops
    assert mm["tflops"] == g.flops / g.ns / 1e3 and mm["bound"] == "compute"
    assert rows[("aten::neg", "fallback")]["bound"] == "launch"


def test_chrome_trace(tmp_path):
    path = tmp_path / "trace.json"
    synthetic().export_chrome_trace(path)
    trace = json.loads(path.read_text())
    events = trace["traceEvents"]
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert names == {(0, 0): "ranges", (0, 1): "stream 0", (0, 2): "stream 7", (1, 0): "ranges", (1, 1): "stream 0"}
    spans = [e for e in events if e["ph"] == "X"]
    assert len(spans) == 7 + 2
    copy = next(e for e in spans if e["name"] == "aten::copy_")
    assert (copy["pid"], copy["tid"], copy["cat"], copy["ts"]) == (0, 2, "copy", 0.0)
    assert copy["dur"] == costs.copy(2**26, "h2d", BR166).ns / 1e3 and copy["args"]["bound"] == "link"
    step = next(e for e in spans if e["name"] == "step")
    assert (step["pid"], step["tid"], step["cat"]) == (0, 0, "user_annotation")
    processes = [e["args"]["name"] for e in events if e["name"] == "process_name"]
    assert processes == ["biren:0 BR166 (UMA) (simulated)", "biren:1 BR166 (UMA) (simulated)"]


def test_roofline_png(tmp_path):
    path = tmp_path / "roofline.png"
    synthetic().roofline(path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_row_limit_keeps_the_idle_row():
    prof = synthetic()
    busy = sum(r.dur_ns for r in prof.records)
    prof.elapsed_ns = 3 * busy  # the device waited on the host for two thirds of the block
    lines = prof.table(row_limit=2).splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("---")]
    names = [line.split("  ")[0] for line in lines[rules[1] + 1:rules[2]]]
    assert names == ["aten::copy_", "aten::mm", "(idle: waiting for host issue)"]
    assert "66.7" in next(line for line in lines if line.startswith("(idle"))
