"""Energy of a projected step: board power per card as data (power.json, each figure with its label
and source), a utilisation-based power model, energy per step and tokens per joule.

    P(u) = idle + (board - idle) x u,   idle = idle_fraction x board

u is the fraction of the step the card runs kernels: compute (the pipeline bubble and exposed
communication count as idle; communication kernels overlapped with compute are inside compute's
time). The board figure is the card's rated (maximum) power, so P(1) is an upper bound on what a
card running kernels the whole step draws. Host, network and cooling are outside unless `overhead`
(a PUE-like factor >= 1) is given.

    e = energy(result)                    -> Energy(watts_per_card, joules_per_step, tokens_per_joule, ...)
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from .plan import ProjectionError

_DATA = json.loads((Path(__file__).with_name("power.json")).read_text())


@dataclass(frozen=True)
class Board:
    name: str
    watts: float
    label: str
    source: str


def board(chip_or_variant):
    """The board power entry for a chip name (its default variant, e.g. BR166 -> BR166M) or a variant."""
    name = getattr(chip_or_variant, "name", chip_or_variant)
    variant = _DATA["chips"].get(name, name)
    entry = _DATA["boards"].get(variant)
    if entry is None:
        raise ProjectionError(f"no board power for '{name}'; known: {', '.join(_DATA['boards'])} "
                              "(pass board_watts=...)")
    return Board(variant, float(entry["watts"]), entry["label"], entry["source"])


IDLE_FRACTION = _DATA["idle_fraction"]["value"]


def power_watts(board_watts, utilisation, idle_fraction=IDLE_FRACTION):
    """Board power at `utilisation` in [0, 1]: idle + (board - idle) x u."""
    if not 0.0 <= utilisation <= 1.0:
        raise ProjectionError(f"utilisation must be in [0, 1], got {utilisation}")
    if not 0.0 <= idle_fraction <= 1.0:
        raise ProjectionError(f"idle_fraction must be in [0, 1], got {idle_fraction}")
    idle = idle_fraction * board_watts
    return idle + (board_watts - idle) * utilisation


@dataclass
class Energy:
    board: Board
    utilisation: float
    watts_per_card: float
    cards: int
    step_s: float
    joules_per_step: float
    tokens_per_step: float
    overhead: float
    assumptions: list = field(default_factory=list)

    @property
    def tokens_per_joule(self):
        return self.tokens_per_step / self.joules_per_step if self.joules_per_step else 0.0

    @property
    def kwh_per_million_tokens(self):
        return self.joules_per_step / self.tokens_per_step * 1e6 / 3.6e6 if self.tokens_per_step else 0.0

    def describe(self):
        b = self.board
        return (f"energy: {b.name} board {b.watts:g} W [{b.label}], utilisation {self.utilisation:.0%} -> "
                f"{self.watts_per_card:,.0f} W per card; {self.joules_per_step / 1e3:,.1f} kJ per step on "
                f"{self.cards} cards, {self.tokens_per_joule:,.2f} tokens/J ({self.kwh_per_million_tokens:,.3f} kWh "
                "per million tokens)")


def energy(result, board_watts=None, idle_fraction=None, overhead=1.0):
    """Energy of one projected step (a projection Result). board_watts overrides power.json."""
    if not overhead >= 1.0:
        raise ProjectionError(f"overhead is a PUE-like factor >= 1, got {overhead}")
    if board_watts is None:
        b = board(result.chip)
    else:
        if not board_watts > 0:
            raise ProjectionError(f"board_watts must be positive, got {board_watts}")
        b = Board(result.chip.name, float(board_watts), "user", "given")
    notes = []
    if idle_fraction is None:
        idle_fraction = IDLE_FRACTION
        notes.append(f"idle power {IDLE_FRACTION:.0%} of board power: {_DATA['idle_fraction']['source']}")
    step_s = result.step_ns * 1e-9
    u = min(1.0, result.compute_ns / result.step_ns) if result.step_ns else 0.0
    watts = power_watts(b.watts, u, idle_fraction)
    joules = watts * result.plan.cards * step_s * overhead
    tokens = result.tokens_per_s * step_s
    notes.append(f"board power {b.watts:g} W per card ({b.label}): {b.source}")
    return Energy(b, u, watts, result.plan.cards, step_s, joules, tokens, overhead, notes)
