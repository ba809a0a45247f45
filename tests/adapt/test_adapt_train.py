"""models/train.py: resuming from its checkpoint continues with exactly the losses of an
uninterrupted run (model, optimizer, scheduler, scaler, data order and RNG all restored)."""

import json
import os
import subprocess
import sys

import pytest

TRAIN = os.path.join(os.path.dirname(__file__), "..", "..", "models", "train.py")
ARGS = ["--model", "llama", "--steps", "6", "--batch", "2", "--seq", "32", "--warmup", "2"]


def _train(*extra):
    r = subprocess.run([sys.executable, TRAIN, *ARGS, *extra], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


def _losses(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_resume_continues_the_same_run(tmp_path, amp):
    full, resumed, ckpt = tmp_path / "full.jsonl", tmp_path / "resumed.jsonl", tmp_path / "ckpt.pt"
    out = _train("--amp", amp, "--log", str(full))
    assert "simulated biren:" in out and "tokens/s" in out and "MFU" in out
    _train("--amp", amp, "--log", str(resumed), "--checkpoint", str(ckpt), "--stop-after", "3")
    out = _train("--amp", amp, "--log", str(resumed), "--checkpoint", str(ckpt), "--resume")
    assert "resumed from" in out and "at step 3" in out
    a, b = _losses(full), _losses(resumed)
    assert [r["step"] for r in b] == list(range(1, 7))
    assert a == b  # identical losses and learning rates, step for step
    assert a[-1]["loss"] < a[0]["loss"]
