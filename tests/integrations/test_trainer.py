"""Hugging Face Trainer fine-tunes on biren, selected the ways users select a device: with
ACCELERATE_TORCH_DEVICE=biren, and with the CUDA migration (`import torch_biren.transfer_to_biren`)."""

import pytest

pytestmark = pytest.mark.slow  # multi-process runs: make test-slow (make test leaves them out)

STEPS = 6


def _check_trains(r):
    assert r["param_devices"] == ["biren"], r
    assert r["n_gpu"] == 1, r  # one card per Trainer process, never nn.DataParallel
    assert len(r["losses"]) == STEPS, r
    assert r["losses"][-1] < r["losses"][0] - 0.5, r["losses"]
    assert r["simulated_ms"] > 0


def test_trainer_bf16_accumulation_matches_cpu(start, tmp_path):
    # bf16 autocast and 2 micro-batches per step; the CPU run (use_cpu) of the same fine-tune is the reference
    dev = start("trainer_finetune.py", "--out", tmp_path / "dev", "--steps", STEPS, "--accum", 2,
                env=dict(ACCELERATE_TORCH_DEVICE="biren"))
    cpu = start("trainer_finetune.py", "--out", tmp_path / "cpu", "--steps", STEPS, "--accum", 2, "--cpu")
    dev, cpu = dev.result(), cpu.result()
    _check_trains(dev)
    assert dev["device"] == "biren" and dev["autocast"]
    rel = [abs(d - c) / c for d, c in zip(dev["losses"], cpu["losses"])]
    assert max(rel) < 5e-3, (dev["losses"], cpu["losses"])  # bf16 rounding, different op order


def test_trainer_fp16_under_cuda_migration(start, tmp_path):
    # a CUDA-written Trainer script: the migration shows 8 'cuda' cards; fp16 needs the scaler on biren
    r = start("trainer_finetune.py", "--out", tmp_path, "--steps", STEPS, "--precision", "fp16", "--migrate",
              env=dict(TORCH_BIREN_MIGRATE_QUIET="1")).result()
    _check_trains(r)
    assert r["device"] == "biren:0" and r["scaler"] == "biren", r
