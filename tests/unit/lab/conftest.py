"""Make the lab's modules (lab/tokenserver.py, lab/image.py) importable by the unit tests."""

import os
import sys

LAB_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "lab"))
if LAB_DIR not in sys.path:
    sys.path.insert(0, LAB_DIR)
