"""The training stack a projection models: the options Megatron-Core users set, with Megatron-Core's
defaults (TransformerConfig and DistributedDataParallelConfig: no sequence parallelism, no
recomputation, no distributed optimizer, no overlap options on; q, k, v fused into one GEMM as
Megatron's linear_qkv is, and a gated MLP's gate and up as its linear_fc1 is; the backward
tensor-parallel collectives beside their GEMMs and gradient accumulation fused into the
weight-gradient GEMMs, as Megatron-LM's training arguments default to).

Each option's effect, as project() models it:
- fused_projections (default on: Megatron's linear_qkv and linear_fc1; serving engines' fused QKV and
  gate-up layers too): each attention's q, k, v projections and each gated MLP's gate, up projections
  traced as one GEMM over the weights side by side, split into views (trace._fuse); backward one
  input-gradient and one weight-gradient GEMM and the split's concatenation. Off: HF's module code as
  the live device runs it, a GEMM each and, in backward, their input gradients added.
- sequence_parallel (Korthikanti et al. 2022): the activations outside the tensor-parallel regions
  (the two norms' inputs and outputs) and the norm kernels split over tp, and with fused projections
  the residual adds and their gradients' sums too; the tensor-parallel all-reduces become all-gather
  + reduce-scatter of the same volume.
- recompute "selective" (core attention): the attention kernel runs again in backward; it frees the
  softmax region, which the flash-attention kernel never stores, so only its logsumexp statistics.
  "full": each layer keeps only its input; the layers' forward runs again in backward.
- zero 1 (distributed optimizer): fp32 master weights and Adam moments sharded over dp, gradients
  reduce-scattered and parameters all-gathered after the step; 2: gradients sharded too; 3 / FSDP:
  weights too, all-gathered for each micro-batch's forward and backward and gradients
  reduce-scattered per micro-batch.
- overlap_grad_reduce / overlap_param_gather: the DP gradient reduction hides behind the last
  micro-batch's backward, the parameter all-gather behind the first micro-batch's forward (ZeRO-3:
  each layer's gather behind the previous layer's compute), less the last bucket's share.
- tp_comm_overlap: tensor-parallel collectives hide behind the layer's GEMMs.
- tp_backward_overlap (default on: Megatron-LM since September 2021, async_tensor_model_parallel_allreduce,
  and Megatron-Core's LinearWithGradAccumulationAndAsyncCommunication): in backward a column-parallel
  linear's input-gradient all-reduce (sequence parallel: reduce-scatter) runs beside its
  weight-gradient GEMM, and under sequence parallelism the re-gather of its input (Megatron keeps it
  split and gathers it again for the weight gradient) beside its input-gradient GEMM; off, both wait
  (Megatron-LM before it, as Narayanan et al. 2021 ran).
- grad_accumulation_fusion (default on: Megatron-LM's --gradient-accumulation-fusion, 2022): the
  weight-gradient GEMMs accumulate into the fp32 main gradients in their epilogue (the extra traffic
  hides behind those compute-bound GEMMs, as the model's other GEMM traffic does); off, every
  micro-batch after the first adds its fresh gradients into the accumulated ones (PyTorch's
  AccumulateGrad, legacy Megatron-LM's DDP hook main_grad.add_(grad)): one pass reading both and
  writing the sum, micro-batches - 1 times a step (ZeRO-3 / FSDP: over the card's shard, reduced each
  micro-batch).
- cp (context parallelism): each card holds seq/cp tokens; attention meets the whole sequence's
  keys (attention kernels x cp), K/V chunks go round a ring, overlapped with the attention kernels.
- virtual_stages > 1: the interleaved 1F1B schedule.
- distribute_saved_activations (Megatron's --distribute-saved-activations, metaseq's
  --distribute-checkpointed-activations; applies under full recomputation without sequence
  parallelism, which splits the saved inputs already): each
  tensor-parallel rank keeps 1/tp of each layer's checkpointed input, all-gathered before the
  layer's recomputation.
- pipeline_scatter_gather (Narayanan et al. 2021 sec. 4.1; without sequence parallelism, whose
  activations are split already): each tensor-parallel rank sends 1/tp of the stage's output to the
  next stage, which all-gathers it over the card links.
- recompute_modules (Megatron-Core's --recompute-modules; DeepSeek-V3, arXiv 2412.19437 sec. 3.2.3
  and 3.3): "layernorm", "mla_up_proj", "moe_act" run again in backward instead of keeping their
  outputs (recipe.py names the tensors and the kernels); under full recomputation, which keeps only
  each layer's input, they change nothing.
- fp8_activations (DeepSeek-V3 sec. 3.3): saved Linear inputs and MoE SwiGLU inputs cached in FP8,
  the attention output in E5M6 (recipe.py); the GEMMs stay BF16, so only memory and the casts change.
- moment_bytes 2 (DeepSeek-V3 sec. 3.3): AdamW's two moments in BF16; the fp32 master weights stay:
  4 + 2 x 2 = 8 bytes per parameter of optimizer state instead of 12, and the step reads and writes less.
- schedule "dualpipe" (DeepSeek-V3 sec. 3.2.1, Table 2): each pipeline rank holds two stages (stage
  i and pp-1-i, each with its own gradients, as deepseek-ai/DualPipe's example builds them), so twice
  the parameters (weights, gradients, optimizer states) and their DP reduction; bubble
  (pp/2 - 1)(F&B + B - 3W) instead of 1F1B's (pp - 1)(F + B), W the weight-gradient part of
  backward (taken as half of the backward GEMMs); pp + 1 micro-batches' activations in flight.
- hidden_dropout (dropout.py; Megatron-LM's --hidden-dropout): the two bias-dropout-adds of each
  layer write their masks, a backward kernel each applies them, the masks are kept for backward.
- the optimizer step (project._optimizer_ns), as Megatron-Core's MixedPrecisionOptimizer.step runs it,
  each a multi-tensor pass over the card's parameters: gradients not kept in fp32 (grad_bytes 2)
  copied into fp32 main gradients; loss_scaling (fp16 training): those unscaled and checked for inf/nan;
  grad_clip (default on: --clip-grad 1.0): their global norm (the rescale, only when the norm exceeds
  the threshold, is not charged); Adam on the fp32 master weights; the master weights copied to the
  model's 16-bit ones.
- attention "materialised" (attention.py): the score matrix written out, softmax and dropout
  (attention_dropout) as their own kernels, as Megatron-LM ran before flash attention; "flash" (the
  default, Megatron-Core's with Transformer Engine): the traced fused kernel.
"""

from dataclasses import dataclass, fields, replace

from .plan import ProjectionError
from .recipe import RECOMPUTE_MODULES

RECOMPUTE = ("none", "selective", "full")
SCHEDULES = ("1f1b", "dualpipe")
ATTENTION = ("flash", "materialised")
# Megatron-Core's default gradient bucket: max(40M, 1M x dp) parameters.
BUCKET_PARAMS, BUCKET_PARAMS_PER_DP = 40_000_000, 1_000_000


@dataclass(frozen=True)
class Stack:
    sequence_parallel: bool = False
    recompute: str = "none"
    zero: int = 0
    overlap_grad_reduce: bool = False
    overlap_param_gather: bool = False
    tp_comm_overlap: bool = False
    tp_backward_overlap: bool = True
    grad_accumulation_fusion: bool = True
    grad_bytes: int = 4  # Megatron accumulates and reduces bf16 models' gradients in fp32
    distribute_saved_activations: bool = False
    pipeline_scatter_gather: bool = False
    attention: str = "flash"
    attention_dropout: float = 0.0  # on the attention probabilities (materialised attention only)
    hidden_dropout: float = 0.0  # after attention and the MLP (Megatron's bias-dropout-add; dropout.py)
    recompute_modules: tuple = ()  # of RECOMPUTE_MODULES
    fp8_activations: bool = False
    moment_bytes: int = 4  # AdamW's moments: 4 fp32, 2 bf16
    schedule: str = "1f1b"
    loss_scaling: bool = False  # fp16 training's dynamic loss scale: the step unscales and checks the gradients
    grad_clip: bool = True  # Megatron's --clip-grad 1.0: the step takes the gradients' global norm
    fused_projections: bool = True  # q, k, v (gate, up) as one GEMM, as Megatron's linear_qkv (linear_fc1)

    def __post_init__(self):
        if self.recompute not in RECOMPUTE:
            raise ProjectionError(f"recompute must be one of {', '.join(RECOMPUTE)}, got '{self.recompute}'")
        if self.zero not in (0, 1, 2, 3):
            raise ProjectionError(f"zero must be 0, 1, 2 or 3, got {self.zero}")
        if self.grad_bytes not in (2, 4):
            raise ProjectionError(f"grad_bytes must be 2 (bf16) or 4 (fp32), got {self.grad_bytes}")
        if self.attention not in ATTENTION:
            raise ProjectionError(f"attention must be one of {', '.join(ATTENTION)}, got '{self.attention}'")
        if not 0 <= self.attention_dropout < 1 or (self.attention_dropout and self.attention == "flash"):
            raise ProjectionError(f"attention_dropout={self.attention_dropout} needs attention='materialised' and "
                                  "0 <= p < 1 (the flash kernel is traced without dropout)")

        if not 0 <= self.hidden_dropout < 1:
            raise ProjectionError(f"hidden_dropout must be in [0, 1), got {self.hidden_dropout}")
        bad = [m for m in self.recompute_modules if m not in RECOMPUTE_MODULES]
        if bad or not isinstance(self.recompute_modules, tuple):
            raise ProjectionError(f"recompute_modules takes {', '.join(RECOMPUTE_MODULES)}; got "
                                  f"{', '.join(map(str, bad or [self.recompute_modules]))}")
        if self.moment_bytes not in (2, 4):
            raise ProjectionError(f"moment_bytes must be 2 (bf16) or 4 (fp32), got {self.moment_bytes}")
        if self.schedule not in SCHEDULES:
            raise ProjectionError(f"schedule must be one of {', '.join(SCHEDULES)}, got '{self.schedule}'")

    @property
    def optimizer_bytes(self):
        """Optimizer state bytes per parameter: fp32 master weights and AdamW's two moments."""
        return 4 + 2 * self.moment_bytes

    def distributes(self, tp):
        """Whether the checkpointed layer inputs are split over tp (distribute_saved_activations applies)."""
        return self.distribute_saved_activations and self.recompute == "full" and not self.sequence_parallel and tp > 1

    def with_(self, **kw):
        return replace(self, **kw)

    def describe(self, tp, mode):
        """The options, named, for the report."""
        if mode != "train":
            return ", ".join(p for p in ("sequence parallel" if self.sequence_parallel and tp > 1 else "",
                                         "" if self.fused_projections else "q, k, v and gate, up as separate GEMMs")
                             if p)
        zero = {0: "no optimizer sharding", 1: "distributed optimizer (ZeRO-1)", 2: "ZeRO-2",
                3: "ZeRO-3 / FSDP"}[self.zero]
        parts = ["fused QKV and gate-up" if self.fused_projections else "q, k, v and gate, up as separate GEMMs",
                 f"sequence parallel {'on' if self.sequence_parallel else 'off'}" if tp > 1 else None,
                 f"recompute {self.recompute}", zero, f"grads fp{8 * self.grad_bytes}",
                 f"overlap: grad reduce {_on(self.overlap_grad_reduce)}, param gather {_on(self.overlap_param_gather)}"
                 f", TP comm {_on(self.tp_comm_overlap)}"
                 + (f", TP backward beside GEMMs {_on(self.tp_backward_overlap)}" if tp > 1 else ""),
                 None if self.grad_accumulation_fusion else "gradient accumulation unfused (an add per micro-batch)",
                 "saved activations distributed over tp" if self.distributes(tp) else None,
                 "pipeline scatter/gather" if self.pipeline_scatter_gather and tp > 1 else None,
                 f"attention materialised (dropout {self.attention_dropout:g})" if self.attention != "flash" else None,
                 f"hidden dropout {self.hidden_dropout:g}" if self.hidden_dropout else None,
                 f"recompute modules {', '.join(self.recompute_modules)}"
                 if self.recompute_modules and self.recompute != "full" else None,
                 "activations cached in FP8 (GEMMs BF16)" if self.fp8_activations else None,
                 "AdamW moments bf16" if self.moment_bytes == 2 else None,
                 "DualPipe schedule" if self.schedule == "dualpipe" else None,
                 "fp16 loss scaling" if self.loss_scaling else None,
                 None if self.grad_clip else "no gradient clipping"]
        return ", ".join(p for p in parts if p)


def _on(flag):
    return "on" if flag else "off"


def make(stack=None, **options):
    """A Stack from a Stack and/or keyword options (None values ignored); recompute=True means 'full'."""
    base = stack or Stack()
    known = {f.name for f in fields(Stack)}
    kw = {}
    for k, v in options.items():
        if v is None:
            continue
        if k not in known:
            raise ProjectionError(f"unknown training-stack option '{k}'")
        if k == "recompute" and isinstance(v, bool):
            v = "full" if v else "none"
        if k == "recompute_modules":  # "layernorm,mla_up_proj" or a list
            v = tuple(m.strip() for m in v.split(",") if m.strip()) if isinstance(v, str) else tuple(v)
        kw[k] = v
    return base.with_(**kw)
