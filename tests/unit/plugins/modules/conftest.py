import pytest

from tests.unit.plugins.modules.harness import module_runner


@pytest.fixture
def run_module(monkeypatch):
    return module_runner(monkeypatch)
