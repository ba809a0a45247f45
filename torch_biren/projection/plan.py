"""The parallel layout of a projection: cards = dp x tp x pp x cp, experts over ep of them, the global
batch in micro-batches; checked against the model (ProjectionError names what does not divide).
Without a batch: one micro-batch per data-parallel replica, 4 x pp of them when pipelined (the
bubble (pp - 1) / (m + pp - 1) then stays under 20%)."""

from dataclasses import dataclass


class ProjectionError(ValueError):
    """Bad projection input; the message is one line for the user."""


@dataclass
class Plan:
    """Parallel layout: cards = dp x tp x pp x cp; ep divides dp x tp (experts spread over those cards)."""

    cards: int
    dp: int
    tp: int
    pp: int
    ep: int
    micro_batch: int
    microbatches: int
    cp: int = 1
    batch_defaulted: bool = False

    @property
    def expert_dp(self):
        """Replicas of each routed expert (its expert-data-parallel group): the dp x tp cards its
        layer spans hold every expert, ep cards to a set of them, each expert whole."""
        return max(1, self.dp * self.tp // self.ep)


def default_batch(cards, tp=1, pp=1, cp=1, dp=None, micro_batch=None, mode="train"):
    dp = dp or max(1, cards // (tp * pp * cp))
    return dp * (micro_batch or 1) * (4 * pp if mode == "train" and pp > 1 else 1)


def plan(cfg, cards, batch, dp=None, tp=1, pp=1, ep=1, micro_batch=None, mode="train", cp=1, seq=None):
    defaulted = batch is None
    for n, v in (("cards", cards), ("tp", tp), ("pp", pp), ("ep", ep), ("cp", cp)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ProjectionError(f"{n} must be a positive integer, got {v}")
    if cards % (tp * pp * cp):
        raise ProjectionError(f"tp={tp} x pp={pp}{f' x cp={cp}' if cp > 1 else ''} does not divide {cards} cards")
    if defaulted:
        batch = default_batch(cards, tp, pp, cp, dp, micro_batch, mode)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch <= 0:
        raise ProjectionError(f"batch must be a positive integer, got {batch}")
    dp = dp or cards // (tp * pp * cp)
    if dp * tp * pp * cp != cards:
        raise ProjectionError(f"dp={dp} x tp={tp} x pp={pp}{f' x cp={cp}' if cp > 1 else ''} = {dp * tp * pp * cp},"
                              f" not the {cards} cards")
    if cp > 1 and mode == "decode":
        raise ProjectionError("cp > 1 (context parallelism) applies to training and prefill, not decode")
    if cp > 1 and seq is not None and seq % (2 * cp):
        raise ProjectionError(f"cp={cp} needs the sequence ({seq}) to divide into 2 x cp chunks (load-balanced causal)")
    if cfg.num_attention_heads % tp:
        raise ProjectionError(f"tp={tp} does not divide the {cfg.num_attention_heads} attention heads")
    kv = cfg.num_key_value_heads
    if kv > tp and kv % tp:
        raise ProjectionError(f"tp={tp} does not divide the {kv} key/value heads")
    if pp > cfg.num_hidden_layers:
        raise ProjectionError(f"pp={pp} exceeds the {cfg.num_hidden_layers} layers")
    from .models import experts as experts_of

    experts = experts_of(cfg)[0]
    if ep > 1 and not experts:
        raise ProjectionError(f"ep={ep} needs a mixture-of-experts model")
    if ep > 1 and (experts % ep or (dp * tp) % ep):
        raise ProjectionError(f"ep={ep} must divide the {experts} experts and dp x tp = {dp * tp}")
    if batch % dp:
        raise ProjectionError(f"dp={dp} does not divide the global batch of {batch}")
    local = batch // dp
    mb = micro_batch or (1 if mode == "train" and pp > 1 else local)
    if local % mb:
        raise ProjectionError(f"micro-batch {mb} does not divide the per-replica batch of {local}")
    return Plan(cards, dp, tp, pp, ep, mb, local // mb, cp, defaulted)
