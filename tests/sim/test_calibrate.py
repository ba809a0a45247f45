import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "calibrate.py"


@pytest.fixture(scope="module")
def calibrate():
    spec = importlib.util.spec_from_file_location("calibrate", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_self_check_passes_and_says_no_gpu_was_measured(calibrate, tmp_path, capsys):
    assert calibrate.main(["--self-check", "--out", str(tmp_path)]) == 0
    md = (tmp_path / "calibration.md").read_text()
    assert "No CUDA GPU was available" in md and "**NO**" not in md
    result = json.loads((tmp_path / "calibration.json").read_text())
    assert result["gpu"] is None and all(c["ok"] for c in result["checks"])
    assert {"H100", "A100"} <= set(result["fits"])
    assert "BAD" not in capsys.readouterr().out


def test_gpu_detection(calibrate):
    assert calibrate.detect_chip("NVIDIA H100 80GB HBM3") == "H100"
    assert calibrate.detect_chip("NVIDIA H200") == "H200"
    assert calibrate.detect_chip("NVIDIA A100-SXM4-80GB") == "A100"
    with pytest.raises(SystemExit, match="no spec file"):
        calibrate.detect_chip("Tesla T4")


def test_gpu_sweep_separates_fitted_and_held_out_shapes(calibrate):
    gemms = calibrate.gpu_gemm_shapes()
    assert {s for *_, s in gemms} == {"fitted", "held-out"}
    assert all(split == "fitted" for label, m, n, k, split in gemms if m == n == k == 4096)
    assert any(m == 1 and "deepseek-v3" in label for label, m, *_ in gemms)  # decode, DeepSeek shapes
    assert any("qwen2.5-7b" in label and m == calibrate.PREFILL_TOKENS for label, m, *_ in gemms)
    attn = calibrate.gpu_attention_shapes()
    assert {r[-1] for r in attn} == {"fitted", "held-out"} and any(r[4] == 1 for r in attn)  # decode: one query


def test_gpu_mode_without_a_gpu_says_so(calibrate, tmp_path, capsys):
    if calibrate.torch.cuda.is_available():
        pytest.skip("a GPU is present; --gpu would measure (never in CI)")
    assert calibrate.main(["--gpu", "--out", str(tmp_path)]) == 2
    assert "no CUDA GPU is available" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_dry_run_exercises_the_gpu_path_on_the_simulated_device(calibrate, tmp_path):
    assert calibrate.main(["--dry-run", "--out", str(tmp_path)]) == 0
    assert "Nothing real was measured" in (tmp_path / "calibration_gpu.md").read_text()
    result = json.loads((tmp_path / "calibration_gpu.json").read_text())
    assert result["dry_run"] and not result["skipped"]
    families = {r["family"] for r in result["rows"]}
    assert {"gemm", "attention fwd", "add", "launch", "host issue", "graph launch", "graph kernel",
            "copy h2d (pinned)"} <= families  # fmt: skip
