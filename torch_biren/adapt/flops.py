"""Parameter counts and model FLOPs of zoo models, tiny or full-size, for MFU and projections.

Counts come from the HF module tree itself (the live model, or one built on the meta device from a
config, which allocates nothing), so they cannot drift from the architecture. MoE experts count
k/E of their weights as active.

Model FLOPs follow the convention of the published MFU figures (PaLM, Megatron-LM, Llama 3):
training = 6 * N * tokens + attention, N being the active parameters without the input embedding
table (a lookup, no FLOPs; the output projection counts). Attention per token and layer is
2 * heads * seq * (d_qk + d_v) forward (Q K^T and P V over the whole sequence, causal masking not
discounted), 3x that for training. Recomputation is not model FLOPs.
"""

import torch

__all__ = ["param_counts", "attention_dims", "flops_per_token", "train_flops", "routed_experts", "expert_width"]


def routed_experts(cfg):
    """(routed experts E, experts per token k), (0, 0) for dense models: Qwen's num_experts,
    DeepSeek's n_routed_experts, Mixtral's num_local_experts."""
    e = (getattr(cfg, "num_experts", None) or getattr(cfg, "n_routed_experts", None)
         or getattr(cfg, "num_local_experts", None) or 0)
    return e, (cfg.num_experts_per_tok if e else 0)


def expert_width(cfg):
    """Each routed expert's intermediate size: moe_intermediate_size, or Mixtral's intermediate_size
    (every layer of a Mixtral is MoE, its experts as wide as a dense MLP would be)."""
    return getattr(cfg, "moe_intermediate_size", None) or (
        cfg.intermediate_size if getattr(cfg, "num_local_experts", None) else 0)


def param_counts(model_or_config):
    """{'total', 'active', 'embedding', 'model'}: all parameters, those one token uses, the input
    embedding table, and 'model' = active minus the input embedding (the N of 6N)."""
    if isinstance(model_or_config, torch.nn.Module):
        model = model_or_config
    else:
        from .zoo import build_meta

        model = build_meta(model_or_config)
    cfg = model.config
    e, k = routed_experts(cfg)
    embed = model.get_input_embeddings().weight
    total = active = 0
    seen = set()
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:  # tied weights count once
            continue
        seen.add(id(p))
        n = p.numel()
        total += n
        # Routed experts are stored stacked [E, ...] (HF's fused experts) under ".experts."
        is_routed = e and ".experts." in name and p.dim() == 3 and p.shape[0] == e
        active += n * k // e if is_routed else n
    emb = embed.numel()
    return {"total": total, "active": active, "embedding": emb, "model": active - emb}


def attention_dims(cfg):
    """(layers, heads, d_qk, d_v) of the model's attention (MLA: nope+rope and v_head_dim)."""
    heads = cfg.num_attention_heads
    if getattr(cfg, "kv_lora_rank", None):
        d_qk = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim
        d_v = cfg.v_head_dim
    else:
        d_qk = d_v = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    return cfg.num_hidden_layers, heads, d_qk, d_v


def flops_per_token(cfg, seq, n_model=None, training=True):
    """Model FLOPs per token at sequence length `seq`: 6N + attention (training) or 2N + attention/3."""
    if n_model is None:
        n_model = param_counts(cfg)["model"]
    layers, heads, d_qk, d_v = attention_dims(cfg)
    fwd = 2 * n_model + 2 * layers * heads * seq * (d_qk + d_v)
    return 3 * fwd if training else fwd


def train_flops(cfg, batch, seq, n_model=None):
    """Model FLOPs of one training step over batch x seq tokens."""
    return flops_per_token(cfg, seq, n_model) * batch * seq
