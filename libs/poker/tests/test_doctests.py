"""Docstring examples are part of the documentation and must run."""

import doctest
import importlib

import pytest

MODULES = ["cards", "shuffle", "evaluator", "rules", "engine", "phh"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"tablium_poker.{name}")
    result = doctest.testmod(module)
    assert result.failed == 0
    assert result.attempted > 0
