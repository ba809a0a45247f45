import pytest

from torch_biren.sim.chip import load_chip
from torch_biren.sim.efficiency import check_table

TABLE = check_table([[100e6, 0.9], [10e6, 0.75], [1e6, 0.6], [0, 0.3]], "test")
CHIP = load_chip("BR166").replace(mem_efficiency=[list(r) for r in TABLE])  # interpolated by the C++ roofline


def test_rows_are_points_joined_by_lines():
    assert CHIP.mem_efficiency(100e6) == 0.9
    assert CHIP.mem_efficiency(1e9) == 0.9
    assert CHIP.mem_efficiency(10e6) == 0.75
    assert CHIP.mem_efficiency(5.5e6) == pytest.approx(0.675)
    assert CHIP.mem_efficiency(0.5e6) == pytest.approx(0.45)
    assert CHIP.mem_efficiency(0) == 0.3


def test_size_over_efficiency_never_drops():
    sizes = [x * 1e4 for x in range(1, 20000)]
    times = [s / CHIP.mem_efficiency(s) for s in sizes]
    assert all(a <= b for a, b in zip(times, times[1:]))


@pytest.mark.parametrize(
    "rows, message",
    [
        ([], "empty"),
        ([[1e6, 0.6], [1e7, 0.75]], "strictly decreasing"),
        ([[1e6, 1.2], [0, 0.3]], "0 < efficiency <= 1"),
        ([[2e6, 0.9], [1e6, 0.1], [0, 0.05]], "finish sooner"),  # 2 MB at 0.9 beats 1 MB at 0.1
    ],
)
def test_bad_tables_are_refused(rows, message):
    with pytest.raises(ValueError, match=message):
        check_table(rows, "test")
