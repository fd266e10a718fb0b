"""``serve``'s app factory: the service's app, with the start-up heap frozen out of the collector's sight."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from litestar import Litestar, get

from tablium_kit import cli


@get("/ping", sync_to_thread=False)
def ping() -> dict[str, bool]:
    return {"ok": True}


def make_app() -> Litestar:
    return Litestar(route_handlers=[ping])


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the test process keeps its collector


def test_the_served_app_is_the_factorys_with_the_heap_frozen(monkeypatch: pytest.MonkeyPatch, unfrozen: None) -> None:
    monkeypatch.setenv("TABLIUM_SERVED_APP_FACTORY", f"{__name__}:make_app")
    app = cli.served_app()
    assert isinstance(app, Litestar)
    assert gc.get_freeze_count() > 0
    # Frozen once more after the lifespan's own start-up (pools and clients live as long as the process).
    assert app.on_startup[-1] is cli._freeze_heap
