"""Names for what handlers receive from the kit, so signatures stay short and explicit."""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.db import Reader

# The request's database session; committed by the kit on success, rolled back otherwise.
DbSession: TypeAlias = NamedDependency[AsyncSession]
# Single-statement reads outside a transaction (one round trip; see db.Reader).
DbReader: TypeAlias = NamedDependency[Reader]
# Who is calling is not a handler argument: ``tablium_kit.auth.caller()`` (resolving an argument
# costs Litestar more per request than the whole authentication).
