"""first_bad_op (torch_biren/debug/diagnose.py), what the adaptation ladder adds to a failed rung."""

import torch

from torch_biren.debug.diagnose import first_bad_op

from .test_compare import Perturb, model_and_input


def test_names_the_diverging_op_or_says_all_agree():
    model, x = model_and_input()
    assert first_bad_op(model, lambda: model(x)) is None
    with Perturb(torch.ops.aten.addmm.default, 0.5):
        found = first_bad_op(model, lambda: model(x))
    assert found.startswith("first op diverging from CPU: aten.addmm.default in mlp.up differs from CPU")


def test_a_nan_is_named_before_comparing():
    model, x = model_and_input()
    with Perturb(torch.ops.aten.gelu.default, float("nan")):
        found = first_bad_op(model, lambda: model(x))
    assert found.startswith("first non-finite op: aten.gelu.default in mlp.act produced NaN")
