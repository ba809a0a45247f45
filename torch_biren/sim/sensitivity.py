"""How a simulated result moves across the ranges of the chip's inferred numbers.

    study = sensitivity(chip, lambda c: {"step s": project(..., chip=c).step_ns / 1e9})
    print(study.table())          # each ranged number at its low and high end, one at a time
    study.top(3)                  # the three numbers the first metric depends on most

Every number of the chip file with a "range" (sim/chip.py) is set to its low end, then its high
end, with all others at their defaults (chip.at(field, end)); the result is recomputed for each.
A number's influence is the spread of the first metric between its two ends, relative to the
default result. One-at-a-time: interactions between numbers are not explored.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    field: str
    value: object
    range: tuple
    low: dict
    high: dict

    def swing(self, metric, base):
        """Spread of `metric` between the two ends, as a fraction of the default result."""
        lo, hi = self.low[metric], self.high[metric]
        return abs(hi - lo) / abs(base) if base else abs(hi - lo)


@dataclass(frozen=True)
class Study:
    chip_label: str
    base: dict
    rows: tuple

    @property
    def metric(self):
        return next(iter(self.base))

    def ranked(self):
        """Rows by influence on the first metric, largest first (ties by name)."""
        b = self.base[self.metric]
        return sorted(self.rows, key=lambda r: (-r.swing(self.metric, b), r.field))

    def top(self, n=3):
        return [r.field for r in self.ranked()[:n]]

    def table(self, fmt="{:,.4g}"):
        m, b = self.metric, self.base[self.metric]
        lines = [f"sensitivity of {m} on {self.chip_label} (default {fmt.format(b)}): each inferred number at "
                 "its range's ends, one at a time",
                 f"| number | default | range | {m} at low | {m} at high | swing |", "|---|---|---|---:|---:|---:|"]
        still = [r.field for r in self.ranked() if r.low == r.high == self.base]
        for r in self.ranked():
            if r.field in still:
                continue
            lo, hi = r.range
            scaled = _short(r.value) in ("table", "per pass")  # the range scales its efficiencies
            span = f"×{lo:g} .. ×{hi:g}" if scaled else f"{_short(lo)} .. {_short(hi)}"
            lines.append(f"| {r.field} | {_short(r.value)} | {span} | {fmt.format(r.low[m])} | "
                         f"{fmt.format(r.high[m])} | {100 * r.swing(m, b):.1f}% |")
        others = [k for k in self.base if k != m]
        if others:
            lines.append("")
            lines.append("other results at each end: " + "; ".join(
                f"{r.field}: " + ", ".join(f"{k} {fmt.format(r.low[k])} .. {fmt.format(r.high[k])}" for k in others)
                for r in self.ranked()[:3]))
        if still:
            lines.append(f"no effect: {', '.join(still)}")
        lines.append(f"depends most on: {', '.join(self.top(3))}")
        return "\n".join(lines)


def _short(v):
    if isinstance(v, float) and (abs(v) >= 1e4 or (v and abs(v) < 1e-3)):
        return f"{v:.3g}"
    if isinstance(v, (list, tuple)) and v and isinstance(v[0], (list, tuple)):
        return "table"
    if isinstance(v, dict):
        return "per pass"
    return str(v)


def _as_dict(result):
    if isinstance(result, dict):
        return {k: float(v) for k, v in result.items()}
    return {"result": float(result)}


def sensitivity(chip, result, fields=None):
    """result(chip) -> a number or {name: number} (the first one ranks the inputs); fields: the
    ranged numbers to vary (default every one the chip file gives a range)."""
    ranged = dict(chip.ranged())
    if fields is not None:
        unknown = [f for f in fields if f not in ranged]
        if unknown:
            raise KeyError(f"{', '.join(unknown)}: not ranged numbers of {chip.name} (ranged: {', '.join(ranged)})")
        ranged = {f: ranged[f] for f in fields}
    if not ranged:
        raise ValueError(f"{chip.name}'s spec gives no number a range; nothing to vary")
    base = _as_dict(result(chip))
    rows = tuple(Row(f, q.value, q.range, _as_dict(result(chip.at(f, "low"))), _as_dict(result(chip.at(f, "high"))))
                 for f, q in ranged.items())  # fmt: skip
    return Study(chip.label(), base, rows)
