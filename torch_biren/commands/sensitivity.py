"""How a simulated result moves across the ranges of the chip's inferred numbers: each number the
chip file gives a "range" is set to its low end and then its high end, one at a time, and the
result recomputed; the table ranks the numbers by how far they move it and names the three it
depends on most (torch_biren.sim.sensitivity).

  python -m torch_biren sensitivity project --model qwen2.5-72b --cards 8 --mode train --batch 8 --seq 4096 --tp 8
  python -m torch_biren sensitivity op aten::mm 4096x4096 4096x4096 --dtype bfloat16
  python -m torch_biren sensitivity op aten::copy_ 1073741824 1073741824 --dtype uint8 --memory-mode NUMA

`project` takes the project command's options and reports step time, tokens/s and MFU (ranked by
step time); `op` prices one aten op on tensors of the given shapes (AxBxC, one per tensor argument)
with the device model's formula (ranked by its time).
"""

HELP = "show how a projection or an op's simulated time moves across the chip's inferred ranges"
# Prices on the device model only: nothing runs on the device (cli.exit skips the teardown).
DEVICE_FREE = True


def add_arguments(p):
    from . import project

    sub = p.add_subparsers(dest="target", metavar="TARGET", required=True)
    pp = sub.add_parser("project", help="a projection's step time, tokens/s and MFU")
    project.add_arguments(pp)
    op = sub.add_parser("op", help="one aten op's simulated time")
    op.add_argument("op", help="aten op, e.g. aten::mm, aten::addmm, aten::copy_")
    op.add_argument("shapes", nargs="+", help="one shape per tensor argument: 4096x4096 (a scalar tensor: ())")
    op.add_argument("--dtype", default="bfloat16", help="element type of every tensor (default bfloat16)")
    op.add_argument("--chip", default="BR166", help="chip name or spec file (default BR166)")
    op.add_argument("--memory-mode", default=None, help="UMA | NUMA (multi-die chips)")


def _chip(name, mode):
    from ..cli import UsageError
    from ..sim.chip import ChipSpecError, load_chip

    try:
        chip = load_chip(name)
        return chip.with_mode(mode) if mode else chip
    except (ChipSpecError, ValueError, FileNotFoundError) as err:
        raise UsageError(str(err)) from None


def _projection(args):
    from .. import projection
    from .project import plan_kwargs, projection_kwargs

    kw = {**projection_kwargs(args), **plan_kwargs(args)}
    kw.pop("chip"), kw.pop("memory_mode")  # the chip comes from each range end (already in its mode)

    def result(chip):  # the traces are re-priced for each chip, not re-traced (projection/layers.py)
        r = projection.project(args.model, chip=chip, suggest=False, **kw)
        return {"step time (ms)": r.step_ns / 1e6, "tokens/s": r.tokens_per_s, "MFU": r.mfu}

    return result


def _op(args):
    import torch

    from ..cli import UsageError
    from ..sim import registry

    dtype = getattr(torch, args.dtype, None)
    if not isinstance(dtype, torch.dtype):
        raise UsageError(f"unknown dtype '{args.dtype}'")
    try:
        shapes = [tuple(int(x) for x in s.strip("()").split("x") if x) for s in args.shapes]
    except ValueError:
        raise UsageError(f"shapes must look like 4096x4096, got {' '.join(args.shapes)}") from None
    tensors = [registry.TensorSpec(s, dtype) for s in shapes]
    if not registry.has_cost(args.op):
        raise UsageError(f"{args.op} has no cost formula (the runtime charges it the generic roofline)")

    def result(chip):
        return {"time (us)": registry.cost_of(args.op, tensors, chip=chip).ns / 1e3}

    return result


def run(args):
    from ..cli import UsageError
    from .. import projection
    from ..sim.sensitivity import sensitivity

    chip = _chip(args.chip, args.memory_mode)
    result = _projection(args) if args.target == "project" else _op(args)
    try:
        study = sensitivity(chip, result)
    except projection.ProjectionError as err:
        raise UsageError(str(err)) from None
    except (KeyError, ValueError) as err:
        raise UsageError(str(err).splitlines()[0]) from None
    print(study.table())
    return 0
