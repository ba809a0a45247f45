import pytest


@pytest.fixture(autouse=True)
def _chip_isolated(isolated_chip):
    """Every test here works on the device model alone (tests/conftest.py's isolated_chip)."""
    return isolated_chip
