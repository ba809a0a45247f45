"""A plain PyTorch training loop on biren: what a user's script looks like, nothing device-specific
beyond the device string.

    python models/train.py --model qwen2 --steps 200 --amp bf16 --checkpoint ckpt.pt --save-every 50
    python models/train.py --model qwen2 --steps 200 --amp bf16 --checkpoint ckpt.pt --resume

A zoo model (a real HF causal LM from a tiny seeded config) learns the bundled English corpus, one
byte per token: model.to("biren"), a DataLoader with pin_memory=True feeding non-blocking copies,
AMP (autocast bf16; fp16 adds a GradScaler), AdamW with warmup and cosine decay, gradient clipping,
checkpoints holding model, optimizer, scheduler, scaler, step and every RNG state, so a resumed run
continues with exactly the losses of an uninterrupted one. At the end it prints the simulated
throughput, timed with biren events as one would time a CUDA run.
"""

import argparse
import json
import math
import os
import random
import time

import torch

from torch_biren.adapt import data, flops, zoo


class EpochSampler(torch.utils.data.Sampler):
    """A fresh shuffle per epoch, a function of (seed, epoch) alone, starting at `start`: resuming at
    step s replays the same order from the same place."""

    def __init__(self, n, seed, epoch=0, start=0):
        self.n, self.seed, self.epoch, self.start = n, seed, epoch, start

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g)[self.start:].tolist())

    def __len__(self):
        return self.n - self.start


def loader(ds, args, epoch, start_batch):
    sampler = EpochSampler(len(ds), args.seed, epoch, start_batch * args.batch)
    return torch.utils.data.DataLoader(ds, batch_size=args.batch, sampler=sampler, drop_last=True,
                                       pin_memory=True, num_workers=args.workers)


def rng_state(device):
    return {"python": random.getstate(), "cpu": torch.get_rng_state(),
            "device": torch.get_device_module(device.type).get_rng_state(device)}


def set_rng_state(state, device):
    random.setstate(state["python"])
    torch.set_rng_state(state["cpu"])
    torch.get_device_module(device.type).set_rng_state(state["device"], device)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="qwen2", choices=zoo.names())
    p.add_argument("--device", default="biren")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], default="bf16")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--checkpoint", default=None, help="checkpoint file to write (and --resume from)")
    p.add_argument("--save-every", type=int, default=0, help="also checkpoint every N steps")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--stop-after", type=int, default=None, help="stop (and checkpoint) after this step")
    p.add_argument("--log", default=None, help="append one JSON line per step (step, loss, lr) to this file")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    random.seed(args.seed)

    model = zoo.build(args.model, seed=args.seed).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / args.warmup) * 0.5 * (
        1 + math.cos(math.pi * min(s, args.steps) / args.steps)))
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=args.amp == "fp16")  # bf16 needs no loss scaling

    ds = data.Batches(data.corpus_tokens(), args.seq, stride=args.seq // 2)
    per_epoch = len(ds) // args.batch
    step = 0
    if args.resume:
        ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=False)  # states copy to the device
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"], device)
        step = ckpt["step"]
        print(f"resumed from {args.checkpoint} at step {step}")

    def save():
        if args.checkpoint:
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                        "scaler": scaler.state_dict(), "step": step, "rng": rng_state(device),
                        "args": vars(args)}, args.checkpoint)

    last = min(args.steps, args.stop_after or args.steps)
    timed = device.type != "cpu"
    if timed:
        dev_mod = torch.get_device_module(device.type)
        start, end = dev_mod.Event(enable_timing=True), dev_mod.Event(enable_timing=True)
        first_step = step
        start.record()
    wall = time.time()
    log = open(args.log, "a") if args.log else None
    while step < last:
        epoch, offset = divmod(step, per_epoch)
        for batch in loader(ds, args, epoch, offset):
            ids = batch.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = model(input_ids=ids, labels=ids).loss
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
            sched.step()
            step += 1
            value = loss.item()
            if log:
                log.write(json.dumps({"step": step, "loss": value, "lr": sched.get_last_lr()[0]}) + "\n")
            if step % 10 == 0 or step == last:
                print(f"step {step:5d}/{args.steps}  loss {value:.4f}  lr {sched.get_last_lr()[0]:.2e}")
            if args.save_every and step % args.save_every == 0:
                save()
            if step >= last:
                break
    wall = time.time() - wall
    if log:
        log.close()
    save()
    if args.checkpoint:
        print(f"checkpoint: {args.checkpoint} (step {step})")

    if timed and step > first_step:
        end.record()
        end.synchronize()
        ms = start.elapsed_time(end) / (step - first_step)  # simulated milliseconds on biren
        tokens = args.batch * args.seq
        n_model = flops.param_counts(model)["model"]
        mfu = ""
        if device.type == "biren":
            from torch_biren.sim.chip import current_chip

            chip = current_chip()
            fl = flops.train_flops(model.config, args.batch, args.seq, n_model)
            mfu = f", MFU {100 * fl / (ms * 1e-3) / chip.matrix_flops(torch.bfloat16):.4f}% of {chip.label()} BF16 peak"
        print(f"simulated {device}: {ms:.2f} ms/step, {tokens / (ms * 1e-3):,.0f} tokens/s{mfu};"
              f" peak memory {torch.get_device_module(device.type).max_memory_allocated(device) / 2**20:.1f} MiB;"
              f" wall {wall:.1f} s for {step - first_step} steps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
