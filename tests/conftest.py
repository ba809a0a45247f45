import pytest

import torch_biren
from torch_biren.sim import chip as chip_module

assert torch_biren.load_error() is None, f"torch_biren did not load: {torch_biren.load_error()!r}"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: multi-process or long runs; `make test-slow` runs them, `make test` not")


@pytest.fixture
def isolated_chip(monkeypatch):
    """The test starts from the default BR166 with no listeners, so it never reaches the live
    runtime, and leaves the process's chip as it found it. Returns the process's chip.
    (Automatic for tests/sim and tests/projection, whose conftest files use it.)"""
    process_chip = chip_module.current_chip()
    monkeypatch.setattr(chip_module, "_listeners", [])
    monkeypatch.setattr(chip_module, "_current", chip_module.load_chip("BR166"))
    for var in ("TORCH_BIREN_CHIP", "TORCH_BIREN_MEMORY_MODE", "TORCH_BIREN_SVI"):
        monkeypatch.delenv(var, raising=False)
    return process_chip
