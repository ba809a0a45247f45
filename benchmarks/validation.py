"""Validation of the projection against the published GPU runs (torch_biren/projection/published_runs.py,
from reference/published-runs.md and the papers), each in the configuration its paper describes:
the error per row, the median and the worst, whether it fits memory, and the settings used. Writes
benchmarks/results/validation.md (run by benchmarks/run_all.py; alone: python benchmarks/validation.py)."""

import os
import statistics
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results")


def rows():
    from torch_biren.projection import published_runs

    out = []
    for run in published_runs.RUNS:
        t0 = time.perf_counter()
        tflops, r = published_runs.tflops_per_gpu(run)
        out.append({"run": run.name, "projected_tflops": tflops, "published_tflops": run.tflops_per_gpu,
                    "error_pct": 100 * (tflops / run.tflops_per_gpu - 1), "fits": r.fits,
                    "memory_GiB": sum(r.memory.values()) / 2**30, "capacity_GiB": r.capacity / 2**30,
                    "mfu": r.mfu, "settings": run.settings, "wall_s": time.perf_counter() - t0})
    return out


def markdown(rs):
    errs = [abs(r["error_pct"]) for r in rs]
    lines = ["# Validation: published GPU runs projected in their papers' configurations", "",
             "Projected per-GPU throughput in each figure's own FLOP convention (Megatron rows: the paper's formula "
             "with the recomputed forward; the others: model FLOPs with causal attention). Nothing is tuned to "
             "these figures; errors are as they come. Target ±15%.", "",
             "| run | projected TFLOP/s per GPU | published | error | fits (GiB per card) | MFU | settings |",
             "|---|---|---|---|---|---|---|"]
    for r in rs:
        lines.append(f"| {r['run']} | {r['projected_tflops']:.0f} | {r['published_tflops']:.0f} | "
                     f"{r['error_pct']:+.1f}% | {'yes' if r['fits'] else 'NO'} ({r['memory_GiB']:.1f} of "
                     f"{r['capacity_GiB']:.1f}) | {100 * r['mfu']:.1f}% | {r['settings']} |")
    lines += ["", f"Median |error| {statistics.median(errs):.1f}%, worst {max(errs):.1f}% "
              f"({max(rs, key=lambda r: abs(r['error_pct']))['run']}); "
              f"{sum(e <= 15 for e in errs)} of {len(errs)} rows within ±15%.", ""]
    return "\n".join(lines)


NOTES = """## What the errors say

- **Megatron 2021 rows (GPT-175B +15.5%, a strict xfail in tests/projection/test_project.py; GPT-1T
  +9.5%).** Both run legacy Megatron-LM as its April 2021 code ran by default (NVIDIA/Megatron-LM
  history): materialised attention with dropout 0.1 and hidden dropout 0.1 (its --attention-dropout
  and --hidden-dropout defaults), the scatter/gather of pipeline sends (default since February 2021),
  the backward all-reduces waiting (the asynchronous one beside the weight-gradient GEMM came in
  September 2021) and every micro-batch's fp16 gradients added into the accumulated ones (gradient
  accumulation fusion came in 2022), with fp16's loss scaling in the optimizer step (Megatron's
  Float16OptimizerWithFloat16Params: the gradients copied to fp32, unscaled, their norm taken for
  --clip-grad, Adam, the weights copied back) and the fused QKV and MLP input projections Megatron's
  layers have. The materialised attention's kernels run at the fraction of their modelled time that
  FlashAttention's paper measured for Megatron's attention on an A100 (chip
  materialised_attention_efficiency, calibration.md). The 175B step, 27.3 s: micro-batch compute
  21.3 s (of it the recomputed forward 5.5 s, the gradient additions 0.9 s) with a 1.6 s bubble (1F1B,
  96 micro-batches, 7 / 103 slots), TP all-reduce 3.6 s (7,416 of 48 MiB, 487 us each), pipeline
  send/recv and gather 0.12 s, DP all-reduce 0.57 s, optimizer 0.08 s. Korthikanti et al. 2022 (the same group, code path and machine
  a year later; the nine rows below) are projected at +2.2% to +10.3%. Set beside them (the table
  above), both 2021 figures are about 6% lower than the configurations' differences explain, the
  same for both models: GPT-1T's 2022 run is the 2021 row's pipeline (TP 8, PP 64, 512 micro-batches
  of one) at 177 TFLOP/s against 2021's 163. What else 2021's software lost is not in the code
  history read here; no constant is tuned to it. The 2021 paper's own measured tables (its text read
  in a transcription found in the code index; rows of the added table below) place the 140 apart
  from its neighbours: Table 1's 145.6B row is the 175B row's shape (hidden 12288, TP 8 x PP 8, 96
  micro-batches per pipeline, 10 layers per stage against 12) measured at 148 TFLOP/s, and projects
  at +9.1%; Table 2's PTD-P runs of GPT-3 175B itself (TP 8 x PP 12, batch 1536) measured 153 / 149 /
  141 on 384 / 768 / 1536 GPUs and project at +11.6% / +10.7% / +9.6%. The reference's 140 on 1,024
  GPUs is the figure sec. 5.1's training-time estimate uses; the paper gives no configuration for it,
  and it lies 5% below the 148 of the same shape. All 15 of the paper's other measured rows (Table
  1's nine, Table 2's six, beside GPT-1T) project within +-15%, at -7.1% to +11.2%. Below the
  iteration, one layer of Korthikanti's 22B model (Table 4, the table after next) is 7-8% slower
  measured than projected, the same for every option, and each option's time over the baseline's
  (full or selective recomputation, sequence parallelism) comes within 2%: what remains on these
  A100 rows is in the layer's kernels and collectives themselves, not in the schedule, the
  recomputation, sequence parallelism or the data parallelism. A GPU calibration is what would measure it
  (benchmarks/calibrate.py --gpu; no device was lent to these sessions). A published hint, small in
  time: XLA's measured GEMM table for the H100 (held out in calibration.md) has the GEMM model within
  -8%..+4% wherever every side is 1024 or more, and 14% fast (1.8 us of 12.6) at k = 512 on a 1024 x
  4096 output; tensor parallelism shortens k in the attention output and second MLP projections to
  h / 8 and 4h / 8 (768 and 3072 for the 22B model). One part is measured and fitted: the
  collective model's two protocols (benchmarks/calibrate.py fitted_collective) follow a published
  one-process-per-GPU nccl-tests run on 8 x A100 within -18%..+25% from 8 B to 1 GiB (-4%..+7% from
  1 MiB up; benchmarks/results/nccl_tests_a100.md). Before the fit (2 us per ring step, 68% of link
  bandwidth, the binary tree inside a server) the model was 18-37% fast at 32 MiB and the 175B row read
  +15.9%; the fitted model charges the row's 48 MiB all-reduce 487 us (was 465) and the row reads
  +15.5%. Three held-out runs that drive all eight GPUs from one process are slower still (median +29%
  at 1-32 MiB); were Megatron's all-reduces as slow as those, the row would move by about 2 points more.
- **Megatron 2022 rows (Korthikanti et al., +2.2% to +10.3%).** The 2022 code ran the backward
  all-reduce (with sequence parallelism the reduce-scatter, and the re-gather of the
  column-parallel input) beside the GEMMs, and, in fp16 without --accumulate-allreduce-grads-in-fp32,
  still added gradients unfused; both modelled (stack.py), with Megatron's default dropouts and the
  fp16 optimizer step's passes (22B's one micro-batch per iteration makes them 3% of its step). Full
  recomputation against sequence parallelism with selective recomputation: the paper measures
  1.29-1.32x between them on the four models and the projection gives within 5% of each
  (tests/projection/test_published_added.py). The error falls with model size (22B +8-10%, 175B
  +9-10%, 530B +5-7%, 1T +2-3%), as the paper's own per-GPU throughput rises with it (134 to 180 TFLOP/s):
  smaller layers lose more on the A100 than the GEMM, elementwise and collective models charge.
- **OPT-175B (-82% before, now -7.8%).** A wrong configuration, not a modelling bug: projected with
  micro-batch 1 (8 micro-batches) under ZeRO-3, every micro-batch re-gathered all 43.8 GB of a card's
  parameters across 124 servers. metaseq's launcher (opt_baselines.py) runs --update-freq 1 (one
  forward/backward of the replica's 8 sequences) and --no-reshard-after-forward (parameters gathered
  once per step: ZeRO-2 here), with --distribute-checkpointed-activations, now a stack option
  (distribute_saved_activations) without which the row did not fit (84 GiB). Its overlapped
  gathers and reduce-scatters now slow the compute they hide behind (chip comm_units_share) and its
  hidden dropout (metaseq's --dropout 0.1) is modelled: -1.6% became -7.3%, and -9.0% with the measured
  materialised attention; -7.8% with the fitted collective protocols.
- **BLOOM-176B (+12.2%).** The launch script gives micro-batch 2 (was 1) and no dropout; with
  materialised attention it moved from +24% to +17%, and with what its Megatron-DeepSpeed runs by
  default (the backward all-reduce waiting in its mpu layers; DeepSpeed's BF16 optimizer adding each
  of the 128 micro-batches' gradients into fp32 ones) to +12.9%; +11.7% with the measured materialised
  attention, +12.2% with the fitted collective protocols. Its script also sets
  CUDA_LAUNCH_BLOCKING=1, which serialises every kernel with the host; the projection has no way to
  express that.
- **MPT on H100 (+46%, +53%) and on A100 (+22%, +28%).** Eager FSDP runs at 46% / 40% MFU on the
  H100; the projection gives 68% / 61% (llm-foundry's convention): its H100 GEMMs run at the 80% max-achievable figure and little
  else costs. The overlapped FSDP traffic now slows the compute it hides behind (chip comm_units_share),
  which took MPT-13B, whose gathers cross 8 servers, from +75%. The same README's A100 80GB table (the
  same code and settings, 8 GPUs, no checkpointing) measures 64% / 60% MFU: those two rows, added
  after the H100 ones and projected as they came, are +22% and +28%. So the miss is not only the
  H100's: llm-foundry's eager FSDP loses 20-30% beyond what the projection charges on both chips (the
  GEMMs are 84-85% of its projected A100 step), and another 20% on the H100, where the tables predate
  torch 2.0 (the README's own note) and early-2023 kernels reached less of the H100's peak than
  today's 80% GEMM figure (not measured here).
  Like the Megatron rows the rest of the error is in the per-micro-batch compute, not in the
  communication (1.7% of the A100 7B step exposed).
- **LLaMA-7B generation (-7.0%, -4.4%; were -41%, -43%).** The rows were projected with HF's
  DynamicCache, which concatenates: every decode step copied the whole KV cache (aten::cat: 35-52%
  of a decode step at batch 384, 58% at batch 52 with 2,048-token prompts). Inference projections now
  default to a static KV cache, as TensorRT-LLM runs: allocated once at prompt + new tokens, each step
  writing its new K/V in place (index_copy_, charged for the rows it writes), attention over the
  actual length; nothing else changed, nothing tuned. A decode step is now 53.3 ms at batch 384 (the
  attention kernel 55%, the GEMMs 37%) and 45.9 ms at batch 52 (attention 76%). What remains is
  mostly that attention: a one-token query runs the flash kernel's 128-row query tile, so at batch
  384 x 129-256 keys its matrix time (0.90 ms a layer) binds over its KV read (0.66-0.88 ms); a
  decode kernel (TensorRT-LLM's masked multi-head attention) is bound by the read. The batch-52 row
  no longer fits (76.8 GiB, a strict xfail in tests/projection/test_published_added.py): the cache at
  its full 2,176 tokens (55.3 GiB) is held from the prefill on, beside the weights (12.6 GiB) and the
  prefill's working set for 106,496 prompt tokens in HF's module code (9.0 GiB); with DynamicCache the
  prefill held only the prompt's 52 GiB. TensorRT's activation memory planning is not modelled.
  Decode steps are issued eagerly here, although the projection now replays decode as one graph by
  default (as serving engines run it): v0.6.1's gptSessionBenchmark captures CUDA graphs only under
  --enable_cuda_graph, which performance.md's commands do not pass. Replayed as graphs the rows would
  read -3.4% and -1.4% (50.6 and 43.1 ms a step: each kernel's 5 us launch becomes the 1 us
  device-side gap; neither row is host-bound, so host issue was not what separated them).
- **DeepSeek-V3 (-7.5%, does not fit: 92.1 GiB per card).** Projected in the report's recipe: DualPipe
  (Table 2: two stages per rank, PP + 1 micro-batches in flight, bubble (PP/2 - 1)(F&B + B - 3W)),
  recomputation of RMSNorm, the MLA up-projections (sec. 3.2.3) and the MoE SwiGLU output, Linear
  and MoE SwiGLU inputs cached in FP8 and the attention output in E5M6, bf16 AdamW moments (sec. 3.3);
  stack.py / recipe.py model each, FP8 caching for memory only (the GEMMs stay BF16, which errs low).
  Memory: model states 34.3 GiB (twice a stage's: weights 9.7, fp32 gradients 19.4, optimizer states
  5.2) + activations 57.8 GiB (17 in flight x 4 layers x 0.83 GiB + 2.0 GiB of fp32 logits) against
  74.5 GiB; with 1F1B the same recipe fits at 71.7 GiB (1,354 tokens/s, -12.3%). Of the 0.83 GiB per
  MoE layer, HF's module code keeps an fp32 copy of the router's input (0.11 GiB) and the attention
  output twice (0.22 GiB) that the report's kernels need not; the row stays a strict xfail in
  tests/projection/test_published_added.py. Fixed on the way: the traced MoE layer (trace.py's
  _Experts) now saves the routed rows a grouped-GEMM backward needs (0.81 GiB per layer and
  micro-batch before the recipe; it saved only the layer input), the traced attention's logsumexp is
  batch x heads x queries (it was heads times too big: 0.25 GiB per DeepSeek layer), and the optimizer
  step's time updates the parameters ZeRO-1 leaves on the card (routed experts over their
  expert-data-parallel group), as the memory does. The routed experts' gradients reduce-scatter over
  that group too (2 replicas on different servers here, through the network alone), the dense
  parameters' over all 128 data-parallel cards: -7.4% before that split.
"""


def schedule_sensitivity():
    """The Megatron 2021 rows under the other schedule options the paper describes: without the
    scatter/gather of pipeline sends (Megatron-LM's default is with), and interleaved (v virtual
    stages: sec. 5.1 names the interleaved schedule for its runs but not the factor)."""
    from torch_biren.projection import published_runs
    from torch_biren.projection.models import config, resolve

    lines = ["## Megatron 2021 rows under other schedule options", "",
             "The rows above run legacy Megatron-LM's defaults: the plain 1F1B schedule with the scatter/gather of "
             "pipeline sends (Stack.pipeline_scatter_gather). Without scatter/gather, and interleaved with v virtual "
             "stages:", "",
             "| run | scatter/gather | v | projected TFLOP/s per GPU | published | error |", "|---|---|---|---|---|---|"]
    for run in published_runs.RUNS[:2]:
        layers = config(resolve(run.kwargs["model"])).num_hidden_layers // run.kwargs["pp"]  # per stage
        for sg, v in [(False, 1), *((True, v) for v in sorted({2, min(4, layers)}))]:
            st = run.kwargs["stack"].with_(pipeline_scatter_gather=sg)
            alt = run._replace(kwargs=dict(run.kwargs, stack=st, virtual_stages=v))
            t, _ = published_runs.tflops_per_gpu(alt)
            lines.append(f"| {run.name} | {'yes' if sg else 'no'} | {v} | {t:.0f} | {run.tflops_per_gpu:.0f} | "
                         f"{100 * (t / run.tflops_per_gpu - 1):+.1f}% |")
    return "\n".join(lines) + "\n"


def year_over_year():
    """The 2021 rows beside Korthikanti et al. 2022's runs of the same models with the same code path
    on the same machine, in the 2021 paper's convention (TFLOP/s per GPU with the recomputed forward):
    how much of the published change between the years the configurations' differences explain."""
    from torch_biren.projection import published_runs as P
    from torch_biren.projection.models import config, resolve

    lines = ["## The 2021 rows beside the same models a year later", "",
             "Korthikanti et al. 2022 ran GPT-175B and GPT-1T with full recomputation in the same Megatron-LM code "
             "path (TP 8, no flash attention) on the same machine. In the 2021 paper's convention (TFLOP/s per "
             "GPU, recomputed forward counted), the published change between the years against the change the "
             "projection gives for the two configurations; the remainder is what 2021's software lost beside "
             "2022's, which nothing in the model expresses.", "",
             "| model | 2021 published | 2022 published | 2021 / 2022 published | 2021 / 2022 projected | remainder |",
             "|---|---|---|---|---|---|"]
    full = {e.name: e for e in P.ADDED if "Korthikanti" in e.name and "full" in e.name}
    for run, key in zip(P.RUNS[:2], ("175B", "1T")):
        model, cards, _, batch, *_ = P._KORTHIKANTI[key]
        cfg = config(resolve(model))
        flops = P.megatron_flops(batch, 2048, cfg.num_hidden_layers, cfg.hidden_size, 51200)
        entry = next(e for n, e in full.items() if f"GPT-{key}," in n)
        t_proj, t_pub, _, _ = P.project_error(entry)
        pub22, proj22 = flops / t_pub / cards / 1e12, flops / t_proj / cards / 1e12
        proj21, _ = P.tflops_per_gpu(run)
        pub_ratio, proj_ratio = run.tflops_per_gpu / pub22, proj21 / proj22
        lines.append(f"| {run.name} vs {entry.kwargs['cards']} A100 | {run.tflops_per_gpu:.0f} | {pub22:.0f} | "
                     f"{pub_ratio:.3f} | {proj_ratio:.3f} | {100 * (pub_ratio / proj_ratio - 1):+.1f}% |")
    return "\n".join(lines) + "\n"


def layer_check():
    """One transformer layer of Korthikanti et al. 2022's 22B model (their Table 4: TP 8, micro-batch 4),
    forward + backward, measured beside projected: the absolute error, and each option's time over the
    baseline's (which tests/projection/test_published_added.py asserts within 2%)."""
    from torch_biren.projection import published_runs as P

    lines = ["## One layer, below the iteration (Korthikanti et al. 2022, Table 4)", "",
             "Forward + backward of one transformer layer of the 22B model (TP 8, micro-batch 4, seq 2048; the "
             "projection's: the 48-layer step less a 24-layer copy's, over 24, optimizer step excluded). Error in "
             "throughput's sense (+: projected faster).", "",
             "| recompute | sequence parallel | published ms | projected ms | error | published / baseline | "
             "projected / baseline |", "|---|---|---|---|---|---|---|"]
    base, pub_base = P.layer_ms("none", False), P.KORTHIKANTI_LAYER_MS[("none", False)]
    for (recompute, sp), ms in P.KORTHIKANTI_LAYER_MS.items():
        got = P.layer_ms(recompute, sp)
        lines.append(f"| {recompute} | {'yes' if sp else 'no'} | {ms:.1f} | {got:.2f} | {100 * (ms / got - 1):+.1f}% | "
                     f"{ms / pub_base:.3f} | {got / base:.3f} |")
    return "\n".join(lines) + "\n"


def added_markdown():
    """The runs added beyond the reference (published_runs.ADDED), each sourced, nothing tuned on them."""
    from torch_biren.projection import published_runs

    lines = ["## Runs added beyond the reference", "",
             "Found and sourced for issue 13 (published_runs.ADDED: paper or repository, hardware, configuration); "
             "projected in their sources' configurations without tuning anything on them, errors as they come.",
             "", published_runs.error_table(), ""]
    lines += [f"- **{e.name}**: {e.source}. Settings: {e.setup}." for e in published_runs.ADDED]
    return "\n".join(lines) + "\n\n" + NOTES


def main():
    rs = rows()
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "validation.md"), "w") as f:
        f.write(markdown(rs) + "\n" + schedule_sensitivity() + "\n" + year_over_year() + "\n" + layer_check() + "\n"
                + added_markdown())
    return rs


if __name__ == "__main__":
    import torch  # noqa: F401  (before torch_biren)

    main()
    print(open(os.path.join(OUT, "validation.md")).read())
