"""Energy of a projected step (projection/energy.py): board power with provenance, the utilisation
power model and tokens per joule, by hand."""

import pytest

from torch_biren.projection import ProjectionError, project
from torch_biren.projection import energy as E


def test_board_power_has_provenance_and_biren_variants():
    b = E.board("BR166")
    assert (b.name, b.watts, b.label) == ("BR166M", 550.0, "R") and "br1xx-specs.md" in b.source
    assert E.board("BR166L").watts == 600 and E.board("BR166C").watts == 300
    assert E.board("H100").watts == 700 and E.board("A100").watts == 400
    with pytest.raises(ProjectionError, match="no board power for 'BR999'; known: BR166M"):
        E.board("BR999")


def test_power_model_by_hand():
    assert E.power_watts(700, 0.0, idle_fraction=0.1) == pytest.approx(70)
    assert E.power_watts(700, 1.0, idle_fraction=0.1) == pytest.approx(700)
    assert E.power_watts(700, 0.5, idle_fraction=0.1) == pytest.approx(70 + 630 * 0.5)
    with pytest.raises(ProjectionError, match=r"utilisation must be in \[0, 1\], got 1.5"):
        E.power_watts(700, 1.5)


def test_energy_of_a_step_by_hand():
    r = project("qwen2.5-7b", cards=8, batch=8, seq=1024, chip="H100")
    e = E.energy(r, idle_fraction=0.2)
    u = r.compute_ns / r.step_ns
    watts = 140 + 560 * u
    assert e.utilisation == pytest.approx(u) and e.watts_per_card == pytest.approx(watts)
    assert e.joules_per_step == pytest.approx(watts * 8 * r.step_ns * 1e-9)
    assert e.tokens_per_joule == pytest.approx(8 * 1024 / e.joules_per_step)
    assert E.energy(r, idle_fraction=0.2, overhead=1.5).joules_per_step == pytest.approx(1.5 * e.joules_per_step)
    assert "tokens/J" in e.describe()
    default = E.energy(r)
    assert any("idle power" in a for a in default.assumptions)  # the inferred idle fraction is named


def test_more_communication_lowers_utilisation_and_power():
    # The same model over the network (dp 16 across two servers): more exposed communication per step.
    one = E.energy(project("qwen2.5-7b", cards=8, batch=16, seq=1024, chip="BR166"))
    two = E.energy(project("qwen2.5-7b", cards=16, batch=16, seq=1024, chip="BR166"))
    assert two.utilisation < one.utilisation and two.watts_per_card < one.watts_per_card
