"""Size-dependent efficiency tables (Calculon's idea): rows of (minimum size, efficiency), largest
size first, where size is FLOPs for matrix work and bytes for memory traffic.

The rows are read as points on a curve, linear between neighbours and flat beyond the ends, not as
Calculon's steps: with steps, work just above a threshold finishes sooner than work just below it.
Linear pieces keep time = size / (peak * eff(size)) non-decreasing whenever the rows themselves are
(size / eff grows from row to row), which check_table enforces. The interpolation itself is the C++
roofline's (csrc/sim/roofline.cpp interpolate), read through Chip.mem_efficiency/matrix_efficiency.
"""


def check_table(rows, what):
    """Validate a table and return it as a tuple of (float, float) pairs, largest size first."""
    if not rows:
        raise ValueError(f"{what}: efficiency table is empty")
    table = tuple((float(s), float(e)) for s, e in rows)
    for s, e in table:
        if s < 0 or not 0 < e <= 1:
            raise ValueError(f"{what}: row ({s:g}, {e:g}) needs size >= 0 and 0 < efficiency <= 1")
    for (s_hi, e_hi), (s_lo, e_lo) in zip(table, table[1:]):
        if not s_hi > s_lo:
            raise ValueError(f"{what}: sizes must be strictly decreasing, got {s_hi:g} before {s_lo:g}")
        if s_hi / e_hi < s_lo / e_lo:
            raise ValueError(
                f"{what}: size {s_hi:g} at efficiency {e_hi:g} would finish sooner than size {s_lo:g} "
                f"at {e_lo:g}; size/efficiency must grow with size"
            )
    return table
