"""Engine tests need nothing; service tests get a real event service (see test_service*.py)."""

from __future__ import annotations

import sys
from pathlib import Path

# The shared invariant checks live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))
