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
