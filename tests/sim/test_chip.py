import json

import pytest

from torch_biren.sim import costs
from torch_biren.sim.chip import (
    CHIPS_DIR,
    LABELS,
    ChipSpecError,
    available_chips,
    current_chip,
    load_chip,
    on_chip_change,
    set_chip,
    use_chip,
)

USABLE = [n for n in available_chips() if n != "BR110"]
MiB = 2**20


def test_bundled_chips():
    assert set(available_chips()) == {"A100", "BR100", "BR104", "BR106", "BR110", "BR166", "H100", "H200", "H800"}


@pytest.mark.parametrize("name", USABLE)
def test_every_number_has_a_label_and_a_source(name):
    chip = load_chip(name)
    for field, q in chip.quantities():
        assert q.label in LABELS, field
        assert q.source.strip(), field


def test_br166_defaults():
    c = load_chip("BR166")
    assert c.name == "BR166" and c.dies == 2 and c.mode == "UMA" and c.instances == 1
    assert c.memory_bytes == 65024 * MiB and c.q("memory_bytes").label == "R"
    assert c.q("die_link_Bps").value == 896e9
    assert c.matrix_flops("bf16") == 1024e12 and c.q("matrix_flops.bf16").label == "I"
    assert c.matrix_tile == (64, 64) and c.compute_units == 32
    assert c.host_link_Bps == 64e9
    # no FP64 hardware: emulated on the vector units, the slowdown a labelled parameter
    assert c.q("fp64_vector_flops").value is None
    assert c.q("fp64_emulation_slowdown").label == "I"
    assert c.matrix_flops("fp64") == c.vector_flops / c.fp64_slowdown
    assert "hbm_peak_Bps" in c.inferred() and "memory_bytes" not in c.inferred()


def test_gpu_specs_store_dense_peaks():
    assert load_chip("H100").matrix_flops("bf16") == 989e12
    assert load_chip("A100").matrix_flops("bf16") == 312e12
    h200 = load_chip("H200")
    assert h200.matrix_flops("bf16") == 989e12 and h200.hbm_peak_Bps == 4.8e12


def test_br110_is_a_template():
    with pytest.raises(ChipSpecError, match="template"):
        load_chip("BR110")


def test_names_are_case_insensitive_and_unknown_names_list_the_known():
    assert load_chip("br106").name == "BR106"
    with pytest.raises(ValueError, match="BR166"):
        load_chip("BR999")


def _user_file(tmp_path, **changes):
    raw = json.loads((CHIPS_DIR / "BR106.json").read_text())
    raw.update(changes)
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(raw))
    return path


def test_user_spec_file(tmp_path):
    path = _user_file(tmp_path, name="MyBR106", hbm_peak_Bps={"value": 1e12, "label": "R", "source": "my lab"})
    c = load_chip(str(path))
    assert c.name == "MyBR106" and c.hbm_peak_Bps == 1e12 and c.q("hbm_peak_Bps").source == "my lab"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"hbm_peak_Bps": {"value": 1e12, "label": "X", "source": "s"}}, "label"),
        ({"hbm_peak_Bps": {"value": 1e12, "label": "I"}}, "value.*label.*source"),
        ({"hbm_peak_Bps": {"value": None, "label": "I", "source": "unknown"}}, "no value"),
        ({"launch_us": {"value": 5, "label": "I", "source": "s"}}, "unknown fields"),
        ({"mem_efficiency": {"value": [[0, 0.3], [1e6, 0.6]], "label": "I", "source": "s"}}, "decreasing"),
        ({"materialised_attention_efficiency": {"value": {"fwd": 0.8}, "label": "R", "source": "s"}},
         "materialised_attention_efficiency: must be"),
        ({"attention_efficiency": {"value": {"fwd": 1.5, "bwd": 0.7}, "label": "R", "source": "s"}},
         r"attention_efficiency: must be .* in \(0, 1\]"),
    ],
)
def test_bad_spec_files_are_refused(tmp_path, changes, message):
    with pytest.raises(ChipSpecError if "decreasing" not in message else ValueError, match=message):
        load_chip(str(_user_file(tmp_path, **changes)))


def test_missing_field_is_named(tmp_path):
    raw = json.loads((CHIPS_DIR / "BR106.json").read_text())
    del raw["launch_ns"]
    path = tmp_path / "x.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ChipSpecError, match="missing launch_ns"):
        load_chip(str(path))


def test_environment_selects_the_default(monkeypatch, tmp_path):
    assert set_chip(None).name == "BR166"
    monkeypatch.setenv("TORCH_BIREN_CHIP", "BR106")
    assert set_chip(None).name == "BR106" and current_chip().name == "BR106"
    monkeypatch.setenv("TORCH_BIREN_CHIP", str(_user_file(tmp_path, name="Mine")))
    assert set_chip(None).name == "Mine"
    monkeypatch.setenv("TORCH_BIREN_CHIP", "BR166")
    monkeypatch.setenv("TORCH_BIREN_MEMORY_MODE", "numa")
    assert set_chip(None).instances == 2
    monkeypatch.delenv("TORCH_BIREN_MEMORY_MODE")
    monkeypatch.setenv("TORCH_BIREN_SVI", "4")
    assert set_chip(None).label() == "BR166 (SVI 1/4)"


def test_set_chip_tells_listeners_and_use_chip_restores():
    seen = []
    on_chip_change(seen.append)
    h100 = set_chip("H100")
    assert seen == [h100] and current_chip() is h100
    with use_chip(load_chip("BR166").partition(2)) as c:
        assert current_chip() is c and c.instances == 2
    assert current_chip() is h100
    assert [s.label() for s in seen] == ["H100", "BR166 (SVI 1/2)", "H100"]


def test_a_refused_chip_is_rolled_back():
    before = current_chip()
    calls = []

    def picky(chip):
        calls.append(chip.name)
        if chip.name == "A100":
            raise RuntimeError("no A100 here")

    on_chip_change(picky)
    with pytest.raises(RuntimeError, match="no A100"):
        set_chip("A100")
    assert current_chip() is before and calls == ["A100", before.name]


def test_timeline_params():
    p = load_chip("BR166").timeline_params()
    assert set(p) == {"launch_ns", "host_issue_ns", "mem_bw_Bps", "vector_flops", "mem_eff_table", "matrix_eff_table",
                      "host_link_Bps", "card_link_Bps", "fp64_slowdown", "graph_launch_ns",
                      "graph_kernel_gap_ns", "die_link_Bps", "die_share", "die_latency_ns", "card_devices",
                      "die_devices"}  # fmt: skip
    assert p["mem_eff_table"] == [[1e8, 0.91], [1e7, 0.75], [1e6, 0.6], [0.0, 0.3]]
    assert p["mem_bw_Bps"] == 1640e9 and p["launch_ns"] == 5000 and p["host_issue_ns"] == 20000
    assert p["card_link_Bps"] == 8 * 32e9 and p["host_link_Bps"] == 64e9 and p["fp64_slowdown"] == 20
    assert load_chip("BR104").timeline_params()["card_link_Bps"] == 64e9  # no BLink figure: over PCIe


def test_uma_die_link_is_its_own_limit():
    c = load_chip("BR166")
    assert c.mem_bw_Bps == 1640e9 and c.die_link_Bps == 896e9 and c.die_share == 0.5
    p = c.timeline_params()
    assert (p["die_share"], p["die_latency_ns"], p["card_devices"], p["die_devices"]) == (0.5, 500, 1, 0)
    slow = c.replace(die_link_Bps=400e9)
    assert slow.mem_bw_Bps == 1640e9 and slow.q("die_link_Bps").source == "user override"
    big = 2**30  # the die link (0.5 * 1 GiB / 400 GB/s) binds before HBM (1 GiB / 1492 GB/s)
    assert costs.memory_ns(big, slow) == pytest.approx(500 + big * 0.5 / 400e9 * 1e9)
    numa = c.with_mode("NUMA").timeline_params()
    assert (numa["die_share"], numa["card_devices"], numa["die_devices"]) == (0, 2, 1)
    assert numa["card_link_Bps"] == 8 * 32e9 / 2  # each die has its half of the BLinks


def test_numa_gives_each_die_its_own_device():
    uma, numa = load_chip("BR166"), load_chip("BR166").with_mode("NUMA")
    assert numa.instances == 2 and numa.label() == "BR166 (NUMA)"
    assert numa.memory_bytes == 32512 * MiB  # HAMi's half card
    assert numa.compute_units == 16 and numa.matrix_flops("bf16") == uma.matrix_flops("bf16") / 2
    assert numa.vector_flops == uma.vector_flops / 2
    big = 2**30
    local = costs.copy(big, "d2d", numa)
    assert local.bytes / local.ns * 1e9 == pytest.approx(820e9, rel=0.01)  # HAMi's die-local figure
    whole = costs.copy(big, "d2d", uma)
    assert whole.bytes / whole.ns * 1e9 == pytest.approx(1640e9 * 0.91, rel=0.01)
    # one die, one device: a big GEMM takes twice as long, a memory-bound kernel ~1.8x
    g = costs.gemm(4096, 4096, 4096, chip=numa).ns / costs.gemm(4096, 4096, 4096, chip=uma).ns
    assert g == pytest.approx(2, rel=0.04)
    assert costs.copy(big, chip=numa).ns / whole.ns == pytest.approx(1492 / 820, rel=0.02)


def test_svi_partitions_divide_the_card():
    card = load_chip("BR166")
    for n, reported in ((2, 820e9), (4, 395e9)):
        part = card.partition(n)
        assert part.instances == n and part.memory_bytes == 65024 * MiB // n
        assert part.compute_units == 32 // n and part.matrix_flops("bf16") == 1024e12 / n
        assert part.l2_bytes == card.l2_bytes // n
        c = costs.copy(2**28, "d2d", part)
        assert c.bytes / c.ns * 1e9 == pytest.approx(reported, rel=0.02)  # HAMi
    assert card.partition(4).partition(1).instances == 1


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: load_chip("BR106").with_mode("NUMA"), "one die"),
        (lambda: load_chip("BR166").partition(3), "SVI partitions"),
        (lambda: load_chip("BR166").with_mode("NUMA").partition(2), "die-local"),
        (lambda: load_chip("BR166").with_mode("HBM"), "UMA or NUMA"),
        (lambda: load_chip("BR166").matrix_flops("fp8"), "no fp8 matrix peak"),
    ],
)
def test_impossible_configurations(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_an_override_of_a_per_pass_efficiency_is_checked():
    with pytest.raises(ChipSpecError, match="materialised_attention_efficiency: must be"):
        load_chip("BR166").replace(materialised_attention_efficiency=0.5)
