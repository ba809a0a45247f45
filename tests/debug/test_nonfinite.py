"""NaN/Inf tracker (torch_biren/debug/nonfinite.py): names the op producing the first NaN."""

import pytest
import torch
from torch import nn

from torch_biren.debug import NonFiniteError, detect_nonfinite


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)

    def forward(self, x):
        h = self.norm(self.proj(x))
        return (h - 10).log().sum()  # log of negatives: the first NaN


def test_names_the_op_producing_the_first_nan():
    torch.manual_seed(0)
    net = Net().to("biren")
    with pytest.raises(NonFiniteError) as err, detect_nonfinite(net):
        net(torch.randn(4, 8, device="biren"))
    assert (err.value.op, err.value.module) == ("aten.log.default", "(root)")
    assert "aten.log.default in (root) produced NaN" in str(err.value)


def test_inf_in_a_submodule_and_finite_runs_pass():
    lin = nn.Sequential(nn.Linear(4, 4)).to("biren")
    with detect_nonfinite(lin):
        lin(torch.randn(2, 4, device="biren")).sum().item()
    with torch.no_grad():
        lin[0].weight.fill_(3e38)
    with pytest.raises(NonFiniteError) as err, detect_nonfinite(lin):
        lin(torch.ones(2, 4, device="biren"))
    assert err.value.module == "0" and "Inf" in str(err.value)


def test_non_finite_inputs_are_not_blamed_on_the_op():
    x = torch.tensor([float("nan"), 1.0], device="biren")
    with detect_nonfinite():
        (x * 2).sum()
