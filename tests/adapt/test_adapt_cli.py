"""python -m torch_biren: adapt writes its report and exits 0/1/2; bad input is one line and exit 2;
info lists the devices."""

import json
import os
import re
import subprocess
import sys

import pytest
from expecttest import assert_expected_inline

from torch_biren import cli
from torch_biren.adapt import suite
from torch_biren.sim.chip import CHIPS_DIR

SMALL = ["--steps", "2", "--batch", "2", "--seq", "16", "--gen-tokens", "4"]


def _main(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_adapt_writes_report_and_passes(tmp_path, capsys):
    status, out, err = _main(capsys, "adapt", "qwen2", *SMALL, "--quiet", "--out", str(tmp_path))
    assert status == 0, out + err
    assert "2/2 ladders passed every rung." in out
    assert (tmp_path / "qwen2.png").stat().st_size > 10_000
    report = json.loads((tmp_path / "report.json").read_text())
    assert [(r["model"], r["dtype"], r["ok"]) for r in report["results"]] == [("qwen2", "fp32", True), ("qwen2", "bf16", True)]
    md = (tmp_path / "report.md").read_text()
    assert "| qwen2 | bf16 | pass | pass | pass | pass | pass | **PASS** |" in md
    assert "![qwen2 loss curves](qwen2.png)" in md
    base = report["results"][0]["baseline"]
    assert base["chip"] == "H100" and base.get("step_ns", 0) > 0, base


@pytest.mark.parametrize("argv, message", [
    (["adapt", "gpt5"],
     "error: unknown model 'gpt5'; known models: llama, qwen2, qwen3, qwen2-moe, qwen3-moe, mixtral, deepseek-v2, deepseek-v3 (or 'all')"),
    (["adapt", "qwen2", "--set", "num_attention_heads=5"], "error: num_attention_heads=5 does not divide hidden_size=64"),
    (["adapt", "deepseek-v3", "--set", "n_routed_experts=6", "--set", "n_group=4"],
     "error: n_routed_experts=6 in n_group=4 groups, topk_group=1: groups must divide the experts and topk_group <= n_group"),
    (["adapt", "qwen2", "--set", "num_heads"], "error: --set wants KEY=VALUE, got 'num_heads'"),
    (["adapt", "qwen2", "--chip", "BR999"],
     "error: unknown chip 'BR999'; known: A100, BR100, BR104, BR106, BR110, BR166, H100, H200, H800 (or a path to a .json spec)"),
    (["adapt", "qwen2", "--steps", "0"], "error: --steps must be at least 1"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    status, out, err = _main(capsys, *argv)
    assert status == 2 and err.strip() == message and "Traceback" not in out + err


def test_run_that_does_not_fit_names_required_and_available(capsys):
    status, out, err = _main(capsys, "adapt", "qwen2", "--dtype", "fp32", "--set", "hidden_size=8192",
                             "--set", "num_hidden_layers=80", "--set", "intermediate_size=29568")
    assert status == 2
    assert_expected_inline(err.strip(), """error: qwen2 fp32 (hidden_size=8192, num_hidden_layers=80, intermediate_size=29568) does not fit: training needs about 1117.0 GiB of device memory (weights, gradients and AdamW state 1106.4 GiB, activations 10.7 GiB at batch 4 x seq 64); BR166 (UMA) has 63.5 GiB""")


def test_out_of_memory_during_the_run_is_reported_as_not_fitting(tmp_path, capsys, monkeypatch):
    spec = json.loads((CHIPS_DIR / "BR166.json").read_text())
    spec["name"], spec["memory_bytes"]["value"] = "BR166-1MiB", 2**20
    chip = tmp_path / "small.json"
    chip.write_text(json.dumps(spec))
    monkeypatch.setattr(suite, "preflight", lambda opts: None)  # let the worker find out itself
    status, out, err = _main(capsys, "adapt", "qwen2", "--dtype", "fp32", *SMALL, "--quiet", "--baseline", "none",
                             "--chip", str(chip), "--out", str(tmp_path / "out"))
    assert status == 2, out + err
    assert re.match(r"error: qwen2 fp32 does not fit the card.s memory \(at L\d\): OutOfMemoryError: biren out of memory", err)
    assert len(err.strip().splitlines()) == 1


def test_exit_status_of_the_process():
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "torch_biren", "adapt", "gpt5"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 2, r.stderr[-500:]
    assert r.stderr.strip().splitlines()[-1].startswith("error: unknown model 'gpt5'")


def test_info_lists_devices(capsys):
    status, out, err = _main(capsys, "info")
    assert status == 0
    assert "simulated BR166 (UMA)" in out and "| 0   | Biren BR166 | UMA" in out and "65024MiB" in out
    assert "Matrix peak (dense TFLOPS): BF16 1,024" in out
