"""A stand-in for Toxiproxy's HTTP API, ONLY for what a real Toxiproxy cannot be made to do.

Everything a real Toxiproxy can show (toxics on real connections, windows, cleanup, found
and created proxies) is tested against the real server the tests start
(test_toxiproxy_integration.py, test_toxiproxy_runs.py, test_gameday_network.py). A real
Toxiproxy cannot be made, on demand, to answer an API call with an error, to answer slowly
or not at all, or to go away in the middle of a phase or of its cleanup; this fake can, and
tests/test_network.py uses it for exactly those cases.

What it is: an ASGI app (served by real uvicorn through `tests/servers.py`) that
answers the parts of Toxiproxy's HTTP API (v2) that aichaos and toxiproxy-python
use, with Toxiproxy's paths, statuses, JSON shapes and error bodies
(`{"error": "...", "status": N}`), keeping proxies and toxics in memory:

    GET  /version                        {"version": "..."} (Toxiproxy >= 2.6 answers JSON)
    GET  /proxies                        {name: proxy}
    POST /proxies                        201 proxy; 409 exists; 400 missing name/upstream
    GET|POST|DELETE /proxies/{name}      read, update (enabled/listen/upstream), delete (204)
    GET|POST /proxies/{name}/toxics      list; add (200 toxic; 409 exists; 400 bad type/stream)
    GET|POST|DELETE /proxies/{name}/toxics/{toxic}
    POST /reset                          204: every proxy enabled, every toxic removed

A proxy is `{name, listen, upstream, enabled, toxics}`; a toxic is `{name, type,
stream, toxicity, attributes}` with the attributes of its type filled in with
Toxiproxy's defaults (0), as Toxiproxy reports them.

What it is not: a proxy. It opens no listening socket for a proxy (a `listen` on
port 0 is answered with a made-up port nothing listens on) and carries no
traffic, so no toxic has any effect on a connection. It does not implement
`POST /populate`, nor validate attribute values as strictly as Toxiproxy does.

Test knobs: `delay` (seconds before every answer; `slow_paths` per `METHOD path`;
`answer_now()` ends the waits, so a test's end need not wait them out),
`fail(method, path, status, message, times, skip)` (answer an error instead), and
`requests` (every request seen).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

ATTRIBUTE_DEFAULTS: dict[str, dict[str, int]] = {
    "noop": {},
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
}

Scope = dict[str, Any]


@dataclass
class _Failure:
    method: str
    path: str
    status: int
    message: str
    times: int | None
    skip: int


class FakeToxiproxy:
    """The ASGI app; its state can be read and set from the test's thread."""

    def __init__(self, version: str = "2.9.0-fake") -> None:
        self.version = version
        self.proxies: dict[str, dict[str, Any]] = {}
        self.delay = 0.0
        self.slow_paths: dict[str, float] = {}
        self.requests: list[tuple[float, str, str]] = []
        self._failures: list[_Failure] = []
        self._ports = itertools.count(26000)
        self._lock = threading.Lock()
        self._answer_now = threading.Event()

    # --- knobs for tests -------------------------------------------------------
    def answer_now(self) -> None:
        """Answer the requests still waiting out a `delay` at once, and the later ones too."""
        self._answer_now.set()

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        message: str,
        times: int | None = 1,
        skip: int = 0,
    ) -> None:
        """Answer `method path` with this error (`times` times, or always if None), after
        letting the first `skip` such requests through."""
        with self._lock:
            self._failures.append(_Failure(method.upper(), path, status, message, times, skip))

    def add_proxy(self, name: str, listen: str, upstream: str, **toxics: dict[str, Any]) -> None:
        """A proxy that exists before the test, with toxics given as name=toxic."""
        with self._lock:
            proxy = self._new_proxy(name, listen, upstream, True)
            for toxic_name, toxic in toxics.items():
                proxy["toxics"].append(self._new_toxic({**toxic, "name": toxic_name}))
            self.proxies[name] = proxy

    def toxic_names(self, proxy: str) -> list[str]:
        with self._lock:
            found = self.proxies.get(proxy)
            return [] if found is None else [t["name"] for t in found["toxics"]]

    def changes(self) -> list[str]:
        """`METHOD path` of every request that changes state."""
        with self._lock:
            return [f"{m} {p}" for _, m, p in self.requests if m in ("POST", "DELETE")]

    # --- ASGI --------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        method, path = scope["method"], scope["path"]
        with self._lock:
            self.requests.append((time.monotonic(), method, path))
            delay = self.slow_paths.get(f"{method} {path}", self.delay)
        deadline = time.monotonic() + delay
        while not self._answer_now.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(min(0.02, deadline - time.monotonic()))
        with self._lock:
            status, payload = self._failure(method, path) or self._handle(method, path, body)
        if payload is None:
            data, content_type = b"", b"text/plain"
        else:
            data, content_type = json.dumps(payload).encode(), b"application/json"
        headers = [(b"content-type", content_type), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    def _failure(self, method: str, path: str) -> tuple[int, Any] | None:
        for failure in self._failures:
            if failure.method == method and failure.path == path:
                if failure.skip > 0:
                    failure.skip -= 1
                    return None
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                return failure.status, _error(failure.status, failure.message)
        return None

    # --- Toxiproxy's API -----------------------------------------------------------
    def _handle(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return 400, _error(400, "bad request body")
        if parts == ["version"] and method == "GET":
            return 200, {"version": self.version}
        if parts == ["reset"] and method == "POST":
            for proxy in self.proxies.values():
                proxy["enabled"] = True
                proxy["toxics"] = []
            return 204, None
        if parts == ["proxies"]:
            if method == "GET":
                return 200, {name: _copy(p) for name, p in self.proxies.items()}
            if method == "POST":
                return self._create(data)
        if len(parts) >= 2 and parts[0] == "proxies":
            proxy = self.proxies.get(parts[1])
            if proxy is None:
                return 404, _error(404, "proxy not found")
            if len(parts) == 2:
                return self._proxy(method, proxy, data)
            if parts[2] == "toxics" and len(parts) == 3:
                if method == "GET":
                    return 200, _copy(proxy["toxics"])
                if method == "POST":
                    return self._add_toxic(proxy, data)
            if parts[2] == "toxics" and len(parts) == 4:
                return self._toxic(method, proxy, parts[3], data)
        return 404, _error(404, "not found")

    def _new_proxy(self, name: str, listen: str, upstream: str, enabled: bool) -> dict[str, Any]:
        host, _, port = listen.rpartition(":")
        if port in ("", "0"):
            listen = f"{host or '[::]'}:{next(self._ports)}"  # nothing listens there
        return {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled,
                "toxics": []}  # fmt: skip

    def _create(self, data: Any) -> tuple[int, Any]:
        if not isinstance(data, dict):
            return 400, _error(400, "bad request body")
        if not data.get("name"):
            return 400, _error(400, "missing required field: name")
        if not data.get("upstream"):
            return 400, _error(400, "missing required field: upstream")
        if data["name"] in self.proxies:
            return 409, _error(409, "proxy already exists")
        proxy = self._new_proxy(
            data["name"], data.get("listen") or ":0", data["upstream"], data.get("enabled", True)
        )
        self.proxies[proxy["name"]] = proxy
        return 201, _copy(proxy)

    def _proxy(self, method: str, proxy: dict[str, Any], data: Any) -> tuple[int, Any]:
        if method == "GET":
            return 200, _copy(proxy)
        if method == "POST":
            for key in ("enabled", "listen", "upstream"):
                if isinstance(data, dict) and key in data:
                    proxy[key] = data[key]
            return 200, _copy(proxy)
        if method == "DELETE":
            del self.proxies[proxy["name"]]
            return 204, None
        return 405, _error(405, "method not allowed")

    def _new_toxic(self, data: dict[str, Any]) -> dict[str, Any]:
        stream = data.get("stream") or "downstream"
        toxicity = data.get("toxicity")
        return {
            "name": data.get("name") or f"{data['type']}_{stream}",
            "type": data["type"],
            "stream": stream,
            "toxicity": 1.0 if toxicity is None else float(toxicity),
            "attributes": {**ATTRIBUTE_DEFAULTS[data["type"]], **(data.get("attributes") or {})},
        }

    def _add_toxic(self, proxy: dict[str, Any], data: Any) -> tuple[int, Any]:
        if not isinstance(data, dict):
            return 400, _error(400, "bad request body")
        if data.get("type") not in ATTRIBUTE_DEFAULTS:
            return 400, _error(400, "invalid toxic type")
        if data.get("stream", "downstream") not in ("upstream", "downstream"):
            return 400, _error(400, "stream was invalid, can be either upstream or downstream")
        toxicity = data.get("toxicity", 1.0)
        if not isinstance(toxicity, (int, float)) or not 0 <= toxicity <= 1:
            return 400, _error(400, "toxicity must be between 0 and 1")
        toxic = self._new_toxic(data)
        if any(t["name"] == toxic["name"] for t in proxy["toxics"]):
            return 409, _error(409, "toxic already exists")
        proxy["toxics"].append(toxic)
        return 200, _copy(toxic)

    def _toxic(self, method: str, proxy: dict[str, Any], name: str, data: Any) -> tuple[int, Any]:
        toxic = next((t for t in proxy["toxics"] if t["name"] == name), None)
        if toxic is None:
            return 404, _error(404, "toxic not found")
        if method == "GET":
            return 200, _copy(toxic)
        if method == "POST":
            if isinstance(data, dict):
                toxic["attributes"].update(data.get("attributes") or {})
                if "toxicity" in data:
                    toxic["toxicity"] = float(data["toxicity"])
            return 200, _copy(toxic)
        if method == "DELETE":
            proxy["toxics"].remove(toxic)
            return 204, None
        return 405, _error(405, "method not allowed")


def _error(status: int, message: str) -> dict[str, Any]:
    return {"error": message, "status": status}


def _copy(value: Any) -> Any:
    result: Any = json.loads(json.dumps(value))
    return result
