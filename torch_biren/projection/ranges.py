"""The low-high range of a projection from the ranges of the chip's inferred numbers.

    r = project("qwen2.5-72b", cards=64, batch=256, seq=4096, tp=8, pp=4, ranges=True)
    r.ranges.low["step_s"], r.ranges.high["step_s"], r.ranges.top(3)

Each number the chip file gives a "range" is set to its low end and then its high end, the others
at their values, and the step re-assembled (sim/sensitivity.py: one at a time; the traces are
re-priced, not re-traced, since no chip number changes which kernels run at which shapes). The
range combines those one-at-a-time changes as the law of propagation of uncertainty does for
uncorrelated inputs (JCGM 100:2008, the GUM, 5.1.2, with the changes standing for the sensitivity
coefficient times the input's half-range): low = value - sqrt(sum of squared decreases), high =
value + sqrt(sum of squared increases), each number's larger move in each direction. It reads as
"the spread the inferred numbers' ranges leave, if they are independent"; `worst` and `best` (every
number at its worse / better end for the step at once) are the extremes over all the ranges together
where the step moves monotonically in each number, as the cost formulas do.
"""

import math
from dataclasses import dataclass

from ..sim.sensitivity import sensitivity


def _metrics(result):
    out = {"step_s": result.step_ns / 1e9, "tokens_per_s": result.tokens_per_s, "mfu": result.mfu}
    if result.mode == "decode":  # decode reports its achieved memory bandwidth beside MFU
        out["hbm_GBps"] = result.decode_Bps / 1e9
    return out


@dataclass(frozen=True)
class Ranges:
    value: dict  # metric -> the projection's value
    low: dict  # metric -> the range's low end
    high: dict
    worst: dict  # metric at every number's worse end for the step, together
    best: dict
    study: object  # sim.sensitivity.Study: each number's ends, one at a time
    moved: tuple  # the ranged numbers that change the step at all

    def top(self, n=3):
        """The n numbers the step time moves most with, largest first."""
        return [f for f in self.study.top(len(self.study.rows)) if f in self.moved][:n]

    def swing(self, field):
        """The spread of the step time between the number's two ends, as a fraction of the value."""
        row = next(r for r in self.study.rows if r.field == field)
        return row.swing("step_s", self.value["step_s"])

    def as_dict(self):
        rows = {r.field: {"range": list(r.range) if isinstance(r.range, tuple) else r.range,
                          "at_low": r.low, "at_high": r.high} for r in self.study.rows if r.field in self.moved}
        return {"method": "one at a time, combined in quadrature (GUM 5.1.2, uncorrelated inputs)",
                "low": self.low, "high": self.high, "worst_together": self.worst, "best_together": self.best,
                "most_sensitive_to": self.top(3), "numbers": rows}


def _combine(value, ends):
    """(low, high): value minus / plus the root sum of squares of the decreases / increases."""
    down = math.sqrt(sum(min(0.0, *(e - value for e in pair)) ** 2 for pair in ends))
    up = math.sqrt(sum(max(0.0, *(e - value for e in pair)) ** 2 for pair in ends))
    return value - down, value + up


def ranges(chip, assemble):
    """assemble(chip) -> Result: the projection on `chip`; its Ranges over chip's ranged numbers."""
    study = sensitivity(chip, lambda c: _metrics(assemble(c)))
    base = study.base
    moved = tuple(r.field for r in study.rows if r.low != base or r.high != base)
    low, high = {}, {}
    for m in base:
        low[m], high[m] = _combine(base[m], [(r.low[m], r.high[m]) for r in study.rows])
    # Every number at the end that lengthens (shortens) the step, together.
    worst_chip, best_chip = chip, chip
    for r in study.rows:
        if r.field in moved:
            slow = "low" if r.low["step_s"] > r.high["step_s"] else "high"
            worst_chip = worst_chip.at(r.field, slow)
            best_chip = best_chip.at(r.field, "high" if slow == "low" else "low")
    worst = _metrics(assemble(worst_chip)) if moved else dict(base)
    best = _metrics(assemble(best_chip)) if moved else dict(base)
    return Ranges(dict(base), low, high, worst, best, study, moved)
