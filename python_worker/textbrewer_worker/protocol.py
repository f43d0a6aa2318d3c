"""Validates messages against protocol_schema.json, generated from the TypeScript definition (src/worker/protocol.ts)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from .codec import ProtocolError

SCHEMA_PATH = Path(__file__).with_name("protocol_schema.json")


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def _validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(_schema()[kind])


def protocol_version() -> int:
    return int(_schema()["version"])


def parse_request(raw: bytes | memoryview) -> dict[str, Any]:
    try:
        header = json.loads(bytes(raw))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"header frame is not JSON: {exc}") from None
    error = next(iter(_validator("request").iter_errors(header)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(header)"
        raise ProtocolError(f"invalid request header at {where}: {error.message}")
    return header


def check_outgoing(kind: str, message: dict[str, Any]) -> None:
    """Used by tests: every message the worker sends must fit the schema."""
    _validator(kind).validate(message)
