"""The zoo: tiny configs build real HF models; published full-size configs match the published
parameter counts; bad configs are refused with one-line messages."""

import pytest
import torch
from expecttest import assert_expected_inline

from torch_biren.adapt import flops, zoo

# Published totals (billions) and active parameters per token (MoE), from the model cards.
PUBLISHED = {
    "Llama-3-8B": (8.03, None),
    "Qwen2.5-7B": (7.61, None),
    "Qwen2.5-72B": (72.7, None),
    "Qwen3-8B": (8.2, None),
    "Qwen2-57B-A14B": (57, 14),  # the model card: 57B in total, 14B activated
    "Qwen3-30B-A3B": (30.5, 3.3),
    "Mixtral-8x7B": (46.7, 12.9),  # Mistral AI's announcement: 46.7B in total, 12.9B used per token
    "DeepSeek-V2-Lite": (15.7, 2.4),
    "DeepSeek-V2": (236, 21),
    "DeepSeek-V3-671B": (671, 37),
}


def test_every_family_has_published_configs():
    assert set(PUBLISHED) == set(zoo.PUBLISHED)
    assert {fam for fam, _ in zoo.PUBLISHED.values()} == set(zoo.names())


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_config_matches_published_size(name):
    total, active = PUBLISHED[name]
    p = flops.param_counts(zoo.published_config(name))  # the HF class on the meta device
    assert p["total"] / 1e9 == pytest.approx(total, rel=0.01)
    if active:
        # Model cards count active parameters with (V3) or without (V2-Lite) the embedding tables.
        assert min(abs(p["active"] / 1e9 - active), abs(p["model"] / 1e9 - active)) / active < 0.1


@pytest.mark.parametrize("name", zoo.names())
def test_tiny_model_is_the_hf_class_and_counts_agree(name):
    model = zoo.build(name)
    assert type(model).__name__ == zoo.FAMILIES[name][1]
    assert model.config.vocab_size == zoo.VOCAB
    assert flops.param_counts(model) == flops.param_counts(model.config)
    assert flops.param_counts(model)["total"] == sum(p.numel() for p in model.parameters())


def test_build_is_seeded():
    a, b = zoo.build("qwen2", seed=3), zoo.build("qwen2", seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    c = zoo.build("qwen2", seed=4)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_moe_active_parameters_count_k_of_e_experts():
    cfg = zoo.config("qwen3-moe")
    p = flops.param_counts(cfg)
    experts = cfg.num_hidden_layers * 3 * cfg.hidden_size * cfg.moe_intermediate_size * cfg.num_experts
    assert p["total"] - p["active"] == experts * (cfg.num_experts - cfg.num_experts_per_tok) // cfg.num_experts


def test_training_flops_follow_6n_plus_attention():
    cfg = zoo.published_config("Llama-3-8B")
    n = flops.param_counts(cfg)["model"]
    # 6N plus 12 * layers * heads * head_dim * seq (PaLM's formula) per token
    assert flops.flops_per_token(cfg, 4096, n) == 6 * n + 12 * 32 * 32 * 128 * 4096
    assert flops.train_flops(cfg, 2, 4096, n) == 2 * 4096 * flops.flops_per_token(cfg, 4096, n)


def _error(fn, *args, **kw):
    with pytest.raises(zoo.ConfigError) as info:
        fn(*args, **kw)
    return str(info.value)


def test_bad_configs_get_one_line_messages():
    assert_expected_inline(_error(zoo.config, "gpt5"),
                           """unknown model 'gpt5'; known models: llama, qwen2, qwen3, qwen2-moe, qwen3-moe, mixtral, deepseek-v2, deepseek-v3""")
    assert_expected_inline(_error(zoo.config, "qwen2", num_attention_heads=5),
                           """num_attention_heads=5 does not divide hidden_size=64""")
    assert_expected_inline(_error(zoo.config, "llama", num_key_value_heads=3),
                           """num_key_value_heads=3 does not divide num_attention_heads=4""")
    assert_expected_inline(_error(zoo.config, "qwen3-moe", num_experts_per_tok=5),
                           """num_experts_per_tok=5 exceeds the 4 experts""")
    assert_expected_inline(_error(zoo.config, "qwen2", hidden_size=0),
                           """hidden_size=0 must be a positive integer""")
    assert_expected_inline(_error(zoo.config, "qwen2", vocab_size=100),
                           """vocab_size=100 is smaller than the byte tokenizer's 256 tokens""")
    assert_expected_inline(_error(zoo.config, "qwen2", hidden_sise=32),
                           """Qwen2Config has no field 'hidden_sise'""")
    assert_expected_inline(_error(zoo.published_config, "Qwen9"),
                           """unknown published model 'Qwen9'; known: Llama-3-8B, Qwen2.5-7B, Qwen2.5-72B, Qwen3-8B, Qwen2-57B-A14B, Qwen3-30B-A3B, Mixtral-8x7B, DeepSeek-V2-Lite, DeepSeek-V2, DeepSeek-V3-671B""")


def test_explicit_head_dim_may_differ_from_hidden_over_heads():
    cfg = zoo.config("qwen3", num_attention_heads=8, num_key_value_heads=2)  # head_dim 16 given
    assert cfg.head_dim * cfg.num_attention_heads == 128 != cfg.hidden_size
