"""The admin API of a running proxy, under the reserved prefix `/_aichaos`.

    GET    /_aichaos/faults         faults with their counters and `state` (pending, active or
                                    expired: windows count from when a fault was added), and
                                    whether paused
    POST   /_aichaos/faults         add faults: a mapping or a list of mappings (JSON or YAML)
    DELETE /_aichaos/faults/{id}    remove one fault
    DELETE /_aichaos/faults         remove every fault
    POST   /_aichaos/pause          kill switch: stop injecting (faults stay listed)
    POST   /_aichaos/resume         inject again
    GET    /_aichaos/stats          counters per backend: requests, statuses, faults, latency
    GET    /_aichaos/backends       backend names, providers, upstreams and proxy URLs
    GET    /_aichaos/metrics        Prometheus metrics (text format; docs/observability.md)
    GET    /_aichaos/attempts?after=SEQ   finished upstream attempts, by cursor (proxy/feed.py)
    GET    /_aichaos/events?after=SEQ     fault changes with wall-clock times, by cursor

Access: without a token, only clients on loopback addresses are served, and only
under a loopback `Host` (403 otherwise: a page whose DNS name was rebound to
127.0.0.1 is refused). With a token, every admin request must carry it, as
`authorization: Bearer TOKEN` or `x-aichaos-token: TOKEN` (401 otherwise); an
empty token is refused when the API is built.

Cross-site requests: a web page the operator has open can send simple requests
(a POST of `text/plain`) to any address without asking first. So every
state-changing request (anything but GET/HEAD/OPTIONS) must be one a browser only
sends after a CORS preflight, which this API never grants: a JSON or YAML
`content-type`, or a token header. A request whose `Origin` is not the proxy's own
is refused (403).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aichaos.faults.spec import FaultSpecError, build_fault, describe_fault, parse_yaml
from aichaos.intercept.session import Session
from aichaos.proxy.feed import MAX_READ, ProxyFeeds
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
    f"GET {PREFIX}/attempts?after=SEQ",
    f"GET {PREFIX}/events?after=SEQ",
]
_MAX_BODY = 1024 * 1024
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Media types a browser never sends cross-site without a preflight (not CORS-safelisted).
_STATE_CHANGE_TYPES = frozenset(
    {"application/json", "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}
)


class AdminTokenError(ValueError):
    """An admin token that cannot protect anything (empty, or not printable ASCII)."""


def check_admin_token(token: str | None) -> None:
    """Refuse a token that is empty or could not travel in an HTTP header."""
    if token is None:
        return
    if not token.strip():
        raise AdminTokenError(
            "the admin token is empty: give a real one, or none to keep the admin API on loopback"
        )
    if not all(33 <= ord(char) <= 126 for char in token):
        raise AdminTokenError("the admin token must be printable ASCII without spaces")


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or `localhost`) only reaches this machine."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
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


def _hostname(host: str) -> str:
    """`127.0.0.1:8800` -> `127.0.0.1`, `[::1]:8800` -> `::1`."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _same_origin(origin: bytes, host: bytes | None) -> bool:
    """Whether `Origin` names the proxy itself (a page it served), as the `Host` says."""
    try:
        parts = urlsplit(origin.decode("latin-1"))
    except ValueError:
        return False
    return (
        host is not None
        and parts.scheme in ("http", "https")
        and parts.netloc == host.decode("latin-1")
    )


def _media_type(scope: Scope) -> str:
    """The request's media type (`application/json`), lower-case, without parameters."""
    for name, value in scope.get("headers", []):
        if bytes(name).lower() == b"content-type":
            return bytes(value).split(b";")[0].strip().lower().decode("latin-1")
    return ""


def _language(scope: Scope) -> str:
    """What an admin body is written in, for its errors: JSON when sent as JSON."""
    media = _media_type(scope)
    return "JSON" if media == "application/json" or media.endswith("+json") else "YAML"


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
        check_admin_token(token)
        self.session, self.stats, self.token = session, stats, token
        self.base_url = base_url  # filled in once the server knows its port
        self.metrics = Metrics(in_flight=stats.inflight_by_backend, run=False)
        self.metrics.attach(session.recorder)
        self.feeds = ProxyFeeds()
        session.request_hooks.append(self.feeds.request_hook)
        session.recorder.listeners.append(self.feeds.attempt_finished)

    def _refusal(self, scope: Scope, method: str) -> tuple[int, str] | None:
        """None when the request may be served, else the status and reason to refuse with."""
        headers: dict[bytes, bytes] = {}
        for name, value in scope.get("headers", []):
            headers[bytes(name).lower()] = bytes(value)
        if self.token is None:
            client = scope.get("client")
            if not (client and is_loopback(str(client[0]))):
                return 403, "admin API is served on loopback only"
            # no Host at all is refused too: HTTP/1.1 requires one (RFC 9112, 3.2), and
            # a request without it cannot show that it was meant for this loopback address
            host = headers.get(b"host")
            if host is None or not is_loopback(_hostname(host.decode("latin-1"))):
                return 403, "admin API without a token answers only a loopback Host"
        else:
            given = headers.get(b"x-aichaos-token", b"")
            auth = headers.get(b"authorization", b"")
            if not given and auth.lower().startswith(b"bearer "):
                given = auth[7:].strip()
            if not given:
                return 401, "admin token required (Bearer TOKEN)"
            if not hmac.compare_digest(given, self.token.encode()):
                return 401, "admin token does not match the proxy's"
        if method in _SAFE_METHODS:
            return None
        origin = headers.get(b"origin")
        if origin is not None and not _same_origin(origin, headers.get(b"host")):
            return 403, "admin requests from another origin (a web page) are refused"
        media = _media_type(scope)
        tokened = b"x-aichaos-token" in headers or b"authorization" in headers
        if media not in _STATE_CHANGE_TYPES and not tokened:
            return 415, (
                "send admin changes as JSON or YAML (content-type: application/json or"
                " application/yaml), so that no web page can send them"
            )
        return None

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
        method = str(scope["method"]).upper()
        refused = self._refusal(scope, method)
        if refused is not None:
            await _json_reply(send, refused[0], _error(refused[1]))
            return
        path = str(scope["path"])[len(PREFIX) :]
        if not path.startswith("/faults/"):  # an id is taken as sent: `/faults/` never clears
            path = path.rstrip("/") or "/"
        if path == "/metrics" and method == "GET":
            await self._metrics(send)
            return
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        status, payload = self.handle(method, path, bytes(body), query, _language(scope))
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

    def handle(
        self, method: str, path: str, body: bytes, query: str = "", language: str = "YAML"
    ) -> tuple[int, Any]:
        """One admin request (already authorized): `path` is relative to the prefix;
        `language`: what the body is written in (JSON or YAML), as errors name it."""
        engine = self.session.engine
        if path == "/faults":
            if method == "GET":
                return 200, self.faults()
            if method == "POST":
                return self._add(body, language)
            if method == "DELETE":
                held = [(armed.id, armed.tag) for armed in engine.faults]
                engine.clear()
                if held:
                    self.feeds.cleared(held)
                return 200, {"cleared": len(held)}
        elif path.startswith("/faults/") and method == "DELETE":
            fault_id = path.split("/", 2)[2]
            if not fault_id:
                return 400, _error("give the id of the fault to remove: DELETE /_aichaos/faults/ID")
            label = next((a.tag for a in engine.faults if a.id == fault_id), fault_id)
            if engine.remove(fault_id):
                self.feeds.fault_removed(fault_id, label)
                return 200, {"removed": fault_id}
            return 404, _error(f"no fault {fault_id!r}")
        elif path in ("/pause", "/resume") and method == "POST":
            paused = path == "/pause"
            if engine.paused != paused:
                self.feeds.paused(paused)
            engine.paused = paused
            return 200, {"paused": engine.paused}
        elif path in ("/attempts", "/events") and method == "GET":
            return self._feed(path, query)
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
                "upstream": spec.public_upstream,
                "url": f"{self.base_url}/{name}" if self.base_url else f"/{name}",
            }
            for name, spec in self.session.backends.items()
        }

    def _add(self, body: bytes, language: str) -> tuple[int, Any]:
        try:
            items = parse_yaml(body.decode("utf-8", "replace"), language)
            faults = [build_fault(item, backends=self.session.backends) for item in items]
        except FaultSpecError as exc:
            return 400, _error(str(exc))
        except RecursionError:  # nesting beyond what validation walks
            return 400, _error("the fault is nested too deeply")
        ids = [self.session.engine.add(fault) for fault in faults]
        tags = {armed.id: armed.tag for armed in self.session.engine.faults}
        for fault_id, fault in zip(ids, faults, strict=True):
            self.feeds.fault_added(fault_id, tags.get(fault_id, fault_id), fault)
        return 201, {"added": ids}

    def _feed(self, path: str, query: str) -> tuple[int, Any]:
        """`GET /attempts` or `/events`: the records after the cursor `after` (proxy/feed.py)."""
        params = parse_qs(query)
        try:
            after = int(params.get("after", ["0"])[-1])
            limit = int(params.get("limit", [str(MAX_READ)])[-1])
        except ValueError:
            return 400, _error("after and limit are whole numbers: ?after=SEQ&limit=N")
        feeds = self.feeds
        if path == "/events":
            return 200, feeds.read(feeds.events, after, limit)
        return 200, {**feeds.read(feeds.attempts, after, limit), "in_flight": self.stats.inflight}


__all__ = ["PREFIX", "AdminAPI", "AdminTokenError", "check_admin_token", "is_loopback"]
