"""The admin API of a running proxy, under the reserved prefix `/_aichaos`.

    GET    /_aichaos/faults         active faults with their counters, and whether paused
    POST   /_aichaos/faults         add faults: a mapping or a list of mappings (JSON or YAML)
    DELETE /_aichaos/faults/{id}    remove one fault
    DELETE /_aichaos/faults         remove every fault
    POST   /_aichaos/pause          kill switch: stop injecting (faults stay listed)
    POST   /_aichaos/resume         inject again
    GET    /_aichaos/stats          counters per backend: requests, statuses, faults, latency
    GET    /_aichaos/backends       backend names, providers, upstreams and proxy URLs
    GET    /_aichaos/metrics        Prometheus metrics (text format; docs/observability.md)

Access: without a token, only clients on loopback addresses are served (403
otherwise). With a token, every admin request must carry it, as
`authorization: Bearer TOKEN` or `x-aichaos-token: TOKEN` (401 otherwise).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Any

from aichaos.faults.spec import FaultSpecError, build_fault, describe_fault, parse_yaml
from aichaos.intercept.session import Session
from aichaos.proxy.stats import ProxyStats
from aichaos.telemetry.metrics import Metrics
from aichaos.wire.asgi import Receive, Scope, Send

PREFIX = "/_aichaos"
ENDPOINTS = [
    f"GET {PREFIX}/faults",
    f"POST {PREFIX}/faults",
    f"DELETE {PREFIX}/faults/{{id}}",
    f"DELETE {PREFIX}/faults",
    f"POST {PREFIX}/pause",
    f"POST {PREFIX}/resume",
    f"GET {PREFIX}/stats",
    f"GET {PREFIX}/backends",
    f"GET {PREFIX}/metrics",
]
_MAX_BODY = 1024 * 1024


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or `localhost`) only reaches this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def _json_reply(send: Send, status: int, payload: Any) -> None:
    body = json.dumps(payload, indent=1).encode() + b"\n"
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message}}


class AdminAPI:
    """Serves the admin endpoints for one session (ASGI, called by the proxy app)."""

    def __init__(
        self,
        session: Session,
        stats: ProxyStats,
        *,
        token: str | None = None,
        base_url: str = "",
    ) -> None:
        self.session, self.stats, self.token = session, stats, token
        self.base_url = base_url  # filled in once the server knows its port
        self.metrics = Metrics(in_flight=stats.inflight_by_backend)
        self.metrics.attach(session.recorder)

    def _authorized(self, scope: Scope) -> int | None:
        """None when allowed, else the status to refuse with."""
        if self.token is None:
            client = scope.get("client")
            return None if client and is_loopback(str(client[0])) else 403
        given = b""
        for name, value in scope.get("headers", []):
            if name == b"x-aichaos-token":
                given = bytes(value)
            elif name == b"authorization" and bytes(value).lower().startswith(b"bearer "):
                given = bytes(value)[7:].strip()
        return None if hmac.compare_digest(given, self.token.encode()) else 401

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > _MAX_BODY:
                await _json_reply(send, 413, _error("request body too large"))
                return
            if not message.get("more_body", False):
                break
        refused = self._authorized(scope)
        if refused == 401:
            await _json_reply(send, 401, _error("admin token required (Bearer TOKEN)"))
            return
        if refused is not None:
            await _json_reply(send, 403, _error("admin API is served on loopback only"))
            return
        method = str(scope["method"]).upper()
        path = str(scope["path"])[len(PREFIX) :].rstrip("/") or "/"
        if path == "/metrics" and method == "GET":
            await self._metrics(send)
            return
        status, payload = self.handle(method, path, bytes(body))
        await _json_reply(send, status, payload)

    async def _metrics(self, send: Send) -> None:
        body, content_type = self.metrics.exposition()
        headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        """One admin request (already authorized): `path` is relative to the prefix."""
        engine = self.session.engine
        if path == "/faults":
            if method == "GET":
                return 200, self.faults()
            if method == "POST":
                return self._add(body)
            if method == "DELETE":
                count = len(engine.faults)
                engine.clear()
                return 200, {"cleared": count}
        elif path.startswith("/faults/") and method == "DELETE":
            fault_id = path.split("/", 2)[2]
            if engine.remove(fault_id):
                return 200, {"removed": fault_id}
            return 404, _error(f"no fault {fault_id!r}")
        elif path in ("/pause", "/resume") and method == "POST":
            engine.paused = path == "/pause"
            return 200, {"paused": engine.paused}
        elif path == "/stats" and method == "GET":
            return 200, {**self.stats.snapshot(), "paused": engine.paused}
        elif path == "/backends" and method == "GET":
            return 200, self.backends()
        elif path == "/" and method == "GET":
            return 200, {"endpoints": ENDPOINTS}
        return 404, _error(f"no admin endpoint {method} {PREFIX}{path}")

    def faults(self) -> dict[str, Any]:
        engine = self.session.engine
        specs = {armed.id: describe_fault(armed.fault) for armed in engine.faults}
        faults = [{**entry, "spec": specs.get(str(entry["id"]))} for entry in engine.stats()]
        return {"paused": engine.paused, "faults": faults}

    def backends(self) -> dict[str, Any]:
        return {
            name: {
                "provider": spec.provider,
                "upstream": spec.upstream,
                "url": f"{self.base_url}/{name}" if self.base_url else f"/{name}",
            }
            for name, spec in self.session.backends.items()
        }

    def _add(self, body: bytes) -> tuple[int, Any]:
        try:
            items = parse_yaml(body.decode("utf-8", "replace"))
            faults = [build_fault(item, backends=self.session.backends) for item in items]
        except FaultSpecError as exc:
            return 400, _error(str(exc))
        ids = [self.session.engine.add(fault) for fault in faults]
        return 201, {"added": ids}


__all__ = ["PREFIX", "AdminAPI", "is_loopback"]
