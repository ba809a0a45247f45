"""Triton kernels vs torch, measured side by side in one run.

CPU: the kernels run under Triton's interpreter (what the biren device executes); torch runs its
native CPU kernels. Times are the best of several interleaved runs, so background load hurts
both sides alike. With CUDA, also compiled Triton vs torch on the GPU.

    python benchmarks/kernels.py [--quick] [--no-write]
"""

import argparse
import datetime
import os
import platform
import time

import torch
import torch.nn.functional as F
import triton
from tqdm import tqdm

from torch_biren.kernels import attention_fwd, mm

HERE = os.path.dirname(os.path.abspath(__file__))

# (label, M, N, K): tokens=512 through Qwen2.5 projections
GEMMS = [
    ("square 1024^3", 1024, 1024, 1024),
    ("Qwen2.5-0.5B gate/up (512 x 896 -> 4864)", 512, 4864, 896),
    ("Qwen2.5-0.5B down (512 x 4864 -> 896)", 512, 896, 4864),
    ("Qwen2.5-7B q/o proj (512 x 3584 -> 3584)", 512, 3584, 3584),
]
ATTENTION = [(1, 8, 512, 64, False), (1, 8, 512, 128, False), (1, 8, 512, 128, True)]


def best_of(fn, repeats):
    fn()  # warm-up (rewrites, caches)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def interleaved(torch_fn, triton_fn, rounds, repeats):
    """Best times of torch and Triton over alternating rounds."""
    t_torch, t_triton = float("inf"), float("inf")
    for _ in range(rounds):
        t_torch = min(t_torch, best_of(torch_fn, repeats))
        t_triton = min(t_triton, best_of(triton_fn, 1))
    return t_torch, t_triton


def cpu_rows(quick):
    rows = []
    gemms = GEMMS[:2] if quick else GEMMS
    cases = [(g, torch.float32) for g in gemms] + [(GEMMS[0], torch.bfloat16)]
    attn = ATTENTION[:1] if quick else ATTENTION
    rounds = 2 if quick else 3
    with tqdm(total=len(cases) + len(attn), desc="cpu", leave=False) as bar:
        for (label, M, N, K), dtype in cases:
            a, b = torch.randn(M, K).to(dtype), torch.randn(K, N).to(dtype)
            out_ref, out = torch.empty(M, N, dtype=dtype), torch.empty(M, N, dtype=dtype)
            tt, tk = interleaved(lambda: torch.mm(a, b, out=out_ref), lambda: mm(a, b, out), rounds, 5)
            err = (out.float() - out_ref.float()).abs().max().item()
            rows.append((f"mm {label} {str(dtype)[6:]}", tt, tk, 2 * M * N * K, err))
            bar.update()
        for B, H, L, D, causal in attn:
            q, k, v = (torch.randn(B, H, L, D) for _ in range(3))
            out, lse = torch.empty(B, H, L, D), torch.empty(B, H, L)
            tt, tk = interleaved(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
                                 lambda: attention_fwd(q, k, v, out, lse, causal=causal), rounds, 5)
            err = (out - F.scaled_dot_product_attention(q, k, v, is_causal=causal)).abs().max().item()
            flops = 4 * B * H * L * L * D // (2 if causal else 1)
            rows.append((f"attention fwd B={B} H={H} L={L} D={D}{' causal' if causal else ''} fp32", tt, tk, flops,
                         err))
            bar.update()
    return rows


def gpu_rows():
    from triton.testing import do_bench
    rows = []
    n = 4096
    a, b = (torch.randn(n, n, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    out = torch.empty(n, n, device="cuda", dtype=torch.bfloat16)
    tt, tk = do_bench(lambda: torch.mm(a, b)) * 1e-3, do_bench(lambda: mm(a, b, out)) * 1e-3
    rows.append((f"mm {n}^3 bf16", tt, tk, 2 * n**3, (out.float() - torch.mm(a, b).float()).abs().max().item()))
    B, H, L, D = 2, 16, 4096, 128
    q, k, v = (torch.randn(B, H, L, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    o, lse = torch.empty_like(q), torch.empty(B, H, L, device="cuda")
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.FLASH_ATTENTION):
        tt = do_bench(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)) * 1e-3
        ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    tk = do_bench(lambda: attention_fwd(q, k, v, o, lse, causal=True)) * 1e-3
    rows.append((f"attention fwd B={B} H={H} L={L} D={D} causal bf16", tt, tk, 2 * B * H * L * L * D,
                 (o.float() - ref.float()).abs().max().item()))
    return rows


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def table(rows, rate="GFLOP/s", rate_scale=1e-9):
    lines = [f"| case | torch (ms) | triton (ms) | triton / torch | torch {rate} | triton {rate} | max abs err |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, tt, tk, flops, err in rows:
        lines.append(f"| {name} | {tt * 1e3:.2f} | {tk * 1e3:.2f} | {tk / tt:.2f}x | "
                     f"{flops / tt * rate_scale:.1f} | {flops / tk * rate_scale:.1f} | {err:.1e} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer cases and rounds")
    parser.add_argument("--no-write", action="store_true", help="print only, do not write benchmarks/results")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    rows = cpu_rows(args.quick)
    header = (f"- CPU: {cpu_model()} ({os.cpu_count()} logical cores, torch threads: {torch.get_num_threads()})\n"
              f"- date: {datetime.datetime.now().isoformat(timespec='minutes')}\n"
              f"- torch {torch.__version__}, triton {triton.__version__}, Python {platform.python_version()}\n"
              "- Triton kernels run under Triton's interpreter (torch_biren.kernels picks it for CPU tensors);\n"
              "  times are the best of interleaved runs (torch: 5 per round, Triton: 1 per round).\n"
              f"- load average (1 min) before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f} "
              "(other work on the cores slows both sides, torch's two threads the most)")
    report = f"# torch_biren.kernels on CPU (Triton interpreter) vs torch\n\n{header}\n\n{table(rows)}\n"
    print(report)
    if not args.no_write:
        os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
        with open(os.path.join(HERE, "results", "kernels_cpu.md"), "w") as f:
            f.write(report)
    if torch.cuda.is_available():
        gpu = table(gpu_rows(), "TFLOP/s", 1e-12)
        gpu_report = (f"# torch_biren.kernels compiled on {torch.cuda.get_device_name()} vs torch\n\n"
                      f"- date: {datetime.datetime.now().isoformat(timespec='minutes')}\n\n{gpu}\n")
        print(gpu_report)
        if not args.no_write:
            with open(os.path.join(HERE, "results", "kernels_gpu.md"), "w") as f:
                f.write(gpu_report)


if __name__ == "__main__":
    main()
