"""The request loop's contract: every message, however malformed, gets exactly one well-formed reply."""

import json
import os
from pathlib import Path

import pytest
import torch
import zmq

from textbrewer_worker.wire import protocol
from textbrewer_worker.wire.ops import WorkerState
from textbrewer_worker.wire.server import handle


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
    out = handle(state, frames({"v": 1, "id": 2, "op": "echo", "args": {"x": {"$t": 0}}, "tensors": [meta]}, data))
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

    from textbrewer_worker.wire.server import _wait_for_request

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


def strict_loads(raw: bytes) -> dict:
    """json.loads that refuses bare NaN/Infinity, as JSON.parse does."""

    def refuse(name: str) -> None:
        raise AssertionError(f"bare {name} on the wire")

    return json.loads(raw, parse_constant=refuse)


def test_header_invalid_requests_are_answered_under_their_own_id() -> None:
    state = WorkerState(device="cpu")
    cases = [
        (b'{"v":1,"id":7,"op":"' + b"x" * 65 + b'"}', "op"),
        (b'{"v":1,"id":8,"op":"ping","args":[1,2]}', "args"),
        (b'{"v":1,"id":9,"op":"ping","args":{"x":NaN}}', '{"$f": "NaN"}'),
        (b'{"v":1,"id":10,"op":"ping", oops', "not JSON"),
        (b'{"v":1,"id":11,"op":"ping","args":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "not JSON"),
        (b'{"v":1,"id":12,"op":"ping","args":{"x":"\xff"}}', "not JSON"),
        (b'{"v": 1, "id": 13, "op": 5}', "op"),
    ]
    for raw, fragment in cases:
        out = handle(state, [zmq.Frame(raw)])
        reply = strict_loads(bytes(out[0]))
        protocol.check_outgoing("reply", reply)
        expected_id = int(raw.split(b'"id":')[1].split(b",")[0])
        assert reply["id"] == expected_id and reply["ok"] is False, (raw[:60], reply)
        assert fragment in reply["error"]["message"], (fragment, reply["error"]["message"])
    # without the prefix Node writes, the id cannot be known: 0, which the client treats as "names no request"
    reply = strict_loads(bytes(handle(state, [zmq.Frame(b"garbage")])[0]))
    assert reply["id"] == 0 and reply["ok"] is False


def test_non_finite_floats_travel_as_placeholders_both_ways() -> None:
    import math

    import numpy as np

    from textbrewer_worker.wire.codec import decode_value, encode_value

    result = {"total": math.nan, "terms": [math.inf, -math.inf, 0.5], "np": np.float32("nan"), "n": 3}
    encoded = encode_value(result, [], [])
    assert encoded == {
        "total": {"$f": "NaN"},
        "terms": [{"$f": "Infinity"}, {"$f": "-Infinity"}, 0.5],
        "np": {"$f": "NaN"},
        "n": 3,
    }
    decoded = decode_value(encoded, [])
    assert math.isnan(decoded["total"]) and decoded["terms"][:2] == [math.inf, -math.inf]
    state = WorkerState(device="cpu")
    header = {"v": 1, "id": 4, "op": "echo", "args": {"loss": {"$f": "-Infinity"}, "x": [{"$f": "NaN"}]}}
    reply = strict_loads(bytes(handle(state, frames(header))[0]))
    assert reply == {"v": 1, "id": 4, "ok": True, "result": {"loss": {"$f": "-Infinity"}, "x": [{"$f": "NaN"}]}}
    bad = reply_of(state, frames({"v": 1, "id": 5, "op": "echo", "args": {"x": {"$f": "nan"}}}))
    assert bad["ok"] is False and "expected one of NaN, Infinity, -Infinity" in bad["error"]["message"]


def test_reply_frames_over_the_limit_become_an_error_reply() -> None:
    state = WorkerState(device="cpu")
    data = torch.zeros(1000, dtype=torch.float32).numpy().tobytes()
    meta = {"dtype": "float32", "shape": [1000], "byteLength": 4000}
    header = {"v": 1, "id": 6, "op": "echo", "args": {"x": {"$t": 0}}, "tensors": [meta]}
    out = handle(state, frames(header, data), max_frame_bytes=1024)
    reply = strict_loads(bytes(out[0]))
    assert len(out) == 1 and reply["id"] == 6 and reply["ok"] is False
    assert "tensor 0 of the result is 4000 bytes, over maxMessageSize (1024)" in reply["error"]["message"]
    assert len(handle(state, frames(header, data), max_frame_bytes=4096)) == 2


def test_lifeline_removes_the_private_folder_when_stdin_closes(tmp_path) -> None:
    import subprocess
    import sys

    folder = tmp_path / "tbw-test"
    folder.mkdir()
    (folder / "w.ipc").write_bytes(b"")
    code = (
        "import sys, time\n"
        "from textbrewer_worker.wire.lifecycle import start_lifeline\n"
        "start_lifeline(sys.argv[1])\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    root = str(Path(__file__).resolve().parent.parent)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=root
    )
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline().strip() == b"ready"
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0
    assert not folder.exists()


def test_library_prompts_get_end_of_file_and_leave_the_lifeline_alone() -> None:
    """A prompt in library or user code (input(), sys.stdin.readline()) must not wait on Node's pipe nor eat it."""
    import subprocess
    import sys

    code = (
        "import sys, time\n"
        "from textbrewer_worker.wire.lifecycle import start_lifeline\n"
        "start_lifeline()\n"
        "try:\n"
        "    input('run the custom code? [y/N] ')\n"
        "    print('read', flush=True)\n"
        "except EOFError:\n"
        "    print('eof', flush=True)\n"
        "time.sleep(60)\n"
    )
    root = str(Path(__file__).resolve().parent.parent)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=root)
    assert proc.stdout is not None and proc.stdin is not None
    proc.stdin.write(b"y\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip().endswith(b"eof")
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0


@pytest.mark.skipif(not os.environ.get("TEXTBREWER_SLOW_TESTS"), reason="slow: set TEXTBREWER_SLOW_TESTS=1")
def test_fuzzed_requests_each_get_exactly_one_well_formed_reply() -> None:
    import random

    rng = random.Random(17)
    state = WorkerState(device="cpu")
    meta = {"dtype": "float32", "shape": [2], "byteLength": 8}
    seeds = [
        {"v": 1, "id": 1, "op": "ping"},
        {"v": 1, "id": 1, "op": "echo", "args": {"x": {"$t": 0}, "y": [1, {"$f": "NaN"}]}, "tensors": [meta]},
        {"v": 1, "id": 1, "op": "seed", "args": {"seed": 3}},
    ]
    junk = [b"", b"{", b"}", b"[", b"NaN", b"-Infinity", b'"', b"\\", b"\xff", b"\x00", b"null", b"1e999", b",", b":"]
    for i in range(3000):
        request_id = i + 1
        header = dict(rng.choice(seeds), id=request_id)
        raw = bytearray(json.dumps(header, separators=(",", ":")).encode())
        prefix = len(f'{{"v":1,"id":{request_id},')
        for _ in range(rng.randint(1, 4)):  # mutate after the id prefix, as a bad header would be
            at = rng.randint(prefix, len(raw))
            if rng.random() < 0.5:
                raw[at:at] = rng.choice(junk)
            else:
                del raw[at : at + rng.randint(1, 5)]
        payloads = [b"\0" * rng.choice([0, 4, 8, 12])] * rng.randint(0, 2)
        out = handle(state, frames(bytes(raw), *payloads))
        reply = strict_loads(bytes(out[0]))
        protocol.check_outgoing("reply", reply)
        assert reply["id"] == request_id, (bytes(raw), reply)
