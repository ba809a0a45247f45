"""python -m torch_biren bench collectives: nccl-tests columns from the collective cost model."""

from torch_biren import cli
from torch_biren.sim import collectives


def test_bench_collectives_prints_bus_bandwidth(capsys):
    assert cli.main(["bench", "collectives", "--op", "all_reduce", "--min-bytes", "1M", "--max-bytes", "1G"]) == 0
    out = capsys.readouterr().out
    assert "8 x BR166" in out and "busbw(GB/s)" in out
    rows = [line.split() for line in out.splitlines() if line.strip() and not line.startswith("#")]
    assert [int(r[0]) for r in rows] == [1 << 20, 1 << 22, 1 << 24, 1 << 26, 1 << 28, 1 << 30]
    topo = collectives.topology(cards=8)
    c = collectives.collective("all_reduce", 1 << 30, 8, topo=topo)
    assert float(rows[-1][5]) == round(collectives.bus_bandwidth("all_reduce", 1 << 30, 8, c)[1], 2)
    busbw = [float(r[5]) for r in rows]
    assert busbw == sorted(busbw)  # latency-bound small sizes, link-bound large ones


def test_bench_collectives_across_servers(capsys):
    assert cli.main(["bench", "collectives", "--cards", "16", "--network", "roce-400", "--op", "all_gather",
                     "--max-bytes", "64M"]) == 0
    assert "2 servers" in capsys.readouterr().out


def test_bench_bad_input_exits_2(capsys):
    assert cli.main(["bench", "collectives", "--network", "carrier-pigeon"]) == 2
    assert cli.main(["bench", "collectives", "--min-bytes", "1G", "--max-bytes", "1M"]) == 2
    assert cli.main(["bench", "collectives", "--chip", "no-such-chip"]) == 2
    assert "error:" in capsys.readouterr().err
