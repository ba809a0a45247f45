"""CUDA migration: an unmodified CUDA training script runs on biren with the same losses as on the
CPU, every mapped API behaves as on CUDA, and disable() puts everything back.

Everything runs in fresh interpreters: the migration patches torch for the whole process."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from torch_biren.migration import env

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SCRIPT = HERE / "nanogpt_train.py"
CORPUS = ROOT / "torch_biren" / "data" / "corpus.txt"
ITERS = 8


def _env(**extra):
    e = dict(os.environ)
    for name in ("TORCH_BIREN_MIGRATE_CUDA", "TORCH_BIREN_MIGRATE_QUIET", "BIREN_VISIBLE_DEVICES",
                 "CUDA_VISIBLE_DEVICES", "TORCH_BIREN_KERNELS", "TORCH_BIREN_FP64", "TORCH_BIREN_FALLBACK"):
        e.pop(name, None)
    e.update(extra)
    return e


def _start(tmp_path, to, dtype, kernels="reference", quiet="1"):
    out = tmp_path / f"{to}-{dtype}"
    cmd = [sys.executable, "-m", "torch_biren.migration", "--to", to, str(SCRIPT), f"--data_path={CORPUS}",
           f"--out_dir={out}", f"--dtype={dtype}", f"--max_iters={ITERS}", f"--eval_interval={ITERS // 2}",
           f"--lr_decay_iters={ITERS}"]
    return subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(TORCH_BIREN_KERNELS=kernels, TORCH_BIREN_MIGRATE_QUIET=quiet))


def _finish(proc):
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"script failed:\n{out}\n{err}"
    losses = [float(x) for x in re.findall(r"^iter \d+: loss ([0-9.]+)", out, re.M)]
    resumed, live, dev = re.search(r"resumed loss ([0-9.]+) \(live ([0-9.]+)\) on (\w+)", out).groups()
    assert len(losses) == ITERS
    return dict(losses=losses, resumed=float(resumed), live=float(live), device=dev, out=out, err=err)


def _pair(tmp_path, dtype, kernels="reference"):
    procs = [_start(tmp_path, "biren", dtype, kernels, quiet="0"), _start(tmp_path, "cpu", dtype)]
    return [_finish(p) for p in procs]  # both run at once: one core each


def test_script_float32_matches_cpu_exactly(tmp_path):
    # Triton kernels (the default): the device's own GEMM/attention, checked against the CPU run.
    dev, cpu = _pair(tmp_path, "float32", kernels="triton")
    assert dev["device"] == "biren" and cpu["device"] == "cpu"
    assert "torch_biren: CUDA migration on" in dev["err"] and "device: Biren BR166" in dev["out"]
    assert "using fused AdamW: True" in dev["out"]  # the script took its CUDA branch
    # compile=True: Inductor compiles the model for biren, with no graph left to the eager fallback
    assert "torch.compile" not in dev["err"] and "torch.compile runs the model eagerly" in cpu["err"]
    for d, c in zip(dev["losses"], cpu["losses"]):
        assert abs(d - c) <= 1e-4 * abs(c), (dev["losses"], cpu["losses"])
    assert dev["losses"][-1] < dev["losses"][0] - 1.0
    assert dev["resumed"] == dev["live"]  # torch.load(map_location='cuda') restored the same weights


def test_script_bf16_autocast_matches_cpu(tmp_path):
    dev, cpu = _pair(tmp_path, "bfloat16")
    rel = [abs(d - c) / c for d, c in zip(dev["losses"], cpu["losses"])]
    # bf16 has 8 bits of mantissa and the two autocast policies differ (CPU keeps fewer ops in fp32)
    assert max(rel) < 0.01 and sum(rel) / len(rel) < 0.005, (dev["losses"], cpu["losses"])
    assert dev["resumed"] == dev["live"]


def test_script_fp16_gradscaler_trains(tmp_path):
    dev = _finish(_start(tmp_path, "biren", "float16"))
    assert all(x == x and x < 10 for x in dev["losses"])  # finite
    assert dev["losses"][-1] < dev["losses"][0] - 0.8
    assert dev["resumed"] == dev["live"]


@pytest.fixture(scope="module")
def api_results():
    proc = subprocess.run([sys.executable, str(HERE / "api_checks.py")], capture_output=True, text=True,
                          env=_env(), timeout=300)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULTS ")), None)
    assert line, f"api_checks.py crashed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(line[len("RESULTS "):])


def _check_names():
    src = (HERE / "api_checks.py").read_text()
    return re.findall(r"^def (check_\w+)", src, re.M)


@pytest.mark.parametrize("name", _check_names())
def test_api(api_results, name):
    result = api_results[name]
    assert result == "ok", result


def test_map_env_visible_devices():
    e = {"CUDA_VISIBLE_DEVICES": "2,3"}
    notes = env.map_env(e)
    assert e["BIREN_VISIBLE_DEVICES"] == "2,3" and "BIREN_VISIBLE_DEVICES='2,3'" in notes[0]
    env.unmap_env(e)
    assert "BIREN_VISIBLE_DEVICES" not in e
    e = {"CUDA_VISIBLE_DEVICES": "0,1", "BIREN_VISIBLE_DEVICES": "5"}
    env.map_env(e)
    assert e["BIREN_VISIBLE_DEVICES"] == "5"  # the biren variable wins
    for cuda, want in [("-1", ""), ("", ""), ("1,-1,2", "1"), (" 0 , 3", "0,3")]:
        e = {"CUDA_VISIBLE_DEVICES": cuda}
        env.map_env(e)
        assert e["BIREN_VISIBLE_DEVICES"] == want, cuda
        env.unmap_env(e)
    e = {"CUDA_VISIBLE_DEVICES": "GPU-8c1f2d3e", "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}
    notes = env.map_env(e)
    assert "BIREN_VISIBLE_DEVICES" not in e and len(notes) == 2 and "ignored" in notes[1]


def test_env_var_enables_at_import():
    code = ("import torch; x = torch.ones(2).cuda(); "
            "print(torch.cuda.device_count(), x.device, x.is_cuda, torch.device('cuda:1'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=_env(TORCH_BIREN_MIGRATE_CUDA="1", CUDA_VISIBLE_DEVICES="0,1",
                                   PYTORCH_CUDA_ALLOC_CONF="expandable_segments:True"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["2", "biren:0", "True", "biren:1"]
    banner = [x for x in proc.stderr.splitlines() if x.startswith("torch_biren: CUDA migration on")]
    assert len(banner) == 1 and "BIREN_VISIBLE_DEVICES='0,1'" in banner[0] and "PYTORCH_CUDA_ALLOC_CONF" in banner[0]
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                           env=_env(TORCH_BIREN_MIGRATE_CUDA="1", TORCH_BIREN_MIGRATE_QUIET="1"))
    assert quiet.returncode == 0 and "CUDA migration" not in quiet.stderr


def test_explicit_import_reports_late_cuda_visible_devices():
    code = "import torch, torch_biren.transfer_to_biren; print(torch.cuda.device_count())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=_env(CUDA_VISIBLE_DEVICES="0"))
    assert proc.returncode == 0, proc.stderr
    assert "CUDA_VISIBLE_DEVICES='0' not applied" in proc.stderr
