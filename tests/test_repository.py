"""Checks of the repository's own promises that no other test covers."""

from __future__ import annotations

import ast
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


# Layering (STYLE.md): api/ is thin (it calls a use case; it never queries the database), domain/ is pure (no
# I/O library). Each service's modules are parsed, not imported. Imports under `if TYPE_CHECKING:` are types only.
IO_LIBRARIES = {"aio_pika", "aiormq", "asyncpg", "granian", "httpx", "litestar", "redis", "socket", "sqlalchemy"}
PURE_KIT_MODULES = {"tablium_kit.errors", "tablium_kit.money"}  # the kit's only modules a domain module may use
SESSION_QUERIES = {"add", "add_all", "delete", "execute", "flush", "get", "merge", "refresh", "scalar", "scalars"}
# Today's known breaches, by service-relative path: the list may only shrink (a fixed module fails the test
# until it is taken off). The event service's are issue 15's slice 3 (use cases in services/).
KNOWN_LAYERING_BREACHES = {
    "lobby/src/tablium_lobby/api/hands.py",
    "lobby/src/tablium_lobby/api/tables.py",
}


def _runtime_imports(tree: ast.Module) -> Iterator[str]:
    """Modules imported at run time (not under ``if TYPE_CHECKING:``)."""
    typing_only = {
        id(node)
        for branch in ast.walk(tree)
        if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.unparse(branch.test)
        for statement in branch.body
        for node in ast.walk(statement)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


def _layering_breaches(service: str, path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    imports = list(_runtime_imports(tree))
    layer = path.relative_to(ROOT / "services" / service / "src" / f"tablium_{service}").parts[0]
    found: list[str] = []
    if layer == "domain":
        for module in imports:
            top = module.split(".")[0]
            if top in IO_LIBRARIES or (top == "tablium_kit" and module not in PURE_KIT_MODULES):
                found.append(f"domain module imports {module}")
    elif layer == "api":
        for module in imports:
            if module.split(".")[0] == "sqlalchemy" or module.startswith(f"tablium_{service}.db"):
                found.append(f"api module imports {module}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SESSION_QUERIES
                and "session" in ast.unparse(node.func.value)
            ):
                found.append(f"api module queries the database: {ast.unparse(node.func)}")
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_api_modules_do_not_query_and_domain_modules_do_no_io(service: str) -> None:
    package = ROOT / "services" / service / "src" / f"tablium_{service}"
    breaches = {
        str(path.relative_to(ROOT / "services")): found
        for layer in ("api", "domain")
        for path in sorted((package / layer).rglob("*.py"))
        if (found := _layering_breaches(service, path))
    }
    known = {path for path in KNOWN_LAYERING_BREACHES if path.startswith(f"{service}/")}
    assert set(breaches) <= known, {path: breaches[path] for path in set(breaches) - known}
    assert known <= set(breaches), f"no longer breaching, take off KNOWN_LAYERING_BREACHES: {known - set(breaches)}"
