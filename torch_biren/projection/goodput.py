"""Goodput of a long job under failures: a job of n cards, each failing at rate lambda (per hour),
fails every M = 1 / (n lambda) hours on average. It checkpoints every tau of work, each save taking
delta; a failure costs the restart/recovery time R plus, on average, half a checkpoint period of
lost work. First-order model (Young 1974; Daly 2006):

    tau (Young) = sqrt(2 delta M)
    tau (Daly)  = sqrt(2 delta M) (1 + sqrt(delta / (2M)) / 3 + delta / (18 M)) - delta   (delta < 2M; else M)
    goodput     = tau / (tau + delta) x (1 - (R + (tau + delta) / 2) / M)
    lost / day  = 24 h x (1 - goodput)

delta comes from the projection (Result.checkpoint["save_s"]); lambda and R are parameters.

    g = goodput(cards=1024, failure_rate_per_card_h=1e-5, checkpoint_s=140, recovery_s=300)
"""

import math
from dataclasses import dataclass

from .plan import ProjectionError

DAY_S = 86400.0


def job_mtbf_s(cards, failure_rate_per_card_h):
    """Mean time between failures of a job on `cards` cards, seconds."""
    if isinstance(cards, bool) or not isinstance(cards, int) or cards <= 0:
        raise ProjectionError(f"cards must be a positive integer, got {cards!r}")
    if not failure_rate_per_card_h > 0:
        raise ProjectionError(f"failure_rate_per_card_h must be positive, got {failure_rate_per_card_h}")
    return 3600.0 / (cards * failure_rate_per_card_h)


def young_interval_s(checkpoint_s, mtbf_s):
    return math.sqrt(2.0 * checkpoint_s * mtbf_s)


def daly_interval_s(checkpoint_s, mtbf_s):
    d, m = checkpoint_s, mtbf_s
    if d >= 2 * m:
        return m
    return math.sqrt(2 * d * m) * (1 + math.sqrt(d / (2 * m)) / 3 + d / (18 * m)) - d


@dataclass(frozen=True)
class Goodput:
    cards: int
    mtbf_s: float
    checkpoint_s: float
    recovery_s: float
    interval_s: float
    goodput: float

    @property
    def lost_per_day_s(self):
        return DAY_S * (1.0 - self.goodput)

    def describe(self):
        return (f"goodput: job MTBF {self.mtbf_s / 3600:,.1f} h on {self.cards} cards, checkpoint {self.checkpoint_s:,.0f} s"
                f" every {self.interval_s / 3600:,.2f} h (Daly), recovery {self.recovery_s:,.0f} s -> goodput "
                f"{100 * self.goodput:.1f}%, {self.lost_per_day_s / 60:,.0f} min lost per day")


def goodput(cards, failure_rate_per_card_h, checkpoint_s, recovery_s, interval_s=None):
    """Expected goodput (see the module doc); interval_s defaults to Daly's optimum."""
    m = job_mtbf_s(cards, failure_rate_per_card_h)
    for n, v in (("checkpoint_s", checkpoint_s), ("recovery_s", recovery_s)):
        if not v >= 0:
            raise ProjectionError(f"{n} must be >= 0, got {v}")
    tau = daly_interval_s(checkpoint_s, m) if interval_s is None else float(interval_s)
    if not tau > 0:
        raise ProjectionError(f"checkpoint interval must be positive, got {tau}")
    g = tau / (tau + checkpoint_s) * (1.0 - (recovery_s + (tau + checkpoint_s) / 2.0) / m)
    return Goodput(cards, m, float(checkpoint_s), float(recovery_s), tau, max(0.0, g))


def from_result(result, failure_rate_per_card_h, recovery_s=None, interval_s=None):
    """Goodput of a projected training job: its cards and checkpoint save time; recovery defaults to
    the projected checkpoint restore time."""
    ckpt = result.checkpoint
    if not ckpt:
        raise ProjectionError("goodput needs a training projection (it has the checkpoint time)")
    recovery = ckpt["restore_s"] if recovery_s is None else recovery_s
    return goodput(result.plan.cards, failure_rate_per_card_h, ckpt["save_s"], recovery, interval_s)


def rate_from_fault_free_days(cards, days):
    """The per-card failure rate (per hour) at which `cards` cards run `days` days between faults."""
    if not days > 0:
        raise ProjectionError(f"days must be positive, got {days}")
    return 1.0 / (cards * days * 24.0)
