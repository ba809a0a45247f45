"""python -m torch_biren.migration: where our own options go."""

import subprocess
import sys

_SCRIPT = """
import sys, torch
print("device", torch.ones(1, device="cuda").device.type, "argv", sys.argv[1:])
"""


def _run(tmp_path, *args):
    script = tmp_path / "script.py"
    script.write_text(_SCRIPT)
    argv = [str(script) if a == "SCRIPT" else a for a in args]
    return subprocess.run([sys.executable, "-m", "torch_biren.migration", *argv], capture_output=True, text=True,
                          timeout=300)


def test_migration_flag_after_the_script_name_warns_and_goes_to_the_script(tmp_path):
    run = _run(tmp_path, "SCRIPT", "--to", "cpu")
    assert "device biren argv ['--to', 'cpu']" in run.stdout, run.stderr[-3000:]
    warning = [line for line in run.stderr.splitlines() if line.startswith("torch_biren.migration: warning")]
    assert len(warning) == 1 and "--to comes after the script name" in warning[0] and "runs on biren" in warning[0]
    run = _run(tmp_path, "SCRIPT", "--to=cpu", "--epochs", "1")
    assert "device biren argv ['--to=cpu', '--epochs', '1']" in run.stdout, run.stderr[-3000:]
    assert "--to=cpu comes after the script name" in run.stderr


def test_migration_flag_before_the_script_name_selects_the_target(tmp_path):
    run = _run(tmp_path, "--to", "cpu", "SCRIPT", "--lr", "3")
    assert "device cpu argv ['--lr', '3']" in run.stdout, run.stderr[-3000:]
    assert "torch_biren.migration: warning" not in run.stderr
