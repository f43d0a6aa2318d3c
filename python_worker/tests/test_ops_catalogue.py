"""The worker against the TypeScript op catalogue (ops_schema.json, ops_types.py): the same ops, every handler typed
with its op's args, and each request's args checked against its op's schema before the handler runs."""

import json
import re
import typing
from pathlib import Path

import pytest
import zmq

import textbrewer_worker
from textbrewer_worker.wire import ops_types, protocol, server
from textbrewer_worker.wire.ops import OPS, WorkerState


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def test_the_worker_serves_exactly_the_catalogue_ops() -> None:
    assert sorted(OPS) == protocol.catalogue_ops()


def test_every_handler_takes_its_ops_generated_args_type() -> None:
    for name, handler in OPS.items():
        annotation = typing.get_type_hints(handler, vars(ops_types) | {"WorkerState": WorkerState})["args"]
        assert annotation == getattr(ops_types, f"{_pascal(name)}Args"), name


def test_defaults_come_from_the_schema() -> None:
    args = protocol.validate_args("tokenize", {"tokenizer": "t1", "texts": ["a"]})
    assert args == {
        "tokenizer": "t1",
        "texts": ["a"],
        "textPairs": None,
        "maxLength": None,
        "padding": "longest",
        "truncation": True,
    }


def _error_of(op: str, args: object) -> dict:
    header = {"v": 1, "id": 7, "op": op, "args": args}
    reply = json.loads(bytes(server.handle(WorkerState(device="cpu"), [zmq.Frame(json.dumps(header).encode())])[0]))
    assert reply["ok"] is False and reply["id"] == 7
    return reply["error"]


@pytest.mark.parametrize(
    ("op", "args", "message"),
    [
        ("seed", {"seed": "abc"}, "seed: args.seed must be integer, got 'abc'"),
        ("seed", {"seed": -1}, "seed: args.seed must be bigger than or equal to 0, got -1"),
        ("seed", {}, "seed: args must contain ['seed'] properties"),
        ("describe", {"model": "m1", "maxLevle": 2}, "describe: args must not contain {'maxLevle'} properties"),
        ("tokenize", {"tokenizer": "t1", "texts": []}, "tokenize: args.texts must contain at least 1 items"),
        (
            "predict",
            {"model": "m1", "batch": {"x": {"$t": 0}}, "hidden": 1},
            "predict: args.hidden must be boolean, got 1",
        ),
        (
            "train_step",
            {"batch": {}, "teacherLogits": [5]},
            "train_step: args.teacherLogits cannot be validated by any definition, got [5]",
        ),
    ],
)
def test_invalid_args_are_refused_naming_the_op_and_the_field(op: str, args: object, message: str) -> None:
    error = _error_of(op, args)
    assert error["type"] == "InvalidArgsError"
    assert error["message"].startswith(message)


def _defaulted_fields(schema: object, found: set[str]) -> set[str]:
    if isinstance(schema, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if isinstance(sub, dict) and "default" in sub:
                found.add(name)
        for value in schema.values():
            _defaulted_fields(value, found)
    elif isinstance(schema, list):
        for value in schema:
            _defaulted_fields(value, found)
    return found


def test_the_worker_restates_no_default_of_the_schema() -> None:
    """A field the schema gives a default arrives filled in: reading an op's args (or the plan, a spec, its options)
    with `.get(name, fallback)` would be a second definition of its default, free to drift from the schema's."""
    package = Path(textbrewer_worker.__file__).parent
    catalogue = json.loads(protocol.OPS_SCHEMA_PATH.read_text())
    fields = _defaulted_fields([op["args"] for op in catalogue["ops"].values()], set())
    names = "|".join(map(re.escape, sorted(fields)))
    restated = re.compile(rf"""\b(args|plan|spec|params|options|match|topk)\.get\(\s*["']({names})["']\s*,""")
    hits = [
        f"{path.relative_to(package)}:{number}: {line.strip()}"
        for path in sorted(package.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if restated.search(line)
    ]
    assert hits == []
