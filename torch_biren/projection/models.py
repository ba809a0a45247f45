"""The models a projection can take: by name (the zoo's published configurations, the models of the
published runs and a 100B-class dense model, the tiny zoo models tiny-<family>) or as a Hugging Face
config.json (or a folder holding one) of an architecture the zoo can build; with their layer counts
and per-card (tensor-parallel) shapes."""

import copy
import inspect
import json
import os

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


# HF model_type -> zoo family. "gpt2" (GPT-style: multi-head attention, a 4h GELU MLP) is written as
# a llama config the way EXTRA writes the GPT runs' models.
MODEL_TYPES = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "qwen2_moe": "qwen2-moe", "qwen3_moe": "qwen3-moe",
               "mixtral": "mixtral", "deepseek_v2": "deepseek-v2", "deepseek_v3": "deepseek-v3", "gpt2": "llama"}
# What a config.json must give beyond _REQUIRED, per family (the HF classes' defaults would stand in silently).
_REQUIRED_MOE = {"qwen2-moe": ("moe_intermediate_size",), "qwen3-moe": ("moe_intermediate_size",),
                 "deepseek-v2": ("moe_intermediate_size",), "deepseek-v3": ("moe_intermediate_size",),
                 "mixtral": ("num_local_experts", "num_experts_per_tok")}
_REQUIRED = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
_USER = {}  # canonical name (the config.json's absolute path) -> (family, values)


def model_names():
    return [*zoo.PUBLISHED, *EXTRA, *(f"tiny-{n}" for n in zoo.names())]


def _gpt2(raw):
    missing = [k for k in ("n_embd", "n_layer", "n_head", "vocab_size") if k not in raw]
    if missing:
        raise ProjectionError(f"GPT-2-style config.json lacks {', '.join(repr(k) for k in missing)}")
    h = raw["n_embd"]
    inner = raw.get("n_inner") or 4 * h
    return dict(vocab_size=raw["vocab_size"], hidden_size=h, intermediate_size=-(-2 * inner // 3),
                num_hidden_layers=raw["n_layer"], num_attention_heads=raw["n_head"],
                num_key_value_heads=raw["n_head"], max_position_embeddings=raw.get("n_positions", 1024),
                tie_word_embeddings=raw.get("tie_word_embeddings", True))


def load_config_json(path):
    """Register the HF config.json at `path` (or in the folder `path`) and return its canonical name."""
    file = os.path.join(path, "config.json") if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise ProjectionError(f"'{path}' is a folder without a config.json")
    try:
        with open(file) as f:
            raw = json.load(f)
    except (OSError, ValueError) as err:
        raise ProjectionError(f"cannot read {file} as JSON: {str(err).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ProjectionError(f"{file} holds no JSON object")
    raw = raw.get("text_config", raw) if "model_type" not in raw else raw
    mtype = raw.get("model_type")
    if not mtype:
        raise ProjectionError(f"{file} has no 'model_type': cannot tell its architecture")
    family = MODEL_TYPES.get(mtype)
    arch = ", ".join(raw.get("architectures") or []) or "no architectures given"
    if family is None:
        raise ProjectionError(f"{file}: model_type '{mtype}' ({arch}) is not an architecture the projection can "
                              f"build; known: {', '.join(MODEL_TYPES)} (a new one needs its family in "
                              "torch_biren/adapt/zoo.py)")
    if mtype == "gpt2":
        values = _gpt2(raw)
    else:
        import transformers

        cls = getattr(transformers, zoo.FAMILIES[family][0])
        known = set(inspect.signature(cls.__init__).parameters) | {"rope_theta", "rope_scaling"}
        values = {k: v for k, v in raw.items() if k in known}
        need = _REQUIRED + _REQUIRED_MOE.get(family, ())
        missing = [k for k in need if k not in values]
        if missing:
            raise ProjectionError(f"{file} ({mtype}) lacks {', '.join(repr(k) for k in missing)}")
        values.setdefault("num_key_value_heads", values["num_attention_heads"])
    values["tie_word_embeddings"] = values.get("tie_word_embeddings", raw.get("tie_word_embeddings", False))
    name = os.path.abspath(file)
    try:
        zoo.family_config(family, **values)
    except zoo.ConfigError as err:
        raise ProjectionError(f"{file}: {err}") from None
    _USER[name] = (family, values)
    return name


def resolve(name):
    """Canonical model name for a case-insensitive name or alias, or a config.json (or its folder);
    ProjectionError if unknown."""
    if isinstance(name, (str, os.PathLike)) and (os.path.sep in str(name) or str(name).endswith(".json")
                                                  or os.path.isdir(str(name))):
        if not os.path.exists(name):
            raise ProjectionError(f"no such config.json or folder: '{name}'")
        return load_config_json(str(name))
    if name in _USER:
        return name
    low = str(name).lower()
    low = ALIASES.get(low, low).lower()
    for n in model_names():
        if n.lower() == low:
            return n
    raise ProjectionError(f"unknown model '{name}'; known: {', '.join(model_names())}, or a path to an HF "
                          "config.json (or a folder holding one)")


_CONFIGS = {}  # (name, user values, overrides) -> (config, its JSON)


def _cached(name, layers):
    key = (name, repr(_USER.get(name)), tuple(sorted(layers.items())))
    hit = _CONFIGS.get(key)
    if hit is None:  # HF builds and validates a config field by field: ms each, and projections ask often
        cfg = _config(name, **layers)
        hit = _CONFIGS[key] = (cfg, cfg.to_json_string())
    return hit


def config(name, **layers):
    """HF config of a model by canonical name, with layer-count overrides (a copy the caller may change)."""
    return copy.deepcopy(_cached(name, layers)[0])


def config_json(name):
    """The model's config as JSON: a key for caches of what depends on it."""
    return _cached(name, {})[1]


def _config(name, **layers):
    if name in _USER:
        family, values = _USER[name]
        return zoo.family_config(family, **{**values, **layers})
    if name.startswith("tiny-"):
        return zoo.config(name[5:], **layers)
    if name in EXTRA:
        return zoo.family_config("llama", **{**EXTRA[name], **layers, "tie_word_embeddings": False})
    return zoo.published_config(name, **layers)


experts = flops.routed_experts  # (routed experts E, experts per token k) of an HF config


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
    if not getattr(cfg, "num_local_experts", None):  # Mixtral's is its routed experts' width, which ep spreads
        cfg.intermediate_size = -(-cfg.intermediate_size // tp)
    cfg.vocab_size = -(-cfg.vocab_size // tp)
    return cfg


_COUNTS = {}


def param_counts(name):
    """adapt.flops.param_counts of the model, from three short variants instead of the whole module
    tree (counts are linear in the number of layers of each kind): a few ms, not a 0.2 s build."""
    key = (name, config_json(name))
    hit = _COUNTS.get(key)
    if hit is None:
        cfg = config(name)
        d = dense_layers(cfg)
        m = cfg.num_hidden_layers - d
        start = (1 if d else 0, 1 if m else 0)
        base = flops.param_counts(variant(name, *start))
        hit = dict(base)
        for i, (n, extra) in enumerate(((d, (start[0] + 1, start[1])), (m, (start[0], start[1] + 1)))):
            if start[i] and n > start[i]:
                more = flops.param_counts(variant(name, *extra))
                for k in hit:
                    hit[k] += (n - start[i]) * (more[k] - base[k])
        _COUNTS[key] = hit
    return dict(hit)


def model_flops(name, batch, seq, mode, context, causal=True):
    """The model FLOPs of one step (train: forward and backward; prefill; decode: one token).
    causal: attention counts the unmasked half of the score and PV products over the sequence, as the
    flash kernels are charged (training and prefill; a decoded token meets its whole context);
    causal=False: the full-sequence convention of adapt/flops.py."""
    cfg = config(name)
    n = param_counts(name)["model"]
    if mode == "decode":
        return flops.flops_per_token(cfg, context + 1, n, training=False) * batch
    per_token = flops.flops_per_token(cfg, seq, n, training=mode == "train")
    if causal:
        dense = flops.flops_per_token(cfg, 0, n, training=mode == "train")
        per_token = dense + (per_token - dense) / 2
    return per_token * batch * seq
