"""The OpenAPI document says what the kit answers: errors are application/problem+json.

Litestar documents the validation errors it knows of as ``application/json`` with its own
error shape, and nothing else; every error leaves a service as problem+json (errors.py),
and the kit itself answers some (control characters, 401/403, 413, 415). So, once the
document is built, every operation's error responses are problem+json with the
:data:`PROBLEM` schema: 400 always (the path, query and headers are checked everywhere),
401/403 where security is declared, 413/415 where there is a body, and ``default`` for
the rest (404, 409, 422, 429, 5xx) that handlers raise without declaring them.

Text without a pattern of its own gets :data:`NO_CONTROL_CHARACTERS`: the kit refuses control
characters everywhere (inputs.py), and a client, or a generator like schemathesis, should know.
Request bodies that refuse unknown fields (msgspec's ``forbid_unknown_fields``) say so with
``additionalProperties: false``, which Litestar leaves out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import msgspec
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    Schema,
)

from tablium_kit.errors import PROBLEM_JSON
from tablium_kit.inputs import exact

# \uXXXX escapes mean the same in Python's re and in ECMA-262.
NO_CONTROL_CHARACTERS = exact(r"[^\u0000-\u001f\u007f-\u009f]*")

PROBLEM = Schema(
    type=OpenAPIType.OBJECT,
    description="An error (RFC 9457 problem details)",
    required=["type", "title", "status"],
    properties={
        "type": Schema(type=OpenAPIType.STRING, description="urn:tablium:problem:<slug>"),
        "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER),
        "detail": Schema(type=OpenAPIType.STRING),
        "errors": Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.OBJECT), description="per field"),
    },
)
_PROBLEM_REF = Reference(ref="#/components/schemas/Problem")
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _problem(description: str) -> OpenAPIResponse:
    return OpenAPIResponse(description=description, content={PROBLEM_JSON: OpenAPIMediaType(schema=_PROBLEM_REF)})


def _document(operation: Operation) -> None:
    responses = operation.responses = dict(operation.responses or {})
    for code, response in list(responses.items()):
        if not code.startswith(("2", "3")) and isinstance(response, OpenAPIResponse):
            responses[code] = _problem(response.description)
    responses.setdefault("400", _problem("Bad request (invalid parameters or body, control characters)"))
    if operation.security:
        responses.setdefault("401", _problem("Missing, invalid or expired token"))
        responses.setdefault("403", _problem("The token does not allow this"))
    if operation.request_body is not None:
        responses.setdefault("413", _problem("Body too large"))
        responses.setdefault("415", _problem("The body is not JSON"))
    responses.setdefault("default", _problem("Any other error (404, 409, 422, 429, 5xx)"))


def _is_text(schema: Schema) -> bool:
    kinds = schema.type if isinstance(schema.type, list) else [schema.type]
    return OpenAPIType.STRING in kinds


def _forbid_control_characters(node: Any) -> None:
    """Give every free-text string schema under ``node`` the no-control-characters pattern."""
    if isinstance(node, Schema):
        plain = node.pattern is None and node.format is None and node.enum is None and node.const is None
        if _is_text(node) and plain:
            node.pattern = NO_CONTROL_CHARACTERS
        for field in dataclasses.fields(node):
            _forbid_control_characters(getattr(node, field.name))
    elif isinstance(node, dict):
        for value in node.values():
            _forbid_control_characters(value)
    elif isinstance(node, list | tuple):
        for value in node:
            _forbid_control_characters(value)


def closed_schemas(body_types: Iterable[Any]) -> set[str]:
    """Names of the msgspec Structs reachable from ``body_types`` that refuse unknown fields."""
    _, components = msgspec.json.schema_components(list(body_types))
    return {name for name, schema in components.items() if schema.get("additionalProperties") is False}


def document_problems(openapi: OpenAPI, closed: Iterable[str] = ()) -> None:
    """Rewrite ``openapi`` (built by Litestar) in place: problem+json errors, text without control characters,
    ``additionalProperties: false`` on the ``closed`` component schemas (see :func:`closed_schemas`)."""
    components = openapi.components
    _forbid_control_characters(components.schemas)
    for name in closed:
        schema = (components.schemas or {}).get(name)
        if isinstance(schema, Schema):
            schema.additional_properties = False
    components.schemas = {**(components.schemas or {}), "Problem": PROBLEM}
    for path_item in (openapi.paths or {}).values():
        for method in _METHODS:
            operation = getattr(path_item, method, None)
            if isinstance(operation, Operation):
                _document(operation)
                for parameter in operation.parameters or ():
                    if isinstance(parameter, Parameter):
                        _forbid_control_characters(parameter.schema)
