"""What a service accepts as input, decided once for every service.

* JSON bodies are decoded **strictly** into the handler's ``data`` type in one pass
  (msgspec, ``strict=True``): ``"9"`` is not an integer, ``1e3`` is not an integer,
  ``"true"`` is not a boolean. Litestar decodes a body to Python objects and then
  converts them with ``msgspec.convert(..., strict=False)`` (its signature model), which
  accepts all of those; :class:`StrictJSONRequest` (the application's request class)
  hands Litestar the already typed value instead, and msgspec passes a value of the
  target type through that second conversion unchanged.
* A body must say it is JSON (``application/json`` or ``application/*+json``, UTF-8):
  anything else is 415, not parsed as JSON anyway.
* Invalid UTF-8 is a 400, not a ``UnicodeDecodeError`` (msgspec raises that, not its
  own ``DecodeError``).
* No text may carry control characters (C0, DEL, C1): Postgres refuses NUL in text
  (a 500), and the others have no business in names, codes or identifiers. Bodies are
  checked here, on their raw bytes (a control character can only reach a JSON string
  as an escape, or as raw DEL/C1 bytes); the path and the query string are checked by the
  kit's layer (``middleware.py``) with :func:`control_character_in`. Header values never carry
  one: the HTTP server's parser (granian) answers such a request 400 before the application
  sees it (a gate test checks it on every service), and scanning every header here cost
  several µs a request (a token alone is ~700 bytes).
* An instant (an aware ``datetime``) is read in any offset but stored and compared in UTC, where
  ``9999-12-31T23:00:00-14:00`` is past the last year Python has: :func:`utc_instant`, called from a
  request's ``__post_init__``, makes that a 400 like any invalid field, not an ``OverflowError`` (a 500)
  when the value is bound to a query.
* Patterns in schemas are exact: msgspec checks ``Meta(pattern=...)`` with
  ``re.search``, where ``$`` also matches before a trailing newline. :func:`exact`
  anchors a pattern so it matches the whole string and nothing after it, in Python and
  in the ECMA-262 dialect that OpenAPI clients use.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException, ValidationException

# A control-character escape in a JSON string (\\u0000-\\u001f, \\u007f-\\u009f and the short
# forms), or DEL/C1 written raw (UTF-8 C1 is always 0xC2 0x80-0x9F: 0xC2 is never a continuation
# byte). ``\\.`` consumes every other escape, so ``"\\\\n"`` (a backslash, then "n") is not read as "\\n".
_BODY_CONTROL: Final = re.compile(
    rb"(\\(?:u00(?:[01][0-9a-fA-F]|7[fF]|[89][0-9a-fA-F])|[bfnrt])|\x7f|\xc2[\x80-\x9f])|\\.",
    re.DOTALL,
)
_TEXT_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Percent-encoded (or raw) controls in a query string: %00-%1F, %7F, and C1 as UTF-8 (%C2%80-%C2%9F).
_QUERY_CONTROL: Final = re.compile(rb"%(?:[01][0-9a-fA-F]|7[fF])|%[cC]2%[89][0-9a-fA-F]|[\x00-\x1f\x7f]")
_ERROR_LOCATION: Final = re.compile(r" - at `\$\.?(.*)`$")


def control_character_in(path: str, query_string: bytes) -> str | None:
    """Where a request's path or query string carries a control character (``"path"``, ...); None when clean."""
    if _TEXT_CONTROL.search(path):
        return "path"
    if query_string and _QUERY_CONTROL.search(query_string):
        return "query string"
    return None


def _body_has_control_character(body: bytes) -> bool:
    # The common body has no backslash, DEL or C1 lead byte: three C-speed scans and done.
    if b"\\" not in body and b"\x7f" not in body and b"\xc2" not in body:
        return False
    return any(match.group(1) for match in _BODY_CONTROL.finditer(body))


def utc_instant(value: datetime) -> datetime:
    """``value`` (aware) in UTC; ``ValueError`` when that is outside the years 1 to 9999 (raised in a
    request struct's ``__post_init__``, msgspec makes it a validation error of the body: a 400)."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("an instant must lie within the years 1 to 9999 in UTC") from None


def exact(pattern: str) -> str:
    """``pattern`` matching whole strings only, with no trailing newline (``$`` alone lets one through).

    ``(?!\\n)`` is a no-op where ``$`` means the end of input (ECMA-262, JSON Schema) and
    refuses the final newline Python's ``$`` accepts; ``\\Z`` would do in Python but is not
    ECMA-262, so the OpenAPI document would not work for clients.
    """
    return f"^(?:{pattern})$(?!\\n)"


def _is_json(media_type: str, options: dict[str, str]) -> bool:
    if options.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        return False
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def _validation_error(request: Request[Any, Any, Any], error: msgspec.ValidationError) -> ValidationException:
    # The same shape as Litestar's own validation errors: a message, the field's key, the source.
    message = str(error)
    location = _ERROR_LOCATION.search(message)
    entry = {"message": message[: location.start()] if location else message, "source": "body"}
    if location and location.group(1):
        entry["key"] = location.group(1)
    return ValidationException(detail=f"Validation failed for {request.method} {request.url.path}", extra=[entry])


Decoder = Callable[[bytes], Any]
_decoders: dict[str, Decoder] = {}


def _decoder(request: Request[Any, Any, Any]) -> Decoder:
    """A strict decoder into the route's ``data`` type, made once per route handler."""
    handler = request.route_handler
    decoder = _decoders.get(handler.handler_id)
    if decoder is None:
        field = handler.parsed_data_field
        target = field.annotation if field is not None else Any
        decoder = msgspec.json.Decoder(target, strict=True, dec_hook=handler.default_deserializer).decode
        _decoders[handler.handler_id] = decoder
    return decoder


class StrictJSONRequest(Request[Any, Any, Any]):
    """The request class of every service: JSON bodies are decoded strictly into the handler's type."""

    async def json(self) -> Any:
        media_type, options = self.content_type
        if not _is_json(media_type, options):
            raise HTTPException(status_code=415, detail="the body must be JSON (application/json, UTF-8)")
        body = await self.body()
        if _body_has_control_character(body):
            raise ValidationException(detail="text may not contain control characters")
        try:
            return _decoder(self)(body)
        except UnicodeDecodeError:
            raise ValidationException(detail="the body is not valid UTF-8") from None
        except msgspec.ValidationError as exc:
            raise _validation_error(self, exc) from None
        except msgspec.DecodeError as exc:
            raise ValidationException(detail=f"the body is not valid JSON: {exc}") from None
