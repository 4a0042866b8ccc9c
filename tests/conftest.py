"""Fixtures shared by every test."""
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def collections_path():
    """The folder to give ansible-playbook as ANSIBLE_COLLECTIONS_PATH to find this checkout as
    segmented.registry (scripts/setup.sh links it there)."""
    return os.path.join(REPO, ".venv", "collections")
