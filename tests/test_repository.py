"""Checks of the repository's own promises that no other test covers."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import find, settings
from hypothesis.strategies import from_regex

ROOT = Path(__file__).resolve().parents[1]
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_same_shape(service: str) -> None:
    package = ROOT / "services" / service / "src" / f"tablium_{service}"
    for part in ("app.py", "settings.py", "api", "domain", "db", "events", "db/migrations/env.py"):
        assert (package / part).exists(), f"{service}: missing {part}"
    assert (ROOT / "services" / service / "Dockerfile").exists()
    assert (ROOT / "services" / service / "tests").is_dir()


@pytest.mark.parametrize("dockerfile", sorted(ROOT.glob("**/Dockerfile")), ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfiles_copy_what_exists(dockerfile: Path) -> None:
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"{dockerfile}: COPY {source} does not exist"


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_imports_another(service: str) -> None:
    others = [name for name in SERVICES if name != service]
    pattern = re.compile(rf"^\s*(from|import)\s+tablium_({'|'.join(others)})\b", re.MULTILINE)
    for source in (ROOT / "services" / service).rglob("*.py"):
        assert not pattern.search(source.read_text()), f"{source} imports another service"


def test_every_requirement_is_pinned() -> None:
    pins = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    for pyproject in [*ROOT.glob("libs/*/pyproject.toml"), *ROOT.glob("services/*/pyproject.toml")]:
        block = re.search(r"dependencies = \[(.*?)\]", pyproject.read_text(), re.DOTALL)
        assert block, pyproject
        for requirement in re.findall(r'"([^"]+)"', block.group(1)):
            name = re.split(r"[\[<>=!~ ]", requirement)[0].lower().replace("_", "-")
            if name.startswith("tablium-"):
                continue
            assert name in pins, f"{pyproject}: {name} is not pinned in constraints.txt"


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield node["pattern"]
        for value in node.values():
            yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


@pytest.mark.parametrize("service", SERVICES)
def test_no_schema_pattern_lets_a_trailing_newline_through(service: str) -> None:
    """msgspec checks ``pattern`` with ``re.search``, where ``$`` also matches before a final newline."""
    app = importlib.import_module(f"tablium_{service}.app").create_app()
    document = app.openapi_schema.to_schema()
    for pattern in set(_patterns(document)):
        # A string the pattern accepts (hypothesis builds it from the regex), then the same plus "\n".
        accepted = find(from_regex(pattern), lambda text: not text.endswith("\n"), settings=settings(database=None))
        assert not re.search(pattern, accepted + "\n"), f"{service}: {pattern!r} accepts {accepted + chr(10)!r}"
