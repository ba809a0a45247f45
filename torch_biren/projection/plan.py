"""The parallel layout of a projection: cards = dp x tp x pp, experts over ep of them, the global
batch in micro-batches; checked against the model (ProjectionError names what does not divide)."""

from dataclasses import dataclass


class ProjectionError(ValueError):
    """Bad projection input; the message is one line for the user."""


@dataclass
class Plan:
    """Parallel layout: cards = dp x tp x pp; ep divides dp x tp (experts spread over those cards)."""

    cards: int
    dp: int
    tp: int
    pp: int
    ep: int
    micro_batch: int
    microbatches: int


def plan(cfg, cards, batch, dp=None, tp=1, pp=1, ep=1, micro_batch=None, mode="train"):
    for n, v in (("cards", cards), ("batch", batch), ("tp", tp), ("pp", pp), ("ep", ep)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ProjectionError(f"{n} must be a positive integer, got {v}")
    if cards % (tp * pp):
        raise ProjectionError(f"tp={tp} x pp={pp} does not divide {cards} cards")
    dp = dp or cards // (tp * pp)
    if dp * tp * pp != cards:
        raise ProjectionError(f"dp={dp} x tp={tp} x pp={pp} = {dp * tp * pp}, not the {cards} cards")
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
    return Plan(cards, dp, tp, pp, ep, mb, local // mb)
