"""The worker's request loop: one DEALER socket for requests, one for heartbeats, one reply per request."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq

from .. import (  # noqa: F401  (register their ops)
    export_ops,
    feature_fidelity_ops,
    layer_similarity,
    lm_ops,
    packaged_models,
    prep_ops,
    sparse_ops,
    theseus,
    tokenizer_ops,
    user_ops,
)
from ..service import teacher_service  # noqa: F401
from ..training import distributed, train_ops  # noqa: F401
from . import protocol
from .codec import ProtocolError, decode_tensor, decode_value, encode_value
from .lifecycle import install_signal_handlers, start_lifeline
from .ops import OPS, WorkerState


@dataclass(frozen=True)
class LinkOptions:
    """How the sockets connect: the largest frame either side accepts (-1: no limit), and Node's CURVE public key
    (z85) when the link is encrypted."""

    max_message_size: int = -1
    curve_server_key: str | None = None


HEARTBEAT_INTERVAL_S = 1.0
# Node answers every heartbeat. A dead parent is caught by the stdin lifeline at once; this limit is for a parent
# that is alive but stopped answering (wedged), generous so a long synchronous pause in user code is not mistaken.
PARENT_SILENCE_LIMIT_S = float(os.environ.get("TEXTBREWER_PARENT_TIMEOUT_S", "900"))


def _dumps(message: dict[str, Any]) -> bytes:
    # Strict JSON: non-finite floats were turned into {"$f": …} by encode_value; one that was not is an error.
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _hello(token: str, role: str) -> bytes:
    return _dumps({"v": protocol.protocol_version(), "op": "hello", "token": token, "role": role, "pid": os.getpid()})


def connect_dealer(ctx: zmq.Context, endpoint: str, link: LinkOptions) -> zmq.Socket:
    """A DEALER to Node's ROUTER with the link's frame limit and, when given the server key, CURVE."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, link.max_message_size)
    if link.curve_server_key:
        public, secret = zmq.curve_keypair()  # this connection's own key; the token says who we are
        sock.curve_serverkey = link.curve_server_key.encode("ascii")
        sock.curve_publickey = public
        sock.curve_secretkey = secret
    sock.connect(endpoint)
    return sock


def _heartbeat_loop(ctx: zmq.Context, endpoint: str, token: str, stop: threading.Event, link: LinkOptions) -> None:
    sock = connect_dealer(ctx, endpoint, link)
    sock.send(_hello(token, "heartbeat"))
    last_answer = time.monotonic()
    version = protocol.protocol_version()
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    while not stop.is_set():
        try:
            sock.send(_dumps({"v": version, "op": "hb", "t": time.time()}), zmq.NOBLOCK)
        except zmq.Again:
            pass
        deadline = time.monotonic() + HEARTBEAT_INTERVAL_S
        while (remaining := deadline - time.monotonic()) > 0:
            if poller.poll(int(remaining * 1000)):  # what pyzmq does with a float
                sock.recv_multipart()
                last_answer = time.monotonic()
        if time.monotonic() - last_answer > PARENT_SILENCE_LIMIT_S:
            sys.stderr.write(
                f"textbrewer_worker: no heartbeat from the client for {PARENT_SILENCE_LIMIT_S:.0f} s; exiting\n"
            )
            os._exit(3)
    sock.close()


def error_reply(request_id: int, exc: BaseException) -> dict[str, Any]:
    return {
        "v": protocol.protocol_version(),
        "id": request_id,
        "ok": False,
        "error": {
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        },
    }


def _frame_size(frame: Any) -> int:
    return frame.nbytes if isinstance(frame, memoryview) else len(frame)


def handle(state: WorkerState, frames: list[zmq.Frame], max_frame_bytes: int = -1) -> list[Any]:
    """Turns one request into exactly one reply (as frames); never raises. No reply frame exceeds
    max_frame_bytes (-1: no limit): Node would drop the connection, and the request would never be answered."""
    request_id = 0
    try:
        if not frames:
            raise ProtocolError("empty message")
        request_id = protocol.peek_request_id(frames[0].buffer)
        header = protocol.parse_request(frames[0].buffer)
        request_id = header["id"]
        state.request_id = request_id
        metas = header.get("tensors", [])
        if len(metas) != len(frames) - 1:
            raise ProtocolError(f"header describes {len(metas)} tensors but {len(frames) - 1} frames came")
        tensors = [decode_tensor(meta, frame) for meta, frame in zip(metas, frames[1:])]
        op = OPS.get(header["op"])
        if op is None:
            raise ProtocolError(f"unknown op '{header['op']}'; known ops: {', '.join(sorted(OPS))}")
        args = decode_value(protocol.validate_args(header["op"], header.get("args", {})), tensors)
        result = op(state, args)
        out_metas: list[dict[str, Any]] = []
        out_frames: list[Any] = []
        encoded = encode_value(result, out_metas, out_frames)
        reply: dict[str, Any] = {"v": protocol.protocol_version(), "id": request_id, "ok": True}
        if encoded is not None:
            reply["result"] = encoded
        if out_metas:
            reply["tensors"] = out_metas
        out = [_dumps(reply), *out_frames]
        if max_frame_bytes >= 0:
            for index, frame in enumerate(out):
                if _frame_size(frame) > max_frame_bytes:
                    what = "the reply header" if index == 0 else f"tensor {index - 1} of the result"
                    raise ProtocolError(
                        f"{what} is {_frame_size(frame)} bytes, over maxMessageSize ({max_frame_bytes}); "
                        "raise Worker.start({ maxMessageSize }) or return smaller pieces"
                    )
        return out
    except Exception as exc:  # noqa: BLE001  (every failure becomes an error reply; the loop goes on)
        return [_dumps(error_reply(request_id, exc))]


def _wait_for_request(sock: zmq.Socket, poller: zmq.Poller, spin_seconds: float) -> bool:
    """True when a request is ready. Polls without blocking for `spin_seconds` first: waking from a blocking poll
    on an idle core takes tens of microseconds, a large share of a small request's round trip."""
    if spin_seconds > 0:
        deadline = time.perf_counter() + spin_seconds
        while time.perf_counter() < deadline:
            if sock.poll(0):
                return True
    return bool(poller.poll(200))


# requests read ahead of the one being handled, at most (their number is bounded by the client's window anyway)
READ_AHEAD_LIMIT = 16


def _read_ahead(sock: zmq.Socket, backlog: deque[list[zmq.Frame]], state: WorkerState) -> None:
    """With look-ahead hooks registered (a teacher service link), moves the requests already queued into `backlog`
    and shows each to the hooks once, so their work can start while this one is handled. Order is kept."""
    hooks = state.extensions.get("look_ahead")
    if not hooks:
        return
    while len(backlog) < READ_AHEAD_LIMIT and sock.poll(0):
        frames = sock.recv_multipart(copy=False)
        backlog.append(frames)
        for hook in hooks:
            hook(frames)


def serve(
    endpoint: str,
    token: str,
    device: str,
    spin_us: int = 0,
    link: LinkOptions | None = None,
    private_dir: str | None = None,
    join_group: Callable[[str], str] | None = None,
) -> None:
    """`join_group` (a rank under torchrun) joins the process group after the lifeline is up and before the
    handshake, and returns the rank's device."""
    link = link or LinkOptions()
    start_lifeline(private_dir)
    if join_group is not None:
        device = join_group(device)
    state = WorkerState(device=device)  # a bad device fails here, before the handshake, with its message on stderr
    stop = threading.Event()
    install_signal_handlers(lambda: stop.set())
    ctx = zmq.Context()
    sock = connect_dealer(ctx, endpoint, link)
    sock.send(_hello(token, "main"))
    heartbeat = threading.Thread(
        target=_heartbeat_loop, args=(ctx, endpoint, token, stop, link), name="heartbeat", daemon=True
    )
    heartbeat.start()
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    idle_since = time.perf_counter()
    backlog: deque[list[zmq.Frame]] = deque()
    # a handler waiting on other work (a teacher service's reply) reads ahead too: the next step's request often
    # arrives while this one runs
    state.extensions["read_ahead"] = lambda: _read_ahead(sock, backlog, state)
    while not stop.is_set() and not state.shutdown_requested:
        if not backlog and not _wait_for_request(sock, poller, spin_us / 1e6):
            continue
        frames = backlog.popleft() if backlog else sock.recv_multipart(copy=False)
        state.idle_seconds += time.perf_counter() - idle_since
        _read_ahead(sock, backlog, state)
        sock.send_multipart(handle(state, frames, link.max_message_size), copy=False)
        idle_since = time.perf_counter()
    stop.set()
    heartbeat.join(timeout=2 * HEARTBEAT_INTERVAL_S)
    sock.close()
    ctx.term()
