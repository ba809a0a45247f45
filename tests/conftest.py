import os

import pytest
import torch

import torch_biren

assert torch_biren.load_error() is None, f"torch_biren did not load: {torch_biren.load_error()!r}"


@pytest.fixture
def dev():
    return torch.device("biren:0")


def run_python(code, env=None, timeout=120):
    """Runs code in a fresh interpreter (for import-time, env-var and fork behaviour)."""
    import subprocess
    import sys

    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=timeout)
