"""One Toxiproxy server's HTTP API, driven through toxiproxy-python without blocking the loop.

toxiproxy-python (the `aichaos[toxiproxy]` extra) is a small blocking client built
on `requests`. Three of its traits shape this module:

- Its calls block, with no timeout. Each runs in a worker thread
  (`anyio.to_thread.run_sync`) under a deadline: the event loop never waits on
  Toxiproxy, and a Toxiproxy that stops answering gives a clear error instead of
  a hang (the abandoned thread finishes, or not, on its own).
- It keeps the server's host and port as class attributes of `APIConsumer`:
  process-wide state. Every call sets them and runs under one lock, so calls to
  two Toxiproxy servers cannot cross. The lock also orders calls: a call that
  was given up on still runs before the next one, which cleanup relies on.
- It passes on Toxiproxy's answer only for 400/404/409 (as exceptions carrying
  the body) and ignores the others: a 500 to "create proxy" (listen address in
  use) or "add toxic" would go unnoticed. A hook on its `validate_response`,
  active only in the threads of this module (a thread-local flag, so other users
  of the library in the process see no change), raises `ToxiproxyAPIError` with
  Toxiproxy's own message for every answer of 400 and above.

`GET /version` goes through httpx instead: the library's `version()` first probes
the port with a socket without a timeout and then returns the body of whatever
answered, so it cannot tell "not running", "not Toxiproxy" and "error" apart.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import httpx

T = TypeVar("T")

INSTALL_HINT = "pip install 'aichaos[toxiproxy]'"


class NetworkError(Exception):
    """Toxiproxy cannot do what the network faults need; the message says what to fix.

    The experiment runner maps it to exit code 2 when `NetworkFaults.check()`
    raises it (nothing was injected yet).
    """


class ToxiproxyAPIError(NetworkError):
    """Toxiproxy answered an error status; `status` and Toxiproxy's own `message`."""

    def __init__(self, status: int, message: str, request: str) -> None:
        self.status = status
        self.message = message
        self.request = request
        super().__init__(f"Toxiproxy answered {request} with {status}: {message}")


class _Skipped(NetworkError):
    """A change given up on before it reached Toxiproxy (cleanup has begun)."""


@dataclass(frozen=True)
class ProxyState:
    """A proxy as Toxiproxy reports it, with the names of its toxics."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Library:
    toxiproxy: ModuleType
    api: ModuleType


_LOCK = threading.Lock()
_in_our_call = threading.local()


def load_library() -> _Library:
    """toxiproxy-python, with the error hook installed; NetworkError if it is missing."""
    try:
        toxiproxy = importlib.import_module("toxiproxy")
        api = importlib.import_module("toxiproxy.api")
    except ImportError as exc:
        raise NetworkError(
            f"network faults drive Toxiproxy through toxiproxy-python, which is not installed"
            f" ({exc}): {INSTALL_HINT}"
        ) from None
    _install_error_hook(api)
    return _Library(toxiproxy, api)


def _install_error_hook(api: ModuleType) -> None:
    original: Callable[[Any], Any] = api.validate_response
    if getattr(original, "_aichaos_hook", False):
        return

    def validate_response(response: Any) -> Any:
        if getattr(_in_our_call, "active", False) and response.status_code >= 400:
            request = response.request
            where = f"{request.method} {urlsplit(request.url).path}" if request else "a request"
            raise ToxiproxyAPIError(response.status_code, _error_text(response), where)
        return original(response)

    validate_response._aichaos_hook = True  # type: ignore[attr-defined]
    setattr(api, "validate_response", validate_response)  # noqa: B010


def _error_text(response: Any) -> str:
    """Toxiproxy's error bodies are `{"error": "...", "status": N}`."""
    text = str(getattr(response, "text", "") or "")
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:300] or "(empty answer)"
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return text.strip()[:300]


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ToxiproxyAPI:
    """The API of one Toxiproxy server (`url` is `http://host:port`)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise NetworkError(f"{url!r}: Toxiproxy's API URL is http://HOST:PORT")
        self.url = url.rstrip("/")
        host = parts.hostname
        self._host = f"[{host}]" if ":" in host else host
        self._port = parts.port or 80
        self.timeout = timeout

    # --- read ------------------------------------------------------------------
    async def version(self) -> str:
        """Toxiproxy's version; NetworkError when it is not reachable or not Toxiproxy."""
        try:
            async with httpx.AsyncClient(timeout=self.timeout, trust_env=False) as client:
                response = await client.get(f"{self.url}/version")
        except httpx.TimeoutException:
            raise NetworkError(
                f"Toxiproxy at {self.url} did not answer GET /version within {self.timeout:g}s"
            ) from None
        except httpx.HTTPError as exc:
            raise NetworkError(
                f"cannot reach Toxiproxy at {self.url} ({_describe(exc)}): is it running?"
                " Start it (e.g. `docker compose up -d toxiproxy`) or point the fault's"
                " `toxiproxy:` (default $TOXIPROXY_URL) at its API"
            ) from None
        if response.status_code != 200:
            raise NetworkError(
                f"{self.url} answered GET /version with {response.status_code}"
                f" ({_error_text(response)}): is this Toxiproxy's API port (8474 by default)?"
            )
        version = self._parse_version(response)
        if version is None:
            raise NetworkError(
                f"{self.url} answered GET /version with {response.text[:80]!r}, not a Toxiproxy"
                " version: is this Toxiproxy's API port (8474 by default)?"
            )
        return version

    @staticmethod
    def _parse_version(response: httpx.Response) -> str | None:
        text = response.text.strip()
        try:
            body = json.loads(text)  # Toxiproxy >= 2.6: {"version": "2.9.0"}
        except ValueError:
            body = text  # older Toxiproxy: the version as plain text
        if isinstance(body, dict):
            body = body.get("version")
        if (
            isinstance(body, str)
            and body
            and len(body) <= 64
            and not any(c.isspace() for c in body)
        ):
            return body
        return None

    async def get_proxy(self, name: str) -> ProxyState | None:
        """The proxy `name` with its toxics, or None when Toxiproxy has no such proxy."""

        def call(lib: _Library) -> ProxyState | None:
            proxy = lib.toxiproxy.Toxiproxy().get_proxy(name)
            if proxy is None:
                return None
            return _state(proxy, tuple(proxy.toxics()))

        return await self._call(f"look up proxy {name!r}", call)

    # --- change ----------------------------------------------------------------
    async def create_proxy(
        self, name: str, upstream: str, listen: str | None, *, stop: Callable[[], bool]
    ) -> ProxyState:
        """Create a proxy (enabled); its `listen` is the address Toxiproxy really bound."""

        def call(lib: _Library) -> ProxyState:
            if stop():
                raise _Skipped("cleanup has begun")
            try:
                proxy = lib.toxiproxy.Toxiproxy().create(
                    upstream=upstream, name=name, listen=listen, enabled=True
                )
            except Exception as exc:
                if type(exc).__name__ == "ProxyExists":  # raised by the library itself
                    raise ToxiproxyAPIError(
                        409, "the proxy appeared while aichaos was creating it", "POST /proxies"
                    ) from None
                raise
            return _state(proxy, ())

        return await self._call(f"create proxy {name!r}", call)

    async def delete_proxy(self, name: str) -> bool:
        """Delete a proxy (and its toxics); False when it was already gone."""

        def call(lib: _Library) -> bool:
            try:
                return bool(_proxy(lib, name).destroy())
            except ToxiproxyAPIError as exc:
                if exc.status == 404:
                    return False
                raise

        return await self._call(f"delete proxy {name!r}", call)

    async def add_toxic(
        self, proxy: str, toxic: dict[str, Any], *, stop: Callable[[], bool]
    ) -> None:
        """Add a toxic: `{name, type, stream, toxicity, attributes}`."""

        def call(lib: _Library) -> None:
            if stop():
                raise _Skipped("cleanup has begun")
            _proxy(lib, proxy).add_toxic(**toxic)

        await self._call(f"add toxic {toxic['name']!r} to proxy {proxy!r}", call)

    async def remove_toxic(self, proxy: str, toxic: str) -> bool:
        """Remove a toxic; False when it was not there."""

        def call(lib: _Library) -> bool:
            try:
                return bool(_proxy(lib, proxy).destroy_toxic(toxic))
            except ToxiproxyAPIError as exc:
                if exc.status == 404:
                    return False
                raise

        return await self._call(f"remove toxic {toxic!r} from proxy {proxy!r}", call)

    # --- plumbing --------------------------------------------------------------
    async def _call(self, what: str, func: Callable[[_Library], T]) -> T:
        lib = load_library()

        def locked() -> T:
            with _LOCK:
                consumer = lib.api.APIConsumer
                consumer.host, consumer.port = self._host, self._port
                _in_our_call.active = True
                try:
                    return func(lib)
                finally:
                    _in_our_call.active = False

        try:
            with anyio.fail_after(self.timeout):
                return await anyio.to_thread.run_sync(locked, abandon_on_cancel=True)
        except TimeoutError:
            raise NetworkError(
                f"Toxiproxy at {self.url} did not answer in {self.timeout:g}s (to {what})"
            ) from None
        except NetworkError:
            raise
        except Exception as exc:
            if type(exc).__module__.startswith("requests"):
                raise NetworkError(
                    f"cannot reach Toxiproxy at {self.url} (to {what}): {_describe(exc)}"
                ) from None
            raise NetworkError(
                f"unexpected answer from Toxiproxy at {self.url} (to {what}): {_describe(exc)}"
            ) from exc


def _proxy(lib: _Library, name: str) -> Any:
    """A library `Proxy` handle: only its name is used to address the API."""
    return lib.toxiproxy.Proxy(name=name, upstream="", enabled=True, listen="")


def _state(proxy: Any, toxics: tuple[str, ...]) -> ProxyState:
    return ProxyState(
        name=str(proxy.name),
        listen=str(proxy.listen),
        upstream=str(proxy.upstream),
        enabled=bool(proxy.enabled),
        toxics=toxics,
    )
