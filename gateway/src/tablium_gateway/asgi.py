"""ASGI types of the gateway's own (it speaks raw ASGI: no framework between client and upstream)."""

from collections.abc import Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
