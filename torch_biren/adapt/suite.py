"""The adaptation suite: the ladder of each (model, dtype) in its own subprocess, so that one crash
does not hide the rest, with a progress bar over all of them, then the report.

    results = run_suite(["qwen2"], ["fp32", "bf16"], steps=20, out="adapt-report")
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

from . import flops, zoo
from .ladder import RUNGS, Options

GiB = 2**30


class DoesNotFit(zoo.ConfigError):
    """A run whose memory the card (or this host, which holds the simulated card's memory) lacks."""


def _available_host_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def memory_estimate(cfg, batch, seq, dtype):
    """Device bytes to train: fp32 weights, gradients and AdamW state (16 B/parameter) plus
    activations (Korthikanti et al. 2022: (34 h + 5 a s) b s bytes per layer in 16-bit, twice that in
    fp32) plus the logits and their gradient. An estimate to refuse runs that cannot fit."""
    params = flops.param_counts(cfg)["total"]
    states = 16 * params
    width = 2 if dtype == "bf16" else 4
    h, a, layers = cfg.hidden_size, cfg.num_attention_heads, cfg.num_hidden_layers
    act = layers * batch * seq * (34 * h + 5 * a * seq) * width // 2
    logits = 3 * batch * seq * cfg.vocab_size * 4
    return {"states": states, "activations": act + logits, "total": states + act + logits}


def _describe(name, dtype, overrides):
    extra = ", ".join(f"{k}={v}" for k, v in overrides.items())
    return f"{name} {dtype}" + (f" ({extra})" if extra else "")


def preflight(opts):
    """Raise ConfigError / DoesNotFit (one-line messages) before any process is started."""
    from ..sim.chip import current_chip, load_chip

    cfg = zoo.config(opts.model, **opts.overrides)
    chip = load_chip(opts.chip) if opts.chip else current_chip()
    est = memory_estimate(cfg, opts.batch, opts.seq, opts.dtype)
    what = _describe(opts.model, opts.dtype, opts.overrides)
    if est["total"] > chip.memory_bytes:
        raise DoesNotFit(
            f"{what} does not fit: training needs about {est['total'] / GiB:.1f} GiB of device memory (weights,"
            f" gradients and AdamW state {est['states'] / GiB:.1f} GiB, activations {est['activations'] / GiB:.1f}"
            f" GiB at batch {opts.batch} x seq {opts.seq}); {chip.label()} has {chip.memory_bytes / GiB:.1f} GiB")
    host = _available_host_bytes()
    if 2 * est["total"] > host:
        raise DoesNotFit(
            f"{what} needs about {2 * est['total'] / GiB:.1f} GiB of host memory (the simulated card's"
            f" {est['total'] / GiB:.1f} GiB plus the CPU reference); this machine has {host / GiB:.1f} GiB available")
    return est


def _crashed(opts, partial, reason):
    """A result for a worker that died: rungs it finished, the one it was on as a crash, the rest not reached."""
    res = partial or {"model": opts.model, "dtype": opts.dtype, "options": asdict(opts), "rungs": []}
    done = {r["id"] for r in res["rungs"] if r["status"] != "not reached"}
    rungs = [r for r in res["rungs"] if r["id"] in done]
    crashed = False
    for rid, name in RUNGS.items():
        if rid in done:
            continue
        if not crashed:
            rungs.append({"id": rid, "name": name, "status": "fail", "kind": "crash", "detail": reason, "metrics": {}})
            crashed = True
        else:
            rungs.append({"id": rid, "name": name, "status": "not reached", "kind": None,
                          "detail": f"process died at {rungs[-1]['id'] if crashed else rid}", "metrics": {}})
    res.update(rungs=rungs, ok=False, done=True, crashed=reason)
    return res


def _run_one(opts, workdir, timeout, env, on_event):
    path = os.path.join(workdir, f"{opts.model}-{opts.dtype}.json")
    cmd = [sys.executable, "-m", "torch_biren.adapt.worker", json.dumps(asdict(opts)), path]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    err_lines = []
    err_thread = threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)
    err_thread.start()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            if line.startswith("@@ "):
                try:
                    on_event(opts, json.loads(line[3:]))
                except ValueError:
                    pass
        proc.wait()
    finally:
        timed_out = not timer.is_alive() and proc.returncode != 0
        timer.cancel()
    err_thread.join(timeout=5)
    partial = None
    if os.path.exists(path):
        with open(path) as f:
            partial = json.load(f)
    if partial and partial.get("done"):
        if proc.returncode:  # finished the ladder, then died (e.g. at interpreter exit): say so, keep results
            partial["exit_warning"] = f"worker exited with status {proc.returncode} after finishing the ladder"
        return partial
    if timed_out:
        reason = f"timed out after {timeout:.0f} s"
    elif proc.returncode < 0:
        reason = f"process killed by signal {-proc.returncode}"
    else:
        reason = f"process exited with status {proc.returncode}"
    tail = [line.rstrip() for line in err_lines if line.strip() and "Warning" not in line][-3:]
    if tail:
        reason += ": " + " | ".join(tail)[-400:]
    return _crashed(opts, partial, reason)


def run_suite(models, dtypes=("fp32", "bf16"), jobs=None, timeout=900, progress=True, **option_kw):
    """Run the ladder for every (model, dtype), each in its own subprocess, `jobs` at a time.
    Returns the results in the order asked. Raises ConfigError / DoesNotFit before starting."""
    all_opts = [Options(model=m, dtype=d, **option_kw) for m in models for d in dtypes]
    for o in all_opts:
        preflight(o)
    jobs = jobs or min(len(all_opts), max(1, os.cpu_count() or 1))
    env = dict(os.environ)
    if jobs > 1:  # one core per ladder; BLAS threads would only fight
        env.setdefault("TORCH_BIREN_ADAPT_THREADS", "1")
    per_job = len(RUNGS) + all_opts[0].steps
    bar = _bar(len(all_opts) * per_job, progress)
    lock = threading.Lock()
    status = {}

    def on_event(opts, ev):
        with lock:
            key = f"{opts.model}/{opts.dtype}"
            if ev["event"] == "rung":
                status[key] = ev["rung"]
            elif ev["event"] == "step":
                status[key] = f"L3 {ev['step']}/{ev['steps']}"
                bar.update(1)
            elif ev["event"] == "rung_done":
                bar.update(1)
                if ev["rung"] == list(RUNGS)[-1]:
                    status.pop(key, None)
            bar.set_postfix_str(" ".join(f"{k}:{v}" for k, v in sorted(status.items())), refresh=True)

    with tempfile.TemporaryDirectory(prefix="biren-adapt-") as workdir:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_run_one, o, workdir, timeout, env, on_event) for o in all_opts]
            results = [f.result() for f in futures]
    bar.close()
    return results


def _bar(total, enabled):
    """tqdm over all ladders' rungs and training steps; shown on a terminal only."""
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=None if enabled else True, desc="adapt", unit="step", dynamic_ncols=True, leave=False,
                file=sys.stderr)
