# -*- coding: utf-8 -*-
"""Make ``ansible_collections.segmented.registry`` importable for the unit tests.

The git checkout is the collection root but does not sit under an
``ansible_collections/segmented/registry/`` path, so we lay one out in a temporary folder
(a symlink to the checkout) and put that folder on ``sys.path``. ``ansible_collections`` is
a namespace package, so kubernetes.core (installed with the ``ansible`` package under
site-packages) stays importable beside it. This runs when the conftest is loaded, before
any test module is imported, whatever the current directory.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import atexit
import os
import shutil
import sys
import tempfile

import pytest

NAMESPACE, NAME = "segmented", "registry"
COLLECTION_ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _collections_path():
    parent = os.path.dirname(COLLECTION_ROOT)
    if (os.path.basename(COLLECTION_ROOT) == NAME and os.path.basename(parent) == NAMESPACE
            and os.path.basename(os.path.dirname(parent)) == "ansible_collections"):
        # Already laid out (for instance the copy ansible-test works on).
        return os.path.dirname(os.path.dirname(parent))
    top = tempfile.mkdtemp(prefix="segmented-registry-unit-")
    atexit.register(shutil.rmtree, top, True)
    namespace_dir = os.path.join(top, "ansible_collections", NAMESPACE)
    os.makedirs(namespace_dir)
    os.symlink(COLLECTION_ROOT, os.path.join(namespace_dir, NAME))
    return top


#: A folder holding ansible_collections/segmented/registry: usable as ANSIBLE_COLLECTIONS_PATH.
COLLECTIONS_PATH = _collections_path()
if COLLECTIONS_PATH not in sys.path:
    sys.path.insert(0, COLLECTIONS_PATH)


@pytest.fixture(scope="session")
def collections_path():
    """The folder to give ansible-playbook as ANSIBLE_COLLECTIONS_PATH to find this checkout."""
    return COLLECTIONS_PATH
