"""A student worker's link to a teacher service: the teacher outputs of each step come from the service, worker to
worker, instead of a teacher forward in this process.

With steps in flight, the worker reads the queued step requests ahead (server.py) and this link sends their teacher
inputs at once, so the service computes batch k+1 while the student trains on batch k. At most `window` requests are
outstanding; a step whose batch was not sent ahead asks when it runs. Every wait has a deadline, and a connection the
service closed (it stopped or died), a refused CURVE handshake or a reply past the deadline is a TeacherServiceError
naming the endpoint.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from typing import Any

import torch
import zmq
from zmq.utils.monitor import recv_monitor_message

from ..wire.codec import decode_tensor, decode_value
from ..wire.ops import WorkerState
from .service_wire import TOPK_KEY, TeacherServiceError, pack, restore_outputs, unpack, wanted_outputs

LOOK_AHEAD_KEY = "look_ahead"
HEARTBEAT_IVL_MS = 500
HEARTBEAT_TIMEOUT_MS = 1500
POLL_MS = 20
WATCHED_EVENTS = (
    zmq.EVENT_CONNECTED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


class TeacherLink:
    def __init__(
        self, state: WorkerState, spec: dict[str, Any], terms: list[dict[str, Any]], extra: dict[str, Any]
    ) -> None:
        self.state = state
        self.endpoint: str = spec["endpoint"]
        self.token: str = spec["token"]
        self.dtype: str = spec["dtype"]
        self.timeout_s = spec["timeoutMs"] / 1000.0
        self.window: int = spec["window"]
        self.teachers: int = spec["teachers"]
        self.topk = topk_request(spec, terms)
        self.tail: str = spec["tail"]
        self.support: str = spec["support"]
        self.want = wanted_outputs(terms, topk=self.topk is not None)
        self.extra = extra
        self.curve = spec["serverKey"] is not None
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        self.sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        if self.curve:
            self.sock.curve_serverkey = spec["serverKey"].encode("ascii")
            self.sock.curve_publickey = spec["publicKey"].encode("ascii")
            self.sock.curve_secretkey = spec["secretKey"].encode("ascii")
        self.monitor = self.sock.get_monitor_socket(WATCHED_EVENTS)
        self.sock.connect(self.endpoint)
        self.handshaken = False
        self.broken: str | None = None
        self.sent: OrderedDict[int, None] = OrderedDict()  # request ids sent and not answered, in order
        self.replies: dict[int, tuple[dict[str, Any], Any]] = {}
        self.direct_id = 0
        self.prefetched = 0

    def look_ahead(self, frames: list[Any]) -> None:
        """Sends the teacher inputs of a queued train_step now (when the window has room); never raises."""
        try:
            if self.broken is not None or len(self.sent) + len(self.replies) >= self.window:
                return
            header = json.loads(bytes(frames[0].buffer))
            if header.get("op") != "train_step":
                return
            tensors = [decode_tensor(m, f) for m, f in zip(header.get("tensors", []), frames[1:])]
            args = decode_value(header.get("args", {}), tensors)
            if args.get("teacherLogits") is not None or args.get("teacherTopK") is not None:
                return
            batch = args.get("batch")
            if isinstance(batch, dict) and "teacherOutputs" in batch:
                return
            self.send(int(header["id"]), teacher_half(batch))
            self.prefetched += 1
        except Exception:  # noqa: BLE001  (the step itself asks again, and reports any error)
            return

    def results(self, batch_T: Any) -> list[dict[str, Any]]:
        """The teachers' adaptor outputs for the current request's batch, as the terms read them."""
        key = self.state.request_id
        for stale in [k for k in self.sent if 0 < k < key]:
            del self.sent[stale]  # sent ahead for a step that did not use it (e.g. a cache hit)
        for stale in [k for k in self.replies if 0 < k < key]:
            del self.replies[stale]
        if key not in self.sent and key not in self.replies:
            self.direct_id -= 1
            key = self.direct_id
            self.send(key, batch_T)
        self.read_ahead()  # after this batch's request: the service answers in order
        header, body = self.wait(key)
        if not header.get("ok"):
            raise TeacherServiceError(
                f"the teacher service at {self.endpoint} failed this batch: {header.get('error')}"
            )
        if not isinstance(body, list) or len(body) != self.teachers:
            raise TeacherServiceError(
                f"the teacher service at {self.endpoint} sent {type(body).__name__}, not {self.teachers} result(s)"
            )
        device = self.state.torch_device
        return [restore_outputs(r, device) for r in body]

    def sparse_targets(self, results: list[dict[str, Any]]) -> dict[str, Any] | None:
        """With topK: the step's top-k KD targets taken out of `results` (which then hold no logits), in the form a
        teacher cache's top-k hit has; None without topK."""
        if self.topk is None:
            return None
        targets = results[0].pop(TOPK_KEY, None) if results else None
        if targets is None:
            raise TeacherServiceError(f"the teacher service at {self.endpoint} sent no top-k targets for topK")
        for r in results:
            r.pop("logits", None)
        return {"targets": targets, "tail": self.tail, "support": self.support, "form": "topk"}

    def send(self, key: int, batch_T: Any) -> None:
        self.check()
        header = {"op": "forward", "id": key, "token": self.token, "want": self.want, "dtype": self.dtype}
        if self.topk is not None:
            header["topK"] = self.topk
        if self.extra:
            header["forwardArgs"] = self.extra
        self.sent[key] = None
        frames = pack(header, to_cpu(batch_T))
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                self.sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
                return
            except zmq.Again:
                self.poll_events(POLL_MS)
                self.check()
                if time.monotonic() > deadline:
                    raise self.timed_out("send a batch to") from None

    def wait(self, key: int) -> tuple[dict[str, Any], Any]:
        deadline = time.monotonic() + self.timeout_s
        while key not in self.replies:
            self.check()
            if time.monotonic() > deadline:
                raise self.timed_out("answer")
            if self.sock.poll(POLL_MS):
                while self.sock.poll(0):
                    header, body = unpack(self.sock.recv_multipart(copy=False))
                    rid = int(header.get("id", 0))
                    if rid in self.sent:
                        del self.sent[rid]
                        self.replies[rid] = (header, body)
            self.poll_events(0)
            self.read_ahead()
        return self.replies.pop(key)

    def read_ahead(self) -> None:
        """Lets the worker's request loop read the step requests that came meanwhile (see look_ahead)."""
        read = self.state.extensions.get("read_ahead")
        if read is not None:
            read()

    def poll_events(self, timeout_ms: int) -> None:
        if not self.monitor.poll(timeout_ms):
            return
        while self.monitor.poll(0):
            event = recv_monitor_message(self.monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.handshaken = True
            elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self.broken = (
                    f"the teacher service at {self.endpoint} refused this client's CURVE key: it is not on the "
                    "service's allow-list (TeacherService.start({ curve: { clientKeys } }) or service.client())"
                )
            elif event in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL):
                self.broken = self.broken or (
                    f"the CURVE handshake with the teacher service at {self.endpoint} failed: check serverKey (the "
                    "service's public key) and that both sides use CURVE"
                )
            elif event == zmq.EVENT_DISCONNECTED and self.broken is None:
                self.broken = (
                    f"the teacher service at {self.endpoint} closed the connection (it stopped or died); start it "
                    "again and resume the run from its last checkpoint (resumeFrom)"
                )

    def check(self) -> None:
        self.poll_events(0)
        if self.broken is not None:
            raise TeacherServiceError(self.broken)

    def timed_out(self, what: str) -> TeacherServiceError:
        why = "" if self.handshaken or not self.curve else " (the CURVE handshake never completed: check serverKey)"
        return TeacherServiceError(
            f"the teacher service at {self.endpoint} did not {what} within {self.timeout_s * 1000:.0f} ms{why}; "
            "is it running and reachable? (teacher service timeoutMs)"
        )

    def close(self) -> None:
        hooks = self.state.extensions.get(LOOK_AHEAD_KEY)
        if hooks is not None and self.look_ahead in hooks:
            hooks.remove(self.look_ahead)
        self.sock.disable_monitor()
        self.monitor.close()
        self.sock.close()
        self.ctx.term()


def topk_request(spec: dict[str, Any], terms: list[dict[str, Any]]) -> dict[str, Any] | None:
    """{k, temperature} the service takes the top-k at (the KD term's temperature), or None without topK."""
    if spec["topK"] is None:
        return None
    kd = next((t for t in terms if t["kind"] in ("kd", "causal_lm_kd")), None)
    if kd is None:
        raise ValueError("teacherService.topK: the plan has no KD term to read top-k teacher targets; leave topK out")
    return {"k": int(spec["topK"]), "temperature": float(kd["temperature"])}


def teacher_half(batch: Any) -> Any:
    if isinstance(batch, dict) and set(batch) == {"teacher", "student"}:
        return batch["teacher"]
    return batch


def to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_cpu(v) for v in value]
    return value


def open_link(state: WorkerState, plan: dict[str, Any]) -> TeacherLink | None:
    """The plan's teacher service link, registered to see queued step requests; None for a plan without one."""
    spec = plan.get("teacherService")
    if spec is None:
        return None
    if plan.get("tasks"):
        raise ValueError(
            "teacherService: a teacher service serves one task's teachers; a multi-task plan needs them in-process"
        )
    link = TeacherLink(state, spec, plan["terms"], plan.get("forwardArgs") or {})
    # on-policy steps replace the batch with the student's samples when they run: nothing can be sent ahead
    if plan.get("onPolicy") is None:
        state.extensions.setdefault(LOOK_AHEAD_KEY, []).append(link.look_ahead)
    return link
