"""The chiplet: UMA's interleaved traffic over the die link, NUMA's die-local devices and their
cross-die copies, SVI's share of the links (sim/chip.py module doc, docs/user-guide.md)."""

import json

import pytest

from subprocess_run import run_python
from torch_biren.sim import costs
from torch_biren.sim.chip import load_chip

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


_LIVE = """
import json, torch, torch_biren
from torch_biren import sim
n = 16 * 2**20
def charged(dst, src):
    a = torch.empty(n, dtype=torch.uint8, device=src)
    b = torch.empty(n, dtype=torch.uint8, device=dst)
    torch.biren.synchronize(); sim.clock.reset()
    b.copy_(a)
    torch.biren.synchronize()
    return sim.clock.elapsed_ns(b.device)
out = {"count": torch.biren.device_count(), "die": charged("biren:0", "biren:1"),
       "card": charged("biren:2", "biren:1"), "local": charged("biren:0", "biren:0")}
print(json.dumps(out))
"""


@pytest.mark.parametrize("mode", ["NUMA", "UMA"])
def test_live_copies_are_charged_by_route(mode):
    # The runtime's copy path (csrc/aten/minimal.cpp) with the chip pushed into it, in a fresh process.
    r = run_python(_LIVE, env={"TORCH_BIREN_MEMORY_MODE": mode, "BIREN_VISIBLE_DEVICES": "0,1,2,3"})
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    chip = load_chip("BR166").with_mode(mode)
    n, issue = 16 * 2**20, chip.host_issue_ns
    assert got["count"] == 4 * chip.instances
    # charged on the destination's stream, after the host issued it
    assert got["local"] == pytest.approx(issue + costs.copy(n, "d2d", chip).ns, abs=1e-3)
    if mode == "NUMA":  # biren:0 and biren:1 are the dies of card 0, biren:2 is on card 1
        assert got["die"] == pytest.approx(issue + costs.copy(n, "die", chip).ns, abs=1e-3)
        assert got["card"] == pytest.approx(issue + costs.copy(n, "p2p", chip).ns, abs=1e-3)
        assert got["card"] > got["die"]
    else:  # one device per card: every peer copy crosses the card links
        assert got["die"] == got["card"] == pytest.approx(issue + costs.copy(n, "p2p", chip).ns, abs=1e-3)
