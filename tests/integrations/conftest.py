import pytest
from integration_runs import starter


@pytest.fixture
def start(tmp_path):
    return starter(tmp_path)
