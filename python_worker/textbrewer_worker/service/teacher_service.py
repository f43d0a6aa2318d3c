"""The teacher as a service: a ROUTER socket in the teacher's worker that student workers connect to directly.

Each request carries a batch of teacher inputs and what the student's plan reads; the reply holds the adaptor
outputs it asked for. A serving thread answers them in arrival order; requests of different clients that are
waiting together and agree in shape are stacked into one forward, up to `maxBatchRows` rows. Links are local (an ipc
folder, loopback tcp) with a token in every request, or CURVE-encrypted with an allow-list of client public keys.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import torch
import zmq

from ..device import to_device
from ..training.adaptor import apply_adaptor
from ..training.objective import post_adaptor, target_logits_of, topk_targets
from ..training.session import amp_settings, output_flags
from ..wire.ops import WorkerState, call_model, op
from ..wire.ops_types import (
    TeacherServiceAllowArgs,
    TeacherServiceStartArgs,
    TeacherServiceStartResult,
    TeacherServiceStatsArgs,
    TeacherServiceStatsResult,
    TeacherServiceStopArgs,
)
from .service_wire import FLOAT_DTYPES, TOPK_KEY, pack, select_outputs, unpack

SERVICE_KEY = "teacher_service"
ZAP_DOMAIN = "textbrewer-teacher"
POLL_MS = 100


@dataclass(eq=False)
class Pending:
    """One forward request of a client, decoded."""

    ident: bytes
    header: dict[str, Any]
    batch: Any
    frames: list[Any]

    def group_key(self) -> str | None:
        """Requests with equal keys can share one forward (stacked on dim 0); None: this one runs alone."""
        batch = self.batch
        if not isinstance(batch, dict) or not batch or self.header.get("want") is None:
            return None
        if not all(isinstance(t, torch.Tensor) and t.dim() >= 1 for t in batch.values()):
            return None
        shapes = sorted((k, str(t.dtype), tuple(t.shape[1:])) for k, t in batch.items())
        h = self.header
        key = [shapes, h["want"], h["dtype"], h.get("forwardArgs", {}), h.get("topK")]
        return json.dumps(key, sort_keys=True, default=str)

    def rows(self) -> int:
        return int(next(iter(self.batch.values())).shape[0]) if isinstance(self.batch, dict) and self.batch else 1


class AllowList:
    """ZAP credentials provider: the CURVE public keys (z85) allowed to connect."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = set(keys)
        self.refused = 0

    def callback(self, domain: str, key: bytes) -> bool:
        ok = key.decode("ascii") in self.keys
        if not ok:
            self.refused += 1
        return ok


@dataclass
class Stats:
    requests: int = 0
    forwards: int = 0
    rows: int = 0
    busy_s: float = 0.0
    idle_s: float = 0.0
    errors: int = 0
    clients: set[bytes] = field(default_factory=set)


class TeacherServer:
    def __init__(self, state: WorkerState, args: TeacherServiceStartArgs) -> None:
        self.state = state
        self.teachers = [state.model({"model": h}) for h in args["teachers"]]
        for teacher in self.teachers:
            teacher.eval()
        self.adaptors = args["adaptors"]
        if len(self.adaptors) != len(self.teachers):
            raise ValueError(f"adaptors: {len(self.adaptors)} adaptor(s) for {len(self.teachers)} teacher(s)")
        self.flags = [output_flags(m, s) for m, s in zip(self.teachers, self.adaptors)]
        self.warnings: list[str] = []
        self.autocast_dtype, _ = amp_settings(args["mixedPrecision"], state.torch_device, self.warnings)
        self.token = args["token"].encode("ascii")
        self.max_rows = args["maxBatchRows"]
        self.stats = Stats()
        self.stop_flag = threading.Event()
        self.ctx = zmq.Context()
        self.auth: Any = None
        self.allow: AllowList | None = None
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a reply to a client that left raises instead of blocking
        curve = args["curve"]
        if curve is not None:
            if not zmq.has("curve"):
                raise ValueError(
                    f"curve: this pyzmq (libzmq {zmq.zmq_version()}) has no CURVE support; install a pyzmq built with "
                    "libsodium, or serve on ipc / loopback tcp"
                )
            from zmq.auth.thread import ThreadAuthenticator

            self.allow = AllowList(curve["clientKeys"])
            self.auth = ThreadAuthenticator(self.ctx)
            self.auth.start()
            self.auth.configure_curve_callback(domain=ZAP_DOMAIN, credentials_provider=self.allow)
            self.sock.zap_domain = ZAP_DOMAIN.encode("ascii")
            self.sock.curve_server = True
            self.sock.curve_secretkey = curve["secretKey"].encode("ascii")
            self.sock.curve_publickey = curve["publicKey"].encode("ascii")
        try:
            self.sock.bind(args["endpoint"])
        except zmq.ZMQError as exc:
            self.close()
            raise ValueError(f"endpoint: cannot bind '{args['endpoint']}': {exc}") from exc
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.thread = threading.Thread(target=self.serve, name="teacher-service", daemon=True)
        self.thread.start()

    def serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        idle_since = time.perf_counter()
        while not self.stop_flag.is_set():
            if not poller.poll(POLL_MS):
                continue
            now = time.perf_counter()
            self.stats.idle_s += now - idle_since
            queue: deque[Pending] = deque()
            while self.sock.poll(0):
                request = self.receive()
                if request is not None:
                    queue.append(request)
            while queue:
                self.answer(take_group(queue, self.max_rows))
            idle_since = time.perf_counter()
            self.stats.busy_s += idle_since - now

    def receive(self) -> Pending | None:
        """The next message decoded as a forward request; other messages (describe, a bad token, garbage) are answered
        here and give None."""
        ident, *frames = self.sock.recv_multipart(copy=False)
        ident_bytes = bytes(ident.buffer)
        self.stats.clients.add(ident_bytes)
        try:
            header, body = unpack(frames)
            # with CURVE the handshake authenticated the client (its key is allow-listed); else the token does
            if self.allow is None and not hmac.compare_digest(str(header.get("token", "")).encode("ascii"), self.token):
                raise PermissionError(
                    "token: this client's token is not the service's; take the link from service.client()"
                )
            if header.get("op") == "describe":
                self.reply(ident_bytes, {"id": header.get("id", 0), "ok": True}, self.describe())
                return None
            if header.get("op") != "forward":
                raise ValueError(f"op: '{header.get('op')}' is not one of describe, forward")
            if header.get("dtype") not in FLOAT_DTYPES:
                raise ValueError(f"dtype: '{header.get('dtype')}' is not one of {', '.join(FLOAT_DTYPES)}")
            return Pending(ident_bytes, header, body, frames)
        except Exception as exc:  # noqa: BLE001  (every bad request gets an error reply; the service goes on)
            self.stats.errors += 1
            self.reply(ident_bytes, {"id": peek_id(frames), "ok": False, "error": f"{type(exc).__name__}: {exc}"})
            return None

    def describe(self) -> dict[str, Any]:
        return {"teachers": len(self.teachers), "adaptors": self.adaptors, "device": str(self.state.torch_device)}

    def answer(self, group: list[Pending]) -> None:
        """One forward for the group (stacked when several), one reply to each request."""
        try:
            batch = group[0].batch if len(group) == 1 else stack([p.batch for p in group])
            per_teacher = self.forward(batch, group[0].header)
            rows = [p.rows() for p in group]
            parts = [per_teacher] if len(group) == 1 else split(per_teacher, rows)
            self.stats.forwards += 1
            self.stats.rows += sum(rows)
            for p, part in zip(group, parts):
                self.stats.requests += 1
                self.reply(p.ident, {"id": p.header["id"], "ok": True}, part)
        except Exception as exc:  # noqa: BLE001  (a failed forward fails its requests, not the service)
            if len(group) > 1:
                for p in group:  # one request's bad batch must not fail the others: run them alone
                    self.answer([p])
                return
            self.stats.errors += 1
            p = group[0]
            self.reply(p.ident, {"id": p.header["id"], "ok": False, "error": f"{type(exc).__name__}: {exc}"})

    def forward(self, batch: Any, header: dict[str, Any]) -> list[dict[str, Any]]:
        batch = to_device(batch, self.state.torch_device)
        extra = header.get("forwardArgs") or {}
        dtype = FLOAT_DTYPES[header["dtype"]]
        full: list[dict[str, Any]] = []
        device_type = self.state.torch_device.type
        autocast = (
            torch.autocast(device_type=device_type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with torch.no_grad(), autocast:
            for teacher, spec, flags in zip(self.teachers, self.adaptors, self.flags):
                full.append(post_adaptor(apply_adaptor(spec, batch, call_model(teacher, batch, {**extra, **flags}))))
            out = [select_outputs(results, header.get("want"), dtype) for results in full]
            topk = header.get("topK")
            if topk is not None:
                # the targets a teacher cache with topK stores: several teachers' logits averaged, then the top-k of
                # their log-softmax at the KD temperature, in float32 whatever the dtype of the dense outputs
                targets = target_logits_of(full)
                if targets is None:
                    raise ValueError("topK: the teacher adaptor returns no 'logits' to take the top-k of")
                out[0][TOPK_KEY] = topk_targets(targets, int(topk["k"]), float(topk["temperature"]))
        return out

    def reply(self, ident: bytes, header: dict[str, Any], body: Any = None) -> None:
        try:
            self.sock.send_multipart([ident, *pack(header, body)], copy=False)
        except zmq.ZMQError:
            pass  # the client left (ROUTER_MANDATORY): nobody waits for this reply

    def close(self) -> None:
        self.stop_flag.set()
        thread = getattr(self, "thread", None)
        if thread is not None:
            thread.join(timeout=5)
        if self.auth is not None:
            self.auth.stop()
        self.sock.close()
        self.ctx.term()


def peek_id(frames: list[Any]) -> int:
    """The id of a request that could not be decoded, when its header says it (0 otherwise)."""
    try:
        return int(json.loads(bytes(frames[0].buffer)).get("id", 0))
    except (ValueError, TypeError, AttributeError, IndexError):
        return 0


def take_group(queue: deque[Pending], max_rows: int) -> list[Pending]:
    """The first request, and the later ones of other clients that can share its forward, within max_rows rows.
    One client's requests never share a forward: its results are the same as when it is served alone."""
    first = queue.popleft()
    key = first.group_key()
    if key is None or max_rows <= first.rows():
        return [first]
    group, rows, clients = [first], first.rows(), {first.ident}
    for p in list(queue):
        if p.ident in clients or p.group_key() != key or rows + p.rows() > max_rows:
            continue
        queue.remove(p)
        group.append(p)
        rows += p.rows()
        clients.add(p.ident)
    return group


def stack(batches: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.cat([b[k] for b in batches]) for k in batches[0]}


def split(per_teacher: list[dict[str, Any]], rows: list[int]) -> list[list[dict[str, Any]]]:
    """Each request's rows of a stacked forward's selected outputs; fails (and the requests run alone) when an
    output is not per row."""
    total = sum(rows)

    def cut(value: Any) -> list[Any]:
        if isinstance(value, torch.Tensor):
            if value.dim() == 0 or value.shape[0] != total:
                raise ValueError("an output is not per example")
            return list(torch.split(value, rows))
        if isinstance(value, (list, tuple)):
            columns = [cut(v) for v in value]
            return [[c[i] for c in columns] for i in range(len(rows))]
        if isinstance(value, dict):
            cut_items = {
                k: cut(v) if isinstance(v, (torch.Tensor, list, tuple, dict)) else None for k, v in value.items()
            }
            return [{k: (c[i] if c is not None else value[k]) for k, c in cut_items.items()} for i in range(len(rows))]
        return [value] * len(rows)

    return [list(parts) for parts in zip(*[cut(r) for r in per_teacher])]


def server_of(state: WorkerState) -> TeacherServer:
    server = state.extensions.get(SERVICE_KEY)
    if server is None:
        raise RuntimeError("no teacher service runs in this worker; call teacher_service_start first")
    return server


@op("teacher_service_start")
def teacher_service_start(state: WorkerState, args: TeacherServiceStartArgs) -> TeacherServiceStartResult:
    if SERVICE_KEY in state.extensions:
        raise RuntimeError("a teacher service already runs in this worker; stop it first")
    server = TeacherServer(state, args)
    state.extensions[SERVICE_KEY] = server
    return {"endpoint": server.endpoint, "warnings": server.warnings}


@op("teacher_service_allow")
def teacher_service_allow(state: WorkerState, args: TeacherServiceAllowArgs) -> None:
    server = server_of(state)
    if server.allow is None:
        raise ValueError("publicKey: this service does not use CURVE; its clients need no key")
    server.allow.keys.add(args["publicKey"])


@op("teacher_service_stats")
def teacher_service_stats(state: WorkerState, args: TeacherServiceStatsArgs) -> TeacherServiceStatsResult:
    server = server_of(state)
    s = server.stats
    return {
        "requests": s.requests,
        "forwards": s.forwards,
        "rows": s.rows,
        "busyMs": s.busy_s * 1000.0,
        "idleMs": s.idle_s * 1000.0,
        "errors": s.errors,
        "clients": len(s.clients),
        "refusedKeys": server.allow.refused if server.allow is not None else 0,
    }


@op("teacher_service_stop")
def teacher_service_stop(state: WorkerState, args: TeacherServiceStopArgs) -> None:
    server = state.extensions.pop(SERVICE_KEY, None)
    if server is not None:
        server.close()
