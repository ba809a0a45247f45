"""The model zoo: real HF transformers classes built from small, seeded random configs (never
downloaded), and beside each family the published full-size configs as data.

Each tiny model keeps its architecture's distinctive features (GQA, qk-norm, MoE, MLA) at a size
that runs in seconds on a CPU. The published configs are the values of each model's config.json on
the Hugging Face hub, written out here so that nothing is downloaded; `published_config(name)` turns
one into the HF config object (build it under `torch.device("meta")` to get the full-size module
tree without allocating it), and `torch_biren.adapt.flops` counts its parameters and FLOPs.
"""

import torch

VOCAB = 256  # byte-level tokenizer (torch_biren.adapt.data)

# family -> (HF config class, HF causal-LM class)
FAMILIES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM"),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM"),
    "qwen2-moe": ("Qwen2MoeConfig", "Qwen2MoeForCausalLM"),
    "qwen3-moe": ("Qwen3MoeConfig", "Qwen3MoeForCausalLM"),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM"),
    "deepseek-v2": ("DeepseekV2Config", "DeepseekV2ForCausalLM"),
    "deepseek-v3": ("DeepseekV3Config", "DeepseekV3ForCausalLM"),
}

# family -> tiny config (on top of TINY_COMMON)
TINY_COMMON = dict(vocab_size=VOCAB, max_position_embeddings=256, tie_word_embeddings=False, attention_dropout=0.0)
TINY = {
    "llama": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2),
    "qwen2": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2),
    "qwen3": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16),
    "qwen2-moe": dict(hidden_size=64, intermediate_size=128, moe_intermediate_size=32,
                      shared_expert_intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, num_experts=4, num_experts_per_tok=2, norm_topk_prob=False),
    "qwen3-moe": dict(hidden_size=64, intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_experts=4, num_experts_per_tok=2,
                      norm_topk_prob=True),
    "mixtral": dict(hidden_size=64, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2),
    "deepseek-v2": dict(hidden_size=64, intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=4, n_routed_experts=4, n_shared_experts=1,
                        num_experts_per_tok=2, first_k_dense_replace=1, q_lora_rank=None, kv_lora_rank=32,
                        qk_rope_head_dim=8, qk_nope_head_dim=16, v_head_dim=16, n_group=1, topk_group=1,
                        topk_method="greedy"),
    "deepseek-v3": dict(hidden_size=64, intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=4, n_routed_experts=4, n_shared_experts=1,
                        num_experts_per_tok=2, first_k_dense_replace=1, q_lora_rank=32, kv_lora_rank=32,
                        qk_rope_head_dim=8, qk_nope_head_dim=16, v_head_dim=16, n_group=1, topk_group=1),
}  # fmt: skip

# Published full-size configs: name -> (family, config.json values that shape the model). Values as
# in each repository's config.json (bos/eos ids, dtype and other run-time fields left out). Totals
# (checked in tests/adapt/test_zoo.py against the HF classes built on the meta device): Llama-3-8B
# 8.03B; Qwen2.5-7B 7.62B, -72B 72.7B; Qwen3-8B 8.19B; Qwen2-57B-A14B 57.4B (14.2B active); Qwen3-30B-A3B
# 30.5B (3.3B active); Mixtral-8x7B 46.7B (12.9B active);
# DeepSeek-V2-Lite 15.7B (2.4B active), -V2 236B (21B active); DeepSeek-V3 671B (37B active, the
# multi-token-prediction layer not counted).
_YARN_V2 = dict(type="yarn", factor=40, original_max_position_embeddings=4096, beta_fast=32, beta_slow=1,
                mscale=0.707, mscale_all_dim=0.707)
PUBLISHED = {
    "Llama-3-8B": ("llama", dict(  # meta-llama/Meta-Llama-3-8B
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, hidden_act="silu", max_position_embeddings=8192, rms_norm_eps=1e-5,
        rope_theta=500000.0, tie_word_embeddings=False, attention_bias=False, mlp_bias=False)),
    "Qwen2.5-7B": ("qwen2", dict(  # Qwen/Qwen2.5-7B
        vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
        num_key_value_heads=4, hidden_act="silu", max_position_embeddings=131072, rms_norm_eps=1e-6,
        rope_theta=1000000.0, tie_word_embeddings=False, use_sliding_window=False, sliding_window=131072,
        max_window_layers=28)),
    "Qwen2.5-72B": ("qwen2", dict(  # Qwen/Qwen2.5-72B
        vocab_size=152064, hidden_size=8192, intermediate_size=29568, num_hidden_layers=80, num_attention_heads=64,
        num_key_value_heads=8, hidden_act="silu", max_position_embeddings=131072, rms_norm_eps=1e-5,
        rope_theta=1000000.0, tie_word_embeddings=False, use_sliding_window=False, sliding_window=131072,
        max_window_layers=80)),
    "Qwen3-8B": ("qwen3", dict(  # Qwen/Qwen3-8B
        vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
        num_key_value_heads=8, head_dim=128, hidden_act="silu", max_position_embeddings=40960, rms_norm_eps=1e-6,
        rope_theta=1000000.0, tie_word_embeddings=False, attention_bias=False, use_sliding_window=False,
        max_window_layers=36)),
    "Qwen2-57B-A14B": ("qwen2-moe", dict(  # Qwen/Qwen2-57B-A14B
        vocab_size=151936, hidden_size=3584, intermediate_size=18944, moe_intermediate_size=2560,
        shared_expert_intermediate_size=20480, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
        num_experts=64, num_experts_per_tok=8, norm_topk_prob=False, decoder_sparse_step=1, hidden_act="silu",
        max_position_embeddings=131072, rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=False,
        use_sliding_window=False, sliding_window=131072, max_window_layers=28, router_aux_loss_coef=0.001)),
    "Qwen3-30B-A3B": ("qwen3-moe", dict(  # Qwen/Qwen3-30B-A3B
        vocab_size=151936, hidden_size=2048, intermediate_size=6144, moe_intermediate_size=768, num_hidden_layers=48,
        num_attention_heads=32, num_key_value_heads=4, head_dim=128, num_experts=128, num_experts_per_tok=8,
        norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[], hidden_act="silu",
        max_position_embeddings=40960, rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=False,
        attention_bias=False, use_sliding_window=False, router_aux_loss_coef=0.001)),
    "Mixtral-8x7B": ("mixtral", dict(  # mistralai/Mixtral-8x7B-v0.1
        vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, num_local_experts=8, num_experts_per_tok=2, hidden_act="silu",
        max_position_embeddings=32768, rms_norm_eps=1e-5, rope_theta=1000000.0, sliding_window=None,
        router_aux_loss_coef=0.02, tie_word_embeddings=False)),
    "DeepSeek-V2-Lite": ("deepseek-v2", dict(  # deepseek-ai/DeepSeek-V2-Lite
        vocab_size=102400, hidden_size=2048, intermediate_size=10944, moe_intermediate_size=1408, num_hidden_layers=27,
        num_attention_heads=16, num_key_value_heads=16, n_shared_experts=2, n_routed_experts=64, num_experts_per_tok=6,
        first_k_dense_replace=1, q_lora_rank=None, kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64,
        v_head_dim=128, n_group=1, topk_group=1, topk_method="greedy", routed_scaling_factor=1.0,
        norm_topk_prob=False, hidden_act="silu", max_position_embeddings=163840, rms_norm_eps=1e-6,
        rope_theta=10000, rope_scaling=_YARN_V2, tie_word_embeddings=False, attention_bias=False)),
    "DeepSeek-V2": ("deepseek-v2", dict(  # deepseek-ai/DeepSeek-V2
        vocab_size=102400, hidden_size=5120, intermediate_size=12288, moe_intermediate_size=1536, num_hidden_layers=60,
        num_attention_heads=128, num_key_value_heads=128, n_shared_experts=2, n_routed_experts=160,
        num_experts_per_tok=6, first_k_dense_replace=1, q_lora_rank=1536, kv_lora_rank=512, qk_nope_head_dim=128,
        qk_rope_head_dim=64, v_head_dim=128, n_group=8, topk_group=3, topk_method="group_limited_greedy",
        routed_scaling_factor=16.0, norm_topk_prob=False, hidden_act="silu", max_position_embeddings=163840,
        rms_norm_eps=1e-6, rope_theta=10000, rope_scaling=_YARN_V2, tie_word_embeddings=False,
        attention_bias=False)),
    "DeepSeek-V3-671B": ("deepseek-v3", dict(  # deepseek-ai/DeepSeek-V3
        vocab_size=129280, hidden_size=7168, intermediate_size=18432, moe_intermediate_size=2048, num_hidden_layers=61,
        num_attention_heads=128, num_key_value_heads=128, n_shared_experts=1, n_routed_experts=256,
        num_experts_per_tok=8, first_k_dense_replace=3, q_lora_rank=1536, kv_lora_rank=512, qk_nope_head_dim=128,
        qk_rope_head_dim=64, v_head_dim=128, n_group=8, topk_group=4, routed_scaling_factor=2.5, norm_topk_prob=True,
        hidden_act="silu", max_position_embeddings=163840, rms_norm_eps=1e-6, rope_theta=10000,
        rope_scaling=dict(type="yarn", factor=40, original_max_position_embeddings=4096, beta_fast=32, beta_slow=1,
                          mscale=1.0, mscale_all_dim=1.0),
        tie_word_embeddings=False, attention_bias=False)),
}  # fmt: skip


class ConfigError(ValueError):
    """A model name or configuration that cannot be built; the message is one line for the user."""


def names():
    return list(TINY)


def published_names(family=None):
    return [n for n, (fam, _) in PUBLISHED.items() if family is None or fam == family]


def _family(name):
    if name not in FAMILIES:
        raise ConfigError(f"unknown model '{name}'; known models: {', '.join(FAMILIES)}")
    return name


def _make(family, kwargs, overrides=()):
    import inspect

    import transformers

    cls = getattr(transformers, FAMILIES[family][0])
    known = set(inspect.signature(cls.__init__).parameters) | {"rope_theta", "rope_scaling"}
    for key in overrides:
        if key not in known:
            raise ConfigError(f"{cls.__name__} has no field '{key}'")
    try:
        cfg = cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{family}: {err}") from None
    cfg._attn_implementation = "sdpa"
    check(cfg, derived_head_dim=family in ("llama", "qwen2") and kwargs.get("head_dim") is None)
    return cfg


def config(name, **overrides):
    """The tiny HF config of a family, with `overrides` applied and checked (ConfigError)."""
    family = _family(name)
    cfg = _make(family, {**TINY_COMMON, **TINY[family], **overrides}, overrides)
    if cfg.vocab_size < VOCAB:
        raise ConfigError(f"vocab_size={cfg.vocab_size} is smaller than the byte tokenizer's {VOCAB} tokens")
    return cfg


def family_config(family, **values):
    """The HF config of a family from a full set of values (no tiny defaults), checked."""
    return _make(_family(family), values)


def published_config(name, **overrides):
    """The HF config of a published full-size model (see PUBLISHED), with `overrides` applied."""
    if name not in PUBLISHED:
        raise ConfigError(f"unknown published model '{name}'; known: {', '.join(PUBLISHED)}")
    family, values = PUBLISHED[name]
    return _make(family, {**values, **overrides}, overrides)


def family_of(cfg):
    """The zoo family of an HF config object."""
    for family, (cfg_cls, _) in FAMILIES.items():
        if type(cfg).__name__ == cfg_cls:
            return family
    raise ConfigError(f"{type(cfg).__name__} is not a family of the zoo ({', '.join(FAMILIES)})")


def _positive(cfg, *fields):
    for f in fields:
        v = getattr(cfg, f, None)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v <= 0):
            raise ConfigError(f"{f}={v!r} must be a positive integer")


def check(cfg, derived_head_dim=False):
    """Shape rules the HF classes assume but do not all check; ConfigError names the first broken one.
    derived_head_dim: the head size is hidden_size / num_attention_heads (no head_dim given)."""
    _positive(cfg, "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "head_dim", "moe_intermediate_size", "num_experts", "n_routed_experts",
              "num_experts_per_tok", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim",
              "v_head_dim")  # fmt: skip
    heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads
    mla = hasattr(cfg, "kv_lora_rank")
    if derived_head_dim and cfg.hidden_size % heads:
        raise ConfigError(f"num_attention_heads={heads} does not divide hidden_size={cfg.hidden_size}")
    if heads % kv:
        raise ConfigError(f"num_key_value_heads={kv} does not divide num_attention_heads={heads}")
    experts = getattr(cfg, "num_experts", None) or getattr(cfg, "n_routed_experts", None)
    if experts and cfg.num_experts_per_tok > experts:
        raise ConfigError(f"num_experts_per_tok={cfg.num_experts_per_tok} exceeds the {experts} experts")
    if mla and getattr(cfg, "qk_rope_head_dim", 0) % 2:
        raise ConfigError(f"qk_rope_head_dim={cfg.qk_rope_head_dim} must be even (rotary pairs)")
    if mla and experts and cfg.n_group and (experts % cfg.n_group or cfg.topk_group > cfg.n_group):
        raise ConfigError(f"n_routed_experts={experts} in n_group={cfg.n_group} groups, topk_group={cfg.topk_group}:"
                          " groups must divide the experts and topk_group <= n_group")
    return cfg


def build(name, seed=0, **overrides):
    """The tiny model, with weights drawn from `seed` on the CPU (identical wherever it is moved)."""
    import transformers

    cfg = config(name, **overrides)
    torch.manual_seed(seed)
    model = getattr(transformers, FAMILIES[name][1])(cfg)
    return model.eval()


def build_meta(cfg):
    """The full module tree of any zoo config on the meta device (no memory), e.g. for counting."""
    import transformers

    with torch.device("meta"):
        return getattr(transformers, FAMILIES[family_of(cfg)][1])(cfg)
