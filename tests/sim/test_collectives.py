"""Collective cost model: nccl-tests bus bandwidth on known systems, formulas, hierarchy, errors."""

import json
from pathlib import Path

import pytest

from torch_biren.sim import collectives as col
from torch_biren.sim.costs import Cost

GiB = 1 << 30


def busbw(kind, nbytes, ranks, topo, **kw):
    return col.bus_bandwidth(kind, nbytes, ranks, col.collective(kind, nbytes, ranks, topo, **kw))[1]


MiB = 1 << 20


def test_a100_all_reduce_matches_nccl_tests():
    topo = col.topology(8, "A100")
    assert 196 <= busbw("all_reduce", 128 * MiB, 8, topo) <= 212  # published-runs.md: 200-208 GB/s
    assert 215 <= busbw("all_reduce", GiB, 8, topo) <= 233  # the calibrate.py runs: 221-233 GB/s
    assert 15e3 <= col.collective("all_reduce", 8, 8, topo).ns <= 45e3  # the runs: 20-40 us at 8 B


def test_h100_all_reduce_matches_nccl_tests():
    assert 370 <= busbw("all_reduce", 8 * GiB, 8, col.topology(8, "H100")) <= 480


def test_br166_eight_cards_from_its_spec():
    topo = col.topology(8, "BR166")
    assert topo.intra_Bps == 8 * 32e9  # 8 BLinks x 32 GB/s each way (chip file)
    bw = busbw("all_reduce", 8 * GiB, 8, topo)
    assert bw == pytest.approx(256 * topo.efficiency, rel=0.02)
    assert any("efficiency" in a for a in topo.assumptions)  # no BR measurement: stated


def test_the_faster_protocol_per_size():
    """LL (short steps, a share of the bandwidth) below the crossover, Simple above; the model takes the
    smaller of the two closed forms and is continuous across the switch."""
    topo = col.topology(8, "A100")
    link, launch = topo.intra_Bps * topo.efficiency, topo.chip.launch_ns

    def closed(nbytes, step_ns, share):
        return launch + 14 * step_ns + 7 / 4 * nbytes / (link * share) * 1e9

    for nbytes in (8, 64 << 10, 4 * MiB, 256 * MiB):
        ll, simple = closed(nbytes, topo.ll_alpha_ns, topo.ll_share), closed(nbytes, topo.intra_alpha_ns, 1.0)
        assert col.collective("all_reduce", nbytes, 8, topo).ns == pytest.approx(min(ll, simple))
    assert closed(8, topo.ll_alpha_ns, topo.ll_share) < closed(8, topo.intra_alpha_ns, 1.0)
    assert closed(GiB, topo.ll_alpha_ns, topo.ll_share) > closed(GiB, topo.intra_alpha_ns, 1.0)


def test_inside_a_server_auto_is_the_ring():
    # NCCL's tree is a chain within a node; the binary tree stays available when asked for.
    topo = col.topology(8, "A100")
    assert col.collective("all_reduce", 1024, 8, topo).ns == col.collective("all_reduce", 1024, 8, topo, "ring").ns
    assert col.collective("all_reduce", 1024, 8, topo, "tree").ns < col.collective("all_reduce", 1024, 8, topo).ns


def test_chips_without_a_collective_fit_take_a100s_and_say_so(tmp_path):
    spec = json.loads((Path(col.__file__).parent / "chips" / "H100.json").read_text())
    for entry in ("collective_efficiency", "collective_protocols"):
        spec.pop(entry, None)
    (tmp_path / "bare.json").write_text(json.dumps(spec))
    a100, bare = col.topology(8, "A100"), col.topology(8, str(tmp_path / "bare.json"))
    assert (bare.intra_alpha_ns, bare.ll_alpha_ns, bare.ll_share, bare.efficiency) == (
        a100.intra_alpha_ns, a100.ll_alpha_ns, a100.ll_share, a100.efficiency)
    assert any("protocols" in a and "A100's nccl-tests fit" in a for a in bare.assumptions)


def test_small_messages_are_latency_bound_and_tree_wins():
    topo = col.topology(64, "A100")
    small = col.collective("all_reduce", 1024, 64, topo, ranks_per_server=1)
    assert small.bound == "link" or small.bound == "launch"
    ring = col.collective("all_reduce", 1024, 64, topo, "ring", ranks_per_server=1)
    tree = col.collective("all_reduce", 1024, 64, topo, "tree", ranks_per_server=1)
    assert tree.ns < ring.ns and small.ns == min(ring.ns, tree.ns)


def test_ring_formula():
    topo = col.topology(8, "A100", intra_alpha_ns=0)
    c = col.collective("all_gather", GiB, 8, topo, "ring")
    bw = 300e9 * topo.efficiency
    assert c.link_ns == pytest.approx(7 / 8 * GiB / bw * 1e9)
    assert c.ns == pytest.approx(c.link_ns + topo.chip.launch_ns)
    assert isinstance(c, Cost) and c.bound == "link"


def test_crossing_servers_is_slower_and_single_rank_is_free():
    topo = col.topology(16, "BR166")
    inside = col.collective("all_reduce", GiB, 8, topo)
    across = col.collective("all_reduce", GiB, 16, topo)
    strided = col.collective("all_reduce", GiB, 2, topo, ranks_per_server=1)
    assert across.ns > inside.ns and strided.ns > inside.ns
    assert col.collective("all_reduce", GiB, 1, topo).link_ns == 0


def test_every_kind_has_a_cost_and_bus_factor():
    topo = col.topology(1024, "BR166")
    for kind in col.KINDS:
        for ranks in (2, 8, 64, 1024):
            c = col.collective(kind, 64 << 20, ranks, topo)
            assert c.ns > 0, (kind, ranks)
            algbw, bus = col.bus_bandwidth(kind, 64 << 20, ranks, c)
            assert algbw >= 0 and bus >= 0


def test_networks_and_supernode():
    fast = col.topology(64, "BR166", network="roce-400")
    slow = col.topology(64, "BR166", network="roce-100")
    assert col.collective("all_reduce", GiB, 64, fast).ns < col.collective("all_reduce", GiB, 64, slow).ns
    sn = col.topology(64, "BR166", network="supernode-64")
    assert sn.cards_per_server == 64 and any("supernode" in a for a in sn.assumptions)
    assert col.topology(16, "BR166", network=50e9).inter_Bps == 50e9


def test_bad_input():
    topo = col.topology(8, "BR166")
    with pytest.raises(ValueError, match="unknown collective"):
        col.collective("allreduce", 1, 8, topo)
    with pytest.raises(ValueError, match="do not fit"):
        col.collective("all_reduce", 1, 16, topo)
    with pytest.raises(ValueError, match="positive integer"):
        col.collective("all_reduce", 1, 0, topo)
    with pytest.raises(ValueError, match="unknown network"):
        col.topology(8, "BR166", network="ethernet")
    with pytest.raises(ValueError, match="unknown chip"):
        col.topology(8, "BR999")
