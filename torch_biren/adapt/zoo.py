"""The model zoo: real HF transformers classes built from small, seeded random configs (never
downloaded). Each family keeps its architecture's distinctive features (GQA, qk-norm, MoE, MLA) at a
size that runs in seconds on a CPU."""

import torch

VOCAB = 256  # byte-level tokenizer

# name -> (config class name, model class name, tiny config kwargs)
TINY = {
    "llama": (
        "LlamaConfig",
        "LlamaForCausalLM",
        dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2),
    ),
    "qwen2": (
        "Qwen2Config",
        "Qwen2ForCausalLM",
        dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2),
    ),
    "qwen3": (
        "Qwen3Config",
        "Qwen3ForCausalLM",
        dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             head_dim=16),
    ),
    "qwen3-moe": (
        "Qwen3MoeConfig",
        "Qwen3MoeForCausalLM",
        dict(hidden_size=64, intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, head_dim=16, num_experts=4, num_experts_per_tok=2, norm_topk_prob=True),
    ),
    "deepseek-v2": (
        "DeepseekV2Config",
        "DeepseekV2ForCausalLM",
        dict(hidden_size=64, intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=4, n_routed_experts=4, n_shared_experts=1, num_experts_per_tok=2, first_k_dense_replace=1,
             q_lora_rank=None, kv_lora_rank=32, qk_rope_head_dim=8, qk_nope_head_dim=16, v_head_dim=16, n_group=1,
             topk_group=1, topk_method="greedy"),
    ),
    "deepseek-v3": (
        "DeepseekV3Config",
        "DeepseekV3ForCausalLM",
        dict(hidden_size=64, intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=4, n_routed_experts=4, n_shared_experts=1, num_experts_per_tok=2, first_k_dense_replace=1,
             q_lora_rank=32, kv_lora_rank=32, qk_rope_head_dim=8, qk_nope_head_dim=16, v_head_dim=16, n_group=1,
             topk_group=1),
    ),
}


def names():
    return list(TINY)


def config(name, **overrides):
    import transformers

    if name not in TINY:
        raise KeyError(f"unknown model '{name}'; known models: {', '.join(TINY)}")
    cfg_cls, _, kwargs = TINY[name]
    kw = dict(vocab_size=VOCAB, max_position_embeddings=256, tie_word_embeddings=False, attention_dropout=0.0)
    kw.update(kwargs)
    kw.update(overrides)
    cfg = getattr(transformers, cfg_cls)(**kw)
    cfg._attn_implementation = "sdpa"
    return cfg


def build(name, seed=0, **overrides):
    """The tiny model, with weights drawn from `seed` on the CPU (identical wherever it is moved)."""
    import transformers

    cfg = config(name, **overrides)
    torch.manual_seed(seed)
    model = getattr(transformers, TINY[name][1])(cfg)
    return model.eval()
