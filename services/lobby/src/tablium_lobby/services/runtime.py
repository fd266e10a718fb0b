"""The per-app objects handlers receive."""

from __future__ import annotations

from typing import TypeAlias

from litestar.datastructures import State
from litestar.di import NamedDependency

from tablium_lobby.services.seating import Seating

SeatingDep: TypeAlias = NamedDependency[Seating]


def provide_seating(state: State) -> Seating:
    seating: Seating = state.seating
    return seating
