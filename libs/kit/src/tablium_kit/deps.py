"""Names for what handlers receive from the kit, so signatures stay short and explicit."""

from __future__ import annotations

from typing import Any, TypeAlias

from litestar import Request
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.auth import Principal
from tablium_kit.db import Reader

# The request's database session; committed by the kit on success, rolled back otherwise.
DbSession: TypeAlias = NamedDependency[AsyncSession]
# Single-statement reads outside a transaction (one round trip; see db.Reader).
DbReader: TypeAlias = NamedDependency[Reader]
# A request on a private or internal route: ``request.user`` is who is calling, set by the
# auth middleware. (Reading it from the request costs nothing; a dependency costs ~6 µs.)
AuthenticatedRequest: TypeAlias = Request[Principal, str, Any]
# Who is calling, as a dependency. Prefer ``AuthenticatedRequest`` on hot paths.
Caller: TypeAlias = NamedDependency[Principal]
