"""The request loop's contract: every message, however malformed, gets exactly one well-formed reply."""

import json

import torch
import zmq

from textbrewer_worker import protocol
from textbrewer_worker.ops import WorkerState
from textbrewer_worker.server import handle


def frames(header: object, *payloads: bytes) -> list[zmq.Frame]:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return [zmq.Frame(raw), *(zmq.Frame(p) for p in payloads)]


def reply_of(state: WorkerState, message: list[zmq.Frame]) -> dict:
    out = handle(state, message)
    header = json.loads(bytes(out[0]))
    protocol.check_outgoing("reply", header)
    return header


def test_ping_and_echo_round_trip() -> None:
    state = WorkerState(device="cpu")
    assert reply_of(state, frames({"v": 1, "id": 1, "op": "ping"})) == {"v": 1, "id": 1, "ok": True}
    data = torch.arange(6, dtype=torch.float32).numpy().tobytes()
    meta = {"dtype": "float32", "shape": [2, 3], "byteLength": 24}
    out = handle(
        state, frames({"v": 1, "id": 2, "op": "echo", "args": {"x": {"$t": 0}}, "tensors": [meta]}, data)
    )
    header = json.loads(bytes(out[0]))
    assert header["result"] == {"x": {"$t": 0}} and header["tensors"] == [meta]
    assert bytes(out[1]) == data


def test_malformed_messages_get_error_replies() -> None:
    state = WorkerState(device="cpu")
    cases = [
        (b"not json", "not JSON"),
        ({"v": 1, "op": "ping"}, "id"),
        ({"v": 2, "id": 1, "op": "ping"}, "v"),
        ({"v": 1, "id": 1, "op": "ping", "eval": "__import__('os')"}, "eval"),
        ({"v": 1, "id": 1, "op": "nope"}, "unknown op"),
        (
            {
                "v": 1,
                "id": 1,
                "op": "echo",
                "tensors": [{"dtype": "float32", "shape": [4], "byteLength": 16}],
            },
            "frames",
        ),
        ({"v": 1, "id": 1, "op": "echo", "args": {"x": {"$t": 3}}}, "out of range"),
        (
            {"v": 1, "id": 1, "op": "echo", "tensors": [{"dtype": "float99", "shape": [1], "byteLength": 4}]},
            "at tensors/0/dtype: header.tensors[0].dtype must be one of",
        ),
    ]
    for header, fragment in cases:
        reply = reply_of(state, frames(header))
        assert reply["ok"] is False, header
        assert fragment in reply["error"]["message"], (fragment, reply["error"]["message"])


def test_frame_size_must_match_dtype_and_shape() -> None:
    state = WorkerState(device="cpu")
    meta = {"dtype": "float32", "shape": [4], "byteLength": 16}
    reply = reply_of(
        state,
        frames({"v": 1, "id": 5, "op": "echo", "args": {"x": {"$t": 0}}, "tensors": [meta]}, b"\0" * 12),
    )
    assert reply["ok"] is False and "does not match" in reply["error"]["message"]
    assert reply["id"] == 5


def test_wait_for_request_spins_then_blocks() -> None:
    import time

    from textbrewer_worker.server import _wait_for_request

    ctx = zmq.Context()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    a.bind("inproc://spin")
    b.connect("inproc://spin")
    poller = zmq.Poller()
    poller.register(b, zmq.POLLIN)
    t0 = time.perf_counter()
    assert _wait_for_request(b, poller, 0.002) is False  # nothing came: spins 2 ms, then blocks for 200 ms
    assert time.perf_counter() - t0 >= 0.2
    a.send(b"x")
    t0 = time.perf_counter()
    assert _wait_for_request(b, poller, 0.5) is True  # found while spinning, long before the spin ends
    assert time.perf_counter() - t0 < 0.5
    a.close()
    b.close()
    ctx.term()
