"""The chiplet: UMA's interleaved traffic over the die link, NUMA's die-local devices and their
cross-die copies, SVI's share of the links (sim/chip.py module doc, docs/user-guide.md)."""

import pytest
import torch

from torch_biren import sim
from torch_biren.sim import costs
from torch_biren.sim.chip import load_chip, use_chip

GiB = 2**30


def _eff(chip, nbytes):
    return chip.roofline.interpolate_memory(nbytes)


def test_uma_copy_follows_the_formula():
    uma = load_chip("BR166")
    L, lat, s = 896e9, 500.0, 0.5
    assert (uma.die_link_Bps, uma.die_latency_ns, uma.die_share) == (L, lat, s)
    traffic = 2 * GiB  # a 1 GiB copy reads and writes it
    hbm = traffic / (1640e9 * _eff(uma, traffic)) * 1e9
    die = lat + traffic * s / L * 1e9
    c = costs.copy(GiB, "d2d", uma)
    assert c.ns == pytest.approx(max(hbm, die) + 5000, rel=1e-12)
    assert hbm > die  # at 896 GB/s the die link does not bind BR166's large copies


def test_uma_die_link_binds_when_slower_than_interleaving_needs():
    slow = load_chip("BR166").replace(die_link_Bps=400e9)
    traffic = 2 * GiB
    c = costs.copy(GiB, "d2d", slow)
    assert c.ns == pytest.approx(500 + traffic * 0.5 / 400e9 * 1e9 + 5000, rel=1e-12)
    assert c.ns > costs.copy(GiB, "d2d", load_chip("BR166")).ns
    # a larger share crossing (placement skewed to the other die) costs more the same way
    skewed = load_chip("BR166").replace(die_link_Bps=600e9, die_link_share=0.75)
    assert costs.copy(GiB, "d2d", skewed).ns == pytest.approx(500 + traffic * 0.75 / 600e9 * 1e9 + 5000, rel=1e-12)


def test_numa_local_copy_follows_the_formula():
    numa = load_chip("BR166").with_mode("NUMA")
    assert numa.die_share == 0 and numa.die_devices == 1
    traffic = 2 * GiB
    bw = 820e9 / 0.91  # HAMi's half-card achieved figure at the top efficiency row
    c = costs.copy(GiB, "d2d", numa)
    assert c.ns == pytest.approx(traffic / (bw * _eff(numa, traffic)) * 1e9 + 5000, rel=1e-12)


def test_cross_die_copy_uses_the_die_link_one_way():
    numa = load_chip("BR166").with_mode("NUMA")
    c = costs.copy(GiB, "die", numa)
    assert c.ns == pytest.approx(500 + GiB / 448e9 * 1e9 + 5000, rel=1e-12) and c.bound == "link"
    assert costs.peer_copy(GiB, 0, 1, numa).ns == c.ns  # biren:0 and biren:1 are the dies of card 0
    card = costs.peer_copy(GiB, 1, 2, numa)  # biren:2 is die 0 of card 1
    assert card.ns == pytest.approx(GiB / (8 * 32e9 / 2) * 1e9 + 5000, rel=1e-12)  # its die's half of the BLinks
    assert numa.roofline.peer_route(0, 1) == "die" and numa.roofline.peer_route(1, 2) == "card"


def test_svi_instances_share_the_links():
    card = load_chip("BR166")
    quarter = card.partition(4)
    assert quarter.card_link_Bps == card.card_link_Bps / 4
    assert quarter.die_link_Bps == 896e9 / 2  # two instances per die share its directions
    assert quarter.roofline.peer_route(0, 1) == "local" and quarter.roofline.peer_route(1, 2) == "die"
    assert quarter.roofline.peer_route(3, 4) == "card"
    c = costs.peer_copy(GiB, 1, 2, quarter)
    assert c.ns == pytest.approx(500 + GiB / 224e9 * 1e9 + 5000, rel=1e-12)
    local = costs.peer_copy(GiB, 0, 1, quarter)  # through the die's memory: read and write
    assert local.ns == costs.generic(0, 2 * GiB, quarter).ns


def test_single_die_chips_have_no_die_link():
    h100 = load_chip("H100")
    assert h100.die_link_Bps == 0 and h100.die_share == 0
    with pytest.raises(ValueError, match="no die link"):
        costs.copy(GiB, "die", h100)
    with pytest.raises(ValueError, match="no die link"):
        costs.copy(GiB, "die", load_chip("BR166"))  # UMA: one device per card


def _charged(fn, device):
    torch.biren.synchronize()
    sim.clock.reset()
    fn()
    torch.biren.synchronize()
    return sim.clock.elapsed_ns(device)


def test_live_copies_are_charged_by_route():
    n = 16 * 2**20
    numa = load_chip("BR166").with_mode("NUMA")
    with use_chip(numa):
        assert torch.biren.device_count() == 16  # 8 cards, 2 dies each
        a = torch.empty(n, dtype=torch.uint8, device="biren:1")
        b = torch.empty(n, dtype=torch.uint8, device="biren:0")
        far = torch.empty(n, dtype=torch.uint8, device="biren:2")
        issue = numa.host_issue_ns
        # charged on the destination's stream, after the host issued it
        die = _charged(lambda: b.copy_(a), 0)
        assert die == pytest.approx(issue + costs.peer_copy(n, 1, 0, numa).ns, abs=1e-3)
        assert die == pytest.approx(issue + costs.copy(n, "die", numa).ns, abs=1e-3)
        over_card = _charged(lambda: far.copy_(a), 2)
        assert over_card == pytest.approx(issue + costs.copy(n, "p2p", numa).ns, abs=1e-3)
        assert over_card > die
    uma = load_chip("BR166")
    with use_chip(uma):
        x = torch.empty(n, dtype=torch.uint8, device="biren:0")
        y = torch.empty(n, dtype=torch.uint8, device="biren:0")
        assert _charged(lambda: y.copy_(x), 0) == pytest.approx(uma.host_issue_ns + costs.copy(n, "d2d", uma).ns,
                                                                  abs=1e-3)
