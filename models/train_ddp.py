"""Data-parallel training on biren with torchrun: DDP or FSDP2, the bccl backend, DCP checkpoints.

    torchrun --nproc_per_node 2 models/train_ddp.py --model qwen2 --steps 20
    torchrun --nproc_per_node 4 models/train_ddp.py --model llama --fsdp --steps 20 --checkpoint ckpt
    torchrun --nproc_per_node 4 models/train_ddp.py --model llama --fsdp --steps 40 --checkpoint ckpt --resume

What a CUDA script does, with "biren" for "cuda" and "bccl" for "nccl": torchrun starts one process
per card; init_process_group("bccl") gives each the card LOCAL_RANK names (every process sees the 8
cards of its simulated server); each trains on its slice of the global batch. The collectives run for
real (gloo over host views of device memory) and are charged on each card's simulated timeline with
the BR166 server's link model, so the printed step time includes communication. --fsdp shards
parameters, gradients and optimizer state with fully_shard over a 1-D DeviceMesh on "biren";
--checkpoint saves with torch.distributed.checkpoint (each rank writes its shards) and --resume loads
them, continuing with the losses of an uninterrupted run.
"""

import argparse
import json
import os
import time

import torch
import torch.distributed as dist

from torch_biren.adapt import data, zoo


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="qwen2", choices=zoo.names())
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--global-batch", type=int, default=8, help="sequences per step over all ranks")
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--fsdp", action="store_true", help="FSDP2 (fully_shard) instead of DDP")
    p.add_argument("--checkpoint", default=None, help="DCP checkpoint directory, written at the end")
    p.add_argument("--resume", action="store_true", help="load --checkpoint first and continue from its step")
    p.add_argument("--log", default=None, help="append one JSON line per step (rank 0)")
    args = p.parse_args()

    dist.init_process_group("bccl")  # LOCAL_RANK -> torch.biren.set_device
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("biren", torch.biren.current_device())
    if args.global_batch % world:
        raise SystemExit(f"--global-batch {args.global_batch} must divide by the {world} ranks")
    local_batch = args.global_batch // world

    model = zoo.build(args.model, seed=0).train()
    if args.fsdp:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh("biren", (world,))
        for layer in model.model.layers:
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)  # moves the parameters' shards to this rank's card
    else:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(model.to(device))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)

    step = 0
    if args.resume:
        step = load(args.checkpoint, model, opt)
        if rank == 0:
            print(f"resumed from {args.checkpoint} at step {step}")

    batches = data.training_batches(args.steps, args.global_batch, args.seq)
    start, end = torch.biren.Event(enable_timing=True), torch.biren.Event(enable_timing=True)
    first = step
    start.record()
    wall = time.time()
    log = open(args.log, "a") if args.log and rank == 0 else None
    while step < args.steps:
        ids = batches[step][rank * local_batch:(rank + 1) * local_batch].to(device)
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        mean = loss.detach().clone()
        dist.all_reduce(mean, dist.ReduceOp.AVG)  # the global batch's loss
        if rank == 0:
            print(f"step {step:4d}  loss {mean.item():.4f}", flush=True)
            if log:
                log.write(json.dumps({"step": step, "loss": mean.item()}) + "\n")
    end.record()
    end.synchronize()
    if step > first and rank == 0:
        ms = start.elapsed_time(end) / (step - first)
        tokens = args.global_batch * args.seq
        print(f"{'FSDP2' if args.fsdp else 'DDP'} on {world} simulated cards: {ms:.2f} ms/step simulated "
              f"({tokens / ms * 1e3:,.0f} tokens/s), {(time.time() - wall) / (step - first):.2f} s/step wall")
    if args.checkpoint:
        save(args.checkpoint, model, opt, step)
    dist.destroy_process_group()


def save(path, model, opt, step):
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    msd, osd = get_state_dict(model, opt)
    dcp.save({"model": msd, "optim": osd, "step": torch.tensor(step)}, checkpoint_id=path)


def load(path, model, opt):
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    msd, osd = get_state_dict(model, opt)
    state = {"model": msd, "optim": osd, "step": torch.tensor(0)}
    dcp.load(state, checkpoint_id=path)
    set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
    return int(state["step"])


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
