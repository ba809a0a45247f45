"""TORCH_BIREN_COMPARE_CPU=1 / TORCH_BIREN_DETECT_NONFINITE=1: the accuracy modes for a whole run,
without changing the script (entered when the plugin loads, left when the process ends)."""

import os

_active = []


def _on(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def activate_from_env():
    from .compare import compare_with_cpu
    from .nonfinite import detect_nonfinite

    if _on("TORCH_BIREN_COMPARE_CPU"):
        cm = compare_with_cpu(save_dir=os.environ.get("TORCH_BIREN_COMPARE_DIR", "biren_divergence"))
        cm.__enter__()
        _active.append(cm)
    if _on("TORCH_BIREN_DETECT_NONFINITE"):
        cm = detect_nonfinite()
        cm.__enter__()
        _active.append(cm)
