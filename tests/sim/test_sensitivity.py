"""Ranges of inferred numbers (sim/chip.py) and the one-at-a-time sensitivity study over them."""

import json

import pytest

from torch_biren.sim import costs
from torch_biren.sim.chip import ChipSpecError, available_chips, load_chip
from torch_biren.sim.sensitivity import sensitivity

# Not performance numbers: identifiers a range would not mean anything for.
_NO_RANGE = {"capability", "svi_partitions", "warp_size", "gemm_kernels"}  # gemm_kernels: a list of configurations


@pytest.mark.parametrize("name", [n for n in available_chips() if n != "BR110"])
def test_every_inferred_number_has_a_range(name):
    chip = load_chip(name)
    # card_links: the count of links; its range is carried by card_link_Bps, the bandwidth over them
    missing = [k for k, q in chip.quantities() if q.label == "I" and q.value is not None and q.range is None
               and k not in _NO_RANGE and k != "card_links"]  # fmt: skip
    assert missing == []


def test_br100_figures_are_inferred_for_br166():
    chip = load_chip("BR166")
    # numbers borrowed from BR100 are labelled inferred for BR166, with their reasoning
    for k in ("card_link_Bps", "card_links", "clock_hz", "host_link_Bps", "matrix_tile", "l2_bytes"):
        assert chip.q(k).label == "I" and "BR100" in chip.q(k).source, k
    assert chip.q("card_link_Bps").range == (16e9, 32e9)  # 128-256 GB/s each way over 8 links


def test_at_sets_one_number_to_an_end():
    chip = load_chip("BR166")
    lo = chip.at("hbm_peak_Bps", "low")
    assert lo.hbm_peak_Bps == 1.48e12 and lo.matrix_flops("bf16") == chip.matrix_flops("bf16")
    assert chip.at("matrix_flops.bf16", "low").matrix_flops("bf16") == 0.75 * 1024e12
    table = chip.at("mem_efficiency", "low").mem_eff_table
    assert table[0][1] == pytest.approx(0.91 * 0.9)
    assert max(e for _, e in chip.at("mem_efficiency", "high").mem_eff_table) <= 1.0
    assert chip.with_mode("NUMA").at("card_link_Bps", "low").mode == "NUMA"
    with pytest.raises(KeyError, match="no range"):
        chip.at("memory_bytes", "low")


def test_study_ranks_a_memory_bound_copy_by_its_memory_numbers():
    chip = load_chip("BR166")
    study = sensitivity(chip, lambda c: costs.copy(2**30, "d2d", c).ns)
    top = study.top(3)
    # HBM peak and efficiency, and the die-link share: at its high end (3/4 of the traffic crossing)
    # the die link binds a UMA copy
    assert set(top) == {"hbm_peak_Bps", "mem_efficiency", "die_link_share"}
    row = {r.field: r for r in study.rows}["hbm_peak_Bps"]
    assert row.low["result"] == costs.copy(2**30, "d2d", chip.at("hbm_peak_Bps", "low")).ns
    # a compute-free copy does not move with the matrix peak
    assert row.swing("result", study.base["result"]) > 0
    assert {r.field: r for r in study.rows}["matrix_flops.bf16"].swing("result", study.base["result"]) == 0
    assert "depends most on: " + ", ".join(top) in study.table()


def test_a_range_must_hold_its_value(tmp_path):
    raw = json.loads(load_chip("BR166").path and open(load_chip("BR166").path).read())
    raw["hbm_peak_Bps"]["range"] = [2e12, 3e12]
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(raw))
    with pytest.raises(ChipSpecError, match="must hold its value"):
        load_chip(str(p))
