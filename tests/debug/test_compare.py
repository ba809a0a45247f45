"""Compare mode (torch_biren/debug/compare.py): finds the op whose result is wrong and names it."""

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from torch_biren.debug import AccuracyError, compare_with_cpu, replay


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.Linear(16, 32)
        self.act = nn.GELU()
        self.down = nn.Linear(32, 8)

    def forward(self, x):
        return self.down(self.act(self.up(x)))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(16)
        self.mlp = MLP()

    def forward(self, x):
        return self.mlp(self.norm(x))


class Perturb(TorchDispatchMode):
    """Makes one op's biren result wrong by `by` in one element, as a buggy kernel would."""

    def __init__(self, op, by):
        super().__init__()
        self.op, self.by = op, by

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is self.op and out.device.type == "biren":
            out.view(-1)[3] += self.by
        return out


def model_and_input():
    torch.manual_seed(0)
    return Block().to("biren"), torch.randn(4, 16, device="biren")


def test_agreeing_ops_pass():
    model, x = model_and_input()
    with compare_with_cpu(model) as found:
        model(x)
    assert found.first is None and found.compared >= 5


def test_finds_and_names_the_perturbed_op(tmp_path):
    model, x = model_and_input()
    with Perturb(torch.ops.aten.gelu.default, 0.25):
        with pytest.raises(AccuracyError) as err, compare_with_cpu(model, save_dir=tmp_path):
            model(x)
    d = err.value.divergence
    assert (d.op, d.module) == ("aten.gelu.default", "mlp.act")
    assert d.inputs == "float32[4, 32]" and d.max_abs_error == pytest.approx(0.25, rel=1e-3)
    assert "aten.gelu.default in mlp.act differs from CPU" in str(err.value)
    # The saved inputs reproduce it alone; here, without the perturbation, the op agrees.
    got, expected, (abs_err, _, ok) = replay(d.saved)
    assert ok and abs_err < 1e-5 and got.shape == (4, 32)


def test_small_errors_within_the_dtype_tolerance_pass():
    model, x = model_and_input()
    with Perturb(torch.ops.aten.gelu.default, 1e-7), compare_with_cpu(model, on_divergence="record") as found:
        model(x)
    assert found.first is None


def test_bf16_tolerance_is_looser():
    x = torch.randn(64, device="biren", dtype=torch.bfloat16)
    with Perturb(torch.ops.aten.mul.Tensor, 0.001), compare_with_cpu(on_divergence="record") as found:
        (x * 1.0)
    assert found.first is None
    with Perturb(torch.ops.aten.mul.Tensor, 0.5), compare_with_cpu(on_divergence="record") as found:
        (x * 1.0)
    assert found.first.op == "aten.mul.Tensor" and found.first.module == "(no module)"


def test_env_var_turns_it_on(tmp_path):
    import subprocess
    import sys

    code = ("import torch\nx = torch.randn(8, device='biren')\n"
            "from torch_biren.debug import _env\nprint(len(_env._active))\n(x + 1).sum().item()\nprint('ok')")  # fmt: skip
    env = {**__import__("os").environ, "TORCH_BIREN_COMPARE_CPU": "1", "TORCH_BIREN_COMPARE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["1", "ok"], out.stderr
