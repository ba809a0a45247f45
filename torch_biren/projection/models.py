"""The models a projection can take, by name: the zoo's published configurations, the models of the
published runs and a 100B-class dense model, and the tiny zoo models (tiny-<family>), with their
layer counts and per-card (tensor-parallel) shapes."""

from ..adapt import flops, zoo
from .plan import ProjectionError

# Models of the published runs (published-runs.md) and a 100B-class dense model, as zoo "llama"
# configs. GPT's 4h GELU MLP (2 matrices, 8h^2 weights) is written as a SwiGLU MLP of width 8h/3
# (3 matrices, the same 8h^2 weights and FLOPs); attention is multi-head (kv heads = heads).
EXTRA = {
    "GPT-175B": dict(vocab_size=51200, hidden_size=12288, intermediate_size=32768, num_hidden_layers=96,
                     num_attention_heads=96, num_key_value_heads=96, max_position_embeddings=2048),
    "GPT-1T": dict(vocab_size=51200, hidden_size=25600, intermediate_size=68264, num_hidden_layers=128,
                   num_attention_heads=160, num_key_value_heads=160, max_position_embeddings=2048),
    "GPT-100B": dict(vocab_size=51200, hidden_size=10240, intermediate_size=27304, num_hidden_layers=80,
                     num_attention_heads=80, num_key_value_heads=80, max_position_embeddings=4096),
    # BLOOM (BigScience 2022, arXiv 2211.05100): 70 layers, hidden 14336, 112 heads, vocab 250,680, 4h GELU MLP
    # written as SwiGLU of width 8h/3 (rounded up to a multiple of 8); ALiBi is not modelled.
    "BLOOM-176B": dict(vocab_size=250680, hidden_size=14336, intermediate_size=38232, num_hidden_layers=70,
                       num_attention_heads=112, num_key_value_heads=112, max_position_embeddings=2048),
    "Llama-3-405B": dict(vocab_size=128256, hidden_size=16384, intermediate_size=53248, num_hidden_layers=126,
                         num_attention_heads=128, num_key_value_heads=8, max_position_embeddings=131072,
                         rope_theta=500000.0),
}  # fmt: skip
ALIASES = {"deepseek-v3": "DeepSeek-V3-671B", "gpt-1008b": "GPT-1T", "llama3-405b": "Llama-3-405B"}


def model_names():
    return [*zoo.PUBLISHED, *EXTRA, *(f"tiny-{n}" for n in zoo.names())]


def resolve(name):
    """Canonical model name for a case-insensitive name or alias; ProjectionError if unknown."""
    low = str(name).lower()
    low = ALIASES.get(low, low).lower()
    for n in model_names():
        if n.lower() == low:
            return n
    raise ProjectionError(f"unknown model '{name}'; known: {', '.join(model_names())}")


def config(name, **layers):
    """HF config of a model by canonical name, with layer-count overrides."""
    if name.startswith("tiny-"):
        return zoo.config(name[5:], **layers)
    if name in EXTRA:
        return zoo.family_config("llama", **{**EXTRA[name], **layers, "tie_word_embeddings": False})
    return zoo.published_config(name, **layers)


def experts(cfg):
    e = getattr(cfg, "num_experts", None) or getattr(cfg, "n_routed_experts", None) or 0
    return e, (cfg.num_experts_per_tok if e else 0)


def dense_layers(cfg):
    """Leading dense layers of a MoE model (DeepSeek's first_k_dense_replace); all for dense models."""
    if not experts(cfg)[0]:
        return cfg.num_hidden_layers
    return min(getattr(cfg, "first_k_dense_replace", 0) or 0, cfg.num_hidden_layers)


def variant(name, dense, moe):
    """Config with `dense` dense and `moe` MoE layers."""
    base = config(name)
    if experts(base)[0] and hasattr(base, "first_k_dense_replace"):
        return config(name, num_hidden_layers=dense + moe, first_k_dense_replace=dense)
    return config(name, num_hidden_layers=dense + moe)


def shard(cfg, tp):
    """Per-card shapes under tensor parallelism of degree tp (set in place)."""
    heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads
    if not getattr(cfg, "head_dim", None) and not hasattr(cfg, "kv_lora_rank"):
        cfg.head_dim = cfg.hidden_size // heads
    if tp == 1:
        return cfg
    cfg.num_attention_heads = heads // tp
    cfg.num_key_value_heads = max(1, kv // tp)  # fewer KV heads than cards: each card keeps one
    cfg.intermediate_size = -(-cfg.intermediate_size // tp)
    cfg.vocab_size = -(-cfg.vocab_size // tp)
    return cfg


def model_flops(name, batch, seq, mode, context):
    """The model FLOPs of one step (train: forward and backward; prefill; decode: one token)."""
    cfg = config(name)
    n = flops.param_counts(cfg)["model"]
    if mode == "train":
        return flops.train_flops(cfg, batch, seq, n)
    if mode == "prefill":
        return flops.flops_per_token(cfg, seq, n, training=False) * batch * seq
    return flops.flops_per_token(cfg, context + 1, n, training=False) * batch
