"""Simulator overhead: wall time per op of tiny ops, and of a small transformer's training step, on
biren vs on the CPU, measured side by side in one run. Targets: <= 2x for tiny ops, <= 1.6x for the
step (GEMM and attention on the reference ATen kernels: TORCH_BIREN_KERNELS=reference)."""

import argparse
import copy
import json
import os
import platform
import time

os.environ.setdefault("TORCH_BIREN_KERNELS", "reference")

import torch  # noqa: E402

from torch_biren.adapt import zoo  # noqa: E402

TINY_OPS = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "relu": lambda a, b: torch.relu(a),
    "view": lambda a, b: a.view(16),
    "mm 4x4": lambda a, b: a @ b,
}


def per_call(fn, iters, repeats=7):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        best = min(best, (time.perf_counter() - t0) / iters)
    return best


def tiny_ops(iters):
    rows = []
    for name, op in TINY_OPS.items():
        times = {}
        for dev in ("cpu", "biren"):
            a = torch.randn(4, 4, device=dev)
            b = torch.randn(4, 4, device=dev)
            times[dev] = per_call(lambda: op(a, b), iters)
        rows.append({"op": name, "cpu_us": times["cpu"] * 1e6, "biren_us": times["biren"] * 1e6,
                     "ratio": times["biren"] / times["cpu"]})
    return rows


def train_step(iters):
    base = zoo.build("qwen2")
    ids = torch.randint(0, zoo.VOCAB, (4, 64))
    times = {}
    for dev in ("cpu", "biren"):
        model = copy.deepcopy(base).to(dev).train()
        x = ids.to(dev)

        def step():
            model.zero_grad(set_to_none=True)
            model(x, labels=x).loss.backward()

        times[dev] = per_call(step, iters, repeats=5)
    return {"model": "qwen2 (tiny)", "batch": list(ids.shape), "cpu_ms": times["cpu"] * 1e3,
            "biren_ms": times["biren"] * 1e3, "ratio": times["biren"] / times["cpu"]}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = p.parse_args()
    torch.set_num_threads(1)  # per-op overhead, not kernel throughput
    ops = tiny_ops(args.iters)
    step = train_step(max(args.iters // 200, 3))
    lines = [f"# Simulator overhead (wall clock, {platform.processor() or platform.machine()}, 1 thread, "
             f"TORCH_BIREN_KERNELS={os.environ['TORCH_BIREN_KERNELS']})", "",
             "| op (4x4 fp32) | CPU µs | biren µs | ratio (target ≤ 2) |", "|---|---:|---:|---:|"]
    lines += [f"| {r['op']} | {r['cpu_us']:.2f} | {r['biren_us']:.2f} | {r['ratio']:.2f} |" for r in ops]
    lines += ["", "| training step | CPU ms | biren ms | ratio (target ≤ 1.6) |", "|---|---:|---:|---:|",
              f"| {step['model']} fwd+bwd, batch {step['batch']} | {step['cpu_ms']:.1f} | {step['biren_ms']:.1f} | "
              f"{step['ratio']:.2f} |"]
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "overhead.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "overhead.json"), "w") as f:
        json.dump({"tiny_ops": ops, "train_step": step}, f, indent=1)


if __name__ == "__main__":
    main()
