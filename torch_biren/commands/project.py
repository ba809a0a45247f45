"""Project a full-size model on N cards without allocating it: step time, tokens/s, MFU, memory
per card (weights, gradients, optimizer states, activations, KV cache) and whether it fits, the
communication share and the top ops by time. Uses the live device's cost functions on a trace of
the model's layers (torch_biren.projection) and the collective cost model for parallelism.

  python -m torch_biren project --model qwen2.5-72b --cards 8 --mode train --batch 8 --seq 4096 --tp 8
  python -m torch_biren project --model path/to/config.json --cards 64 --auto
  python -m torch_biren project --model deepseek-v3 --cards 32 --mode decode --batch 64 --seq 4096 --tp 8 --pp 4 --ep 8
  python -m torch_biren project --model qwen2.5-7b --mode decode --batch 32 --seq 4096 --max-cache-len 8192
"""

import json

HELP = "project a full-size model's step time, throughput and memory on N cards"
# Prices on the device model only: nothing runs on the device (cli.exit skips the teardown).
DEVICE_FREE = True


def _positive(text):
    import argparse

    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    return v


def add_arguments(p):
    import argparse

    p.add_argument("--model", required=True, help="published model (qwen2.5-72b, deepseek-v3, gpt-175b, ...), "
                   "tiny-<family>, or an HF config.json (or a folder holding one)")
    p.add_argument("--cards", type=_positive, default=1)
    p.add_argument("--mode", default="train", help="train | prefill | decode")
    p.add_argument("--batch", type=_positive, default=None,
                   help="global batch (sequences; default one per data-parallel replica, x 4 pp when pipelined)")
    p.add_argument("--seq", type=_positive, default=None,
                   help="sequence length (decode: cached context; default 2048 or the model's context)")
    p.add_argument("--chip", default="BR166", help="chip name or spec file (default BR166)")
    p.add_argument("--memory-mode", default=None, help="UMA | NUMA (multi-die chips)")
    for name in ("dp", "tp", "pp", "ep", "cp"):
        p.add_argument(f"--{name}", type=_positive, default=None if name == "dp" else 1, help=f"{name} degree")
    p.add_argument("--micro-batch", type=_positive, default=None)
    p.add_argument("--virtual-stages", type=_positive, default=1,
                   help="interleaved 1F1B schedule: layer chunks per card (default 1: plain 1F1B)")
    p.add_argument("--recompute", nargs="?", const="full", default="none", choices=("none", "selective", "full"),
                   help="activation recomputation (Korthikanti et al. 2022; bare --recompute: full)")
    p.add_argument("--zero", type=int, default=0, choices=(0, 1, 2, 3),
                   help="optimizer sharding over dp: 1 distributed optimizer, 2 + gradients, 3 + weights (FSDP)")
    p.add_argument("--fsdp", action="store_true", help="FSDP: the same as --zero 3")
    p.add_argument("--sequence-parallel", action="store_true", help="Megatron sequence parallelism (with --tp)")
    p.add_argument("--overlap-grad-reduce", action="store_true", help="DP gradient reduction during backward")
    p.add_argument("--overlap-param-gather", action="store_true", help="parameter all-gather during forward")
    p.add_argument("--tp-comm-overlap", action="store_true", help="TP collectives behind the layer GEMMs")
    p.add_argument("--tp-backward-overlap", action=argparse.BooleanOptionalAction, default=None,
                   help="the backward input-gradient TP collectives beside the weight-gradient GEMMs, as Megatron "
                   "runs them (default on; --no-tp-backward-overlap: waiting, as Megatron-LM before September 2021)")
    p.add_argument("--grad-accumulation-fusion", action=argparse.BooleanOptionalAction, default=None,
                   help="gradient accumulation inside the weight-gradient GEMMs (Megatron's default, on); "
                   "--no-grad-accumulation-fusion: an add of every micro-batch's gradients after the first "
                   "(PyTorch's AccumulateGrad, legacy Megatron-LM)")
    p.add_argument("--grad-bytes", type=int, default=4, choices=(2, 4), help="gradient bytes (Megatron: fp32)")
    p.add_argument("--recompute-modules", default="",
                   help="comma-separated: layernorm, mla_up_proj, moe_act run again in backward (Megatron-Core's "
                        "--recompute-modules; DeepSeek-V3's recipe)")
    p.add_argument("--fp8-activations", action="store_true",
                   help="cache saved Linear and MoE SwiGLU inputs in FP8, the attention output in E5M6 (DeepSeek-V3; "
                        "memory only: the GEMMs stay BF16)")
    p.add_argument("--moment-bytes", type=int, default=4, choices=(2, 4), help="AdamW moment bytes (DeepSeek-V3: bf16)")
    p.add_argument("--schedule", default="1f1b", choices=("1f1b", "dualpipe"),
                   help="pipeline schedule (DualPipe: two stages per card, pp + 1 micro-batches in flight)")
    p.add_argument("--auto", action="store_true",
                   help="search tp/pp/dp/ep/cp/micro-batch/recompute for the fastest configurations that fit")
    p.add_argument("--auto-top", type=_positive, default=5, help="configurations --auto lists")
    p.add_argument("--network", default=None, help="roce-100/200/400, ib-200/400, supernode-N, or bytes/s per card")
    p.add_argument("--cards-per-server", type=_positive, default=8)
    p.add_argument("--storage-GBps", type=float, default=None, help="checkpoint storage bandwidth (GB/s, aggregate)")
    p.add_argument("--unfused", action="store_true", help="HF module code without torch_biren's fused kernels")
    p.add_argument("--kv-cache", default=None, choices=("static", "dynamic"),
                   help="prefill/decode KV cache, as HF's cache_implementation names them: static (default: "
                   "allocated at --max-cache-len, new K/V written in place, as serving engines run) or dynamic "
                   "(HF's eager default: the cache concatenated every step)")
    p.add_argument("--max-cache-len", type=_positive, default=None,
                   help="tokens the static KV cache is allocated for (default the step's: context + 1, or seq)")
    p.add_argument("--graphs", action=argparse.BooleanOptionalAction, default=None,
                   help="decode: replay the step as one captured graph (CUDA Graphs, as serving engines run "
                   "decode): one graph launch plus a device-side gap per kernel instead of host issue per kernel "
                   "(default on for decode with the static KV cache; --no-graphs: eager issue)")
    p.add_argument("--top", type=int, default=8, help="ops to list")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-ranges", action="store_true",
                   help="skip the low-high ranges from the chip's inferred numbers (each re-prices the step)")


def projection_kwargs(args):
    """project()'s keyword arguments from the parsed options (the sensitivity command shares them)."""
    from ..cli import UsageError

    if args.storage_GBps is not None and not args.storage_GBps > 0:
        raise UsageError(f"--storage-GBps must be positive, got {args.storage_GBps:g}")
    return dict(cards=args.cards, mode=args.mode, batch=args.batch, seq=args.seq, chip=args.chip,
                network=args.network, cards_per_server=args.cards_per_server, fused=not args.unfused,
                storage_GBps=args.storage_GBps, memory_mode=args.memory_mode, recompute=args.recompute,
                zero=3 if args.fsdp else args.zero, sequence_parallel=args.sequence_parallel,
                overlap_grad_reduce=args.overlap_grad_reduce, overlap_param_gather=args.overlap_param_gather,
                tp_comm_overlap=args.tp_comm_overlap, tp_backward_overlap=args.tp_backward_overlap,
                grad_accumulation_fusion=args.grad_accumulation_fusion, grad_bytes=args.grad_bytes,
                recompute_modules=args.recompute_modules, fp8_activations=args.fp8_activations,
                moment_bytes=args.moment_bytes, schedule=args.schedule, kv_cache=args.kv_cache,
                max_cache_len=args.max_cache_len, graphs=args.graphs)


def plan_kwargs(args):
    """The parallel plan's options (not searched by --auto)."""
    return dict(dp=args.dp, tp=args.tp, pp=args.pp, ep=args.ep, cp=args.cp, micro_batch=args.micro_batch,
                virtual_stages=args.virtual_stages)


def run(args):
    from ..cli import UsageError
    from .. import projection

    kw = projection_kwargs(args)
    try:
        if args.auto:
            from ..projection import search

            kw.pop("recompute")  # searched (it was passed twice: a TypeError)
            found = search.search(args.model, top=args.auto_top, **kw)
            print(json.dumps(found.as_dict(), indent=1) if args.json else found.report(args.top))
            return 0
        r = projection.project(args.model, ranges=not args.no_ranges, **plan_kwargs(args), **kw)
    except projection.ProjectionError as err:
        raise UsageError(str(err)) from None
    except ValueError as err:  # chip, network or config values
        raise UsageError(str(err).splitlines()[0]) from None
    print(json.dumps(r.as_dict(), indent=1) if args.json else r.report(args.top))
    return 0
