"""The pure rules' documented examples (no I/O), run so that the docs cannot drift from the code."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest
from tablium_wallet.domain import ledger, limits


@pytest.mark.parametrize("module", [ledger, limits])
def test_documented_examples_hold(module: ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0
