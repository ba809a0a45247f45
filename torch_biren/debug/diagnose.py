"""One call for tools that found a wrong result and want to know which op caused it (the adaptation
ladder uses it when a rung fails)."""

from .compare import compare_with_cpu
from .nonfinite import NonFiniteError, detect_nonfinite


def first_bad_op(model, forward, tolerances=None, save_dir=None):
    """Run forward() (a forward pass of `model` on biren) under the NaN tracker and then the compare
    mode; a sentence naming the first op that produced a non-finite value or diverged from the CPU,
    or None when every op agreed."""
    try:
        with detect_nonfinite(model):
            forward()
    except NonFiniteError as err:
        return f"first non-finite op: {err}"
    with compare_with_cpu(model, tolerances=tolerances, save_dir=save_dir, on_divergence="record") as found:
        forward()
    if found.first is None:
        return None
    return f"first op diverging from CPU: {found.first}"
