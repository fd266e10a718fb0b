"""The per-app objects handlers receive: the ledger batcher."""

from __future__ import annotations

from typing import TypeAlias

from litestar.datastructures import State
from litestar.di import NamedDependency

from tablium_wallet.services.ledger import Ledger

LedgerDep: TypeAlias = NamedDependency[Ledger]


def provide_ledger(state: State) -> Ledger:
    ledger: Ledger = state.ledger
    return ledger
