"""Validates messages against protocol_schema.json, generated from the TypeScript definition (src/worker/protocol.ts),
and each request's args against its op's schema in ops_schema.json, generated from the op catalogue (src/worker/ops/).

fastjsonschema compiles each schema into a Python function once (the schema is this package's own file, never
anything from the wire), which validates a request header many times faster than an interpreting validator (figures
in bench/README.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import fastjsonschema

from .codec import ProtocolError

SCHEMA_PATH = Path(__file__).with_name("protocol_schema.json")
OPS_SCHEMA_PATH = Path(__file__).with_name("ops_schema.json")


class InvalidArgsError(ProtocolError):
    """A request's args do not fit its op's schema; the message names the op, the field and the value."""


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


# The generated schemas use only keywords draft 7 has (type, const, enum, bounds, properties, items, oneOf,
# propertyNames), and fastjsonschema implements drafts up to 7.
_DRAFT = "http://json-schema.org/draft-07/schema#"


@cache
def _validator(kind: str) -> Callable[[Any], Any]:
    return fastjsonschema.compile({**_schema()[kind], "$schema": _DRAFT})


@lru_cache(maxsize=1)
def _ops_schema() -> dict[str, Any]:
    return json.loads(OPS_SCHEMA_PATH.read_text(encoding="utf-8"))["ops"]


def catalogue_ops() -> list[str]:
    """The op names of the TypeScript catalogue."""
    return sorted(_ops_schema())


@cache
def _args_validator(op: str) -> Callable[[Any], Any] | None:
    entry = _ops_schema().get(op)
    return None if entry is None else fastjsonschema.compile({**entry["args"], "$schema": _DRAFT})


def validate_args(op: str, args: dict[str, Any]) -> dict[str, Any]:
    """`args` in their wire form (tensors and non-finite numbers still placeholders) checked against the op's schema,
    with every missing field that has a default filled in (in place). An op outside the catalogue (one a plugin
    registered) passes unchecked."""
    validator = _args_validator(op)
    if validator is None:
        return args
    try:
        return validator(args)
    except fastjsonschema.JsonSchemaValueException as exc:
        message = exc.message.replace("data", "args", 1)  # fastjsonschema names the root "data"
        shown = repr(exc.value)
        shown = shown if len(shown) <= 200 else f"{shown[:200]}…"
        raise InvalidArgsError(f"{op}: {message}, got {shown}; see the op's schema in src/worker/ops/") from None


def protocol_version() -> int:
    return int(_schema()["version"])


# Node writes every request header as {"v":…,"id":…,…}: the id is read from there before anything is parsed, so
# that a request which fails later (not JSON, bad envelope) is still answered under its own id.
_ID_PREFIX = re.compile(rb'\s*\{\s*"v"\s*:\s*-?\d+\s*,\s*"id"\s*:\s*(\d{1,16})\s*[,}]')


def peek_request_id(raw: bytes | memoryview) -> int:
    """The request's id from the start of its header, or 0 when it does not start as Node writes it."""
    match = _ID_PREFIX.match(bytes(raw[:64]))
    return int(match.group(1)) if match else 0


def _refuse_constant(name: str) -> Any:
    raise ProtocolError(f'header holds a bare {name}, which is not JSON; send it as {{"$f": "{name}"}}')


def parse_request(raw: bytes | memoryview) -> dict[str, Any]:
    try:
        header = json.loads(bytes(raw), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError(f"header frame is not JSON: {exc}") from None
    try:
        _validator("request")(header)
    except fastjsonschema.JsonSchemaValueException as exc:
        where = "/".join(str(p) for p in (exc.path or [])[1:]) or "(header)"
        message = exc.message.replace("data", "header", 1)  # fastjsonschema names the root "data"
        raise ProtocolError(f"invalid request header at {where}: {message}") from None
    return header


def check_outgoing(kind: str, message: dict[str, Any]) -> None:
    """Used by tests: every message the worker sends must fit the schema."""
    _validator(kind)(message)
