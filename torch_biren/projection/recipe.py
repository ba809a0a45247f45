"""What the finer memory options of the training stack (stack.py: recompute_modules, fp8_activations)
free per layer and micro-batch, and what they cost in backward: the tensors are the ones the trace
saves (HF's module code with the fused stand-ins, trace.py), named here from the config.

- "layernorm" (Megatron-Core's --recompute-modules layernorm; DeepSeek-V3, arXiv 2412.19437 sec.
  3.2.3): the norms run again in backward, so their outputs (the next Linear's input) are not kept:
  the two hidden-size norms (1/tp under sequence parallelism) and MLA's q_a/kv_a norms. Their inputs
  stay saved (the norm's own backward needs them).
- "mla_up_proj" (mla_up_proj; ibid.): q_b_proj and kv_b_proj run again in backward, so the
  attention's up-projected q and k and kv_b_proj's output (v is a view of it) are not kept; cost:
  the two GEMMs and the copies that assemble q and k.
- "moe_act" (moe_act; DeepSeek-V3 sec. 3.3 "we only cache the inputs of the SwiGLU operator and
  recompute its output"): the routed and shared experts' SwiGLU outputs; cost: the SwiGLU kernels.
- fp8_activations (DeepSeek-V3 sec. 3.3, "Low-Precision Activation"): the Linear inputs still saved
  and the MoE SwiGLU inputs cached in FP8 (1 byte), the attention output (o_proj's input, which the
  attention backward also reads) in E5M6 (1.5 bytes); cost: a quantising cast in forward and a
  dequantising cast in backward per cached tensor. The GEMMs stay priced in BF16 (the report's are
  FP8), so this is memory the report's recipe saves, not its FP8 speed.
"""

from dataclasses import dataclass

from ..adapt import flops
from ..sim import costs
from .models import experts

RECOMPUTE_MODULES = ("layernorm", "mla_up_proj", "moe_act")
E5M6_BYTES = 1.5


@dataclass(frozen=True)
class Shapes:
    """The per-card tensor widths of one layer (elements per token), from the config."""

    hidden: int  # the model's hidden size (the routed experts' gathered rows)
    norm: int  # the two norms' outputs' width (hidden / tp under sequence parallelism)
    mla_norms: int  # q_a_layernorm + kv_a_layernorm outputs (0 without MLA)
    q_up: int  # q_b_proj's output (0 without q_lora_rank: q_proj is no up-projection)
    k_up: int  # k assembled from kv_b_proj's nope part and the rope part
    kv_up: int  # kv_b_proj's output (v a view of it)
    up_in: tuple  # (q_lora_rank, kv_lora_rank): the up-projections' inputs
    attn_out: int  # the attention output, o_proj's input
    mlp_inter: int  # a dense layer's intermediate on the card (down_proj's input)
    expert_inter: int  # a routed expert's intermediate
    top_k: int
    shared_inter: int  # the shared experts' intermediate on the card


def shapes(cfg, tp, sequence_parallel):
    h = cfg.hidden_size
    heads = max(1, cfg.num_attention_heads // tp)
    mla = getattr(cfg, "kv_lora_rank", None) or 0
    q_lora = getattr(cfg, "q_lora_rank", None) or 0
    if mla:
        nope, rope, v = cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim
        q_up, k_up, kv_up = heads * (nope + rope) if q_lora else 0, heads * (nope + rope), heads * (nope + v)
    else:
        q_up = k_up = kv_up = 0
        v = getattr(cfg, "head_dim", None) or h // cfg.num_attention_heads
    e, k = experts(cfg)
    inter = flops.expert_width(cfg)
    shared = (getattr(cfg, "n_shared_experts", None) or 0) * inter or getattr(cfg, "shared_expert_intermediate_size",
                                                                              None) or 0
    return Shapes(h, h // tp if sequence_parallel and tp > 1 else h, q_lora + mla if mla else 0, q_up, k_up, kv_up,
                  (q_lora if mla else 0, mla), heads * v, -(-(getattr(cfg, "intermediate_size", None) or 0) // tp),
                  inter if e else 0, k if e else 0, shared // tp if e else 0)


def _tensors(s, kind, tokens):
    """{name: (elements, how FP8 caching stores it: "fp8" | "e5m6" | None)} of the saved tensors the
    options act on, one layer of `kind`, one micro-batch."""
    t = {"norm outputs": (tokens * (2 * s.norm + s.mla_norms), "fp8"),  # the next Linears' inputs
         "q, k, v up": (tokens * (s.q_up + s.k_up + s.kv_up), None),  # attention inputs: BF16
         "attention output": (tokens * s.attn_out, "e5m6")}
    if kind == "moe" and s.top_k:
        rows = tokens * s.top_k
        t["routed gathered rows"] = (rows * s.hidden, "fp8")
        t["routed SwiGLU inputs"] = (rows * 2 * s.expert_inter, "fp8")
        t["routed SwiGLU outputs"] = (rows * s.expert_inter, "fp8")
        t["shared SwiGLU inputs"] = (tokens * 2 * s.shared_inter, "fp8")
        t["shared SwiGLU outputs"] = (tokens * s.shared_inter, "fp8")
    else:
        t["MLP SwiGLU outputs"] = (tokens * s.mlp_inter, "fp8")  # down_proj's input; its inputs stay BF16
    return t


def _kept(s, stack, kind, tokens, elt):
    """(bytes the recompute modules free, the tensors still saved) for one layer of `kind`."""
    kept = _tensors(s, kind, tokens)
    gone = 0.0
    for name, module in (("norm outputs", "layernorm"), ("q, k, v up", "mla_up_proj"),
                         ("routed SwiGLU outputs", "moe_act"), ("shared SwiGLU outputs", "moe_act")):
        if module in stack.recompute_modules and name in kept:
            gone += kept.pop(name)[0] * elt
    return gone, kept


def freed(s, stack, tokens, elt):
    """{"dense": bytes, "moe": bytes} one layer stops saving for one micro-batch of `tokens` tokens."""
    out = {}
    for kind in ("dense", "moe"):
        gone, kept = _kept(s, stack, kind, tokens, elt)
        if stack.fp8_activations:
            width = {"fp8": 1.0, "e5m6": E5M6_BYTES}
            gone += sum(n * max(0.0, elt - width[how]) for n, how in kept.values() if how)
        out[kind] = gone
    return out


def backward_ns(s, stack, tokens, dtype, elt, chip, norm_ns):
    """{"dense": ns, "moe": ns}: the kernels one layer runs again (recompute_modules) or adds (FP8
    casts) for one micro-batch. norm_ns: {"dense"|"moe": one layer's norm forwards, as run}."""
    mods = stack.recompute_modules
    out = {}
    for kind in ("dense", "moe"):
        ns = norm_ns.get(kind, 0.0) if "layernorm" in mods else 0.0
        if "mla_up_proj" in mods and s.k_up:
            q_lora, kv_lora = s.up_in
            if s.q_up:
                ns += costs.gemm(tokens, s.q_up, q_lora, dtype=dtype, chip=chip).ns
            ns += costs.gemm(tokens, s.kv_up, kv_lora, dtype=dtype, chip=chip).ns
            ns += sum(costs.copy(tokens * w * elt, "d2d", chip).ns for w in (s.q_up, s.k_up) if w)  # cat(nope, rope)
        if "moe_act" in mods and kind == "moe" and s.top_k:
            ns += costs.swiglu(tokens * s.top_k * s.expert_inter, dtype, chip).ns
            if s.shared_inter:
                ns += costs.swiglu(tokens * s.shared_inter, dtype, chip).ns
        if stack.fp8_activations:
            for n, how in _kept(s, stack, kind, tokens, elt)[1].values():
                if how and n:  # a cast to the cached format in forward and one back in backward
                    ns += 2 * costs.generic(n, n * (elt + (1.0 if how == "fp8" else E5M6_BYTES)), chip).ns
        out[kind] = ns
    return out
