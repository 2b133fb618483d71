"""The `network` fault kind: a Toxiproxy toxic on the TCP connections to a backend.

Unlike every other kind it never acts on a single request: Toxiproxy acts on
connections, outside aichaos. The fault only describes the toxic; the
controller in `aichaos.network` adds it to the Toxiproxy proxy of the fault's
backend when the fault's window opens and removes it when the window closes
(and always at the end of the inject phase).
"""

from __future__ import annotations

import os
import random
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aichaos.faults.base import Fault
from aichaos.faults.plan import Plan
from aichaos.units import Duration, format_duration

DEFAULT_TOXIPROXY_URL = "http://127.0.0.1:8474"

ToxicType = Literal[
    "latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"
]

# Each toxic's attributes, as the fault's parameters name them (Toxiproxy's own names).
TOXIC_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "latency": ("latency", "jitter"),
    "bandwidth": ("rate",),
    "slow_close": ("delay",),
    "timeout": ("timeout",),
    "reset_peer": ("timeout",),
    "slicer": ("average_size", "size_variation", "delay"),
    "limit_data": ("bytes",),
}

# Where Toxiproxy's default (0) would make the toxic do nothing, or something no one means
# (limit_data of 0 bytes, slices of 0 bytes), the attribute must be given. Any one of the
# names of a tuple will do.
_REQUIRED: dict[str, tuple[str, ...]] = {
    "latency": ("latency", "jitter"),
    "bandwidth": ("rate",),
    "slow_close": ("delay",),
    "slicer": ("average_size",),
    "limit_data": ("bytes",),
}

_NOT_PER_REQUEST = ("probability", "first", "every", "ramp", "match")
_ALL_ATTRIBUTES = sorted({name for names in TOXIC_ATTRIBUTES.values() for name in names})


def default_toxiproxy_url() -> str:
    """`$TOXIPROXY_URL`, else Toxiproxy's default API address."""
    return os.environ.get("TOXIPROXY_URL") or DEFAULT_TOXIPROXY_URL


def normalize_toxiproxy_url(value: str) -> str:
    """`http://host:port` from `host:port` or `http://host:port/`; only plain HTTP to a host.

    toxiproxy-python builds its URLs as `http://HOST:PORT` + path, so an API behind
    https or under a path prefix cannot be reached through it.
    """
    text = value.strip()
    if "://" not in text:
        text = f"http://{text}"
    parts = urlsplit(text)
    if parts.scheme != "http":
        raise ValueError(
            f"toxiproxy: {value!r}: Toxiproxy's API is plain http (toxiproxy-python cannot"
            " use https)"
        )
    if not parts.hostname:
        raise ValueError(f"toxiproxy: {value!r}: expected a URL like http://127.0.0.1:8474")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise ValueError(
            f"toxiproxy: {value!r}: give only http://HOST:PORT (toxiproxy-python cannot reach"
            " an API under a path)"
        )
    try:
        port = parts.port or 80
    except ValueError:
        raise ValueError(f"toxiproxy: {value!r}: the port is not a number") from None
    host = parts.hostname
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class ToxiproxyProxy(BaseModel):
    """The Toxiproxy proxy between the app and the backend: reused if present, else created."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(
        None, min_length=1, description="Proxy name (default: aichaos_<backend>)."
    )
    listen: str | None = Field(
        None,
        description="Where the proxy listens, host:port (created proxies default to"
        " 127.0.0.1 and a free port). The app must connect here.",
    )
    upstream: str | None = Field(
        None,
        description="host:port the proxy forwards to; needed to create the proxy, checked"
        " against a proxy that exists.",
    )

    @field_validator("listen", "upstream")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return value
        text = value.strip()
        if "://" in text:
            raise ValueError(
                f"{value!r}: Toxiproxy proxies TCP: write host:port, not a URL (e.g."
                " api.openai.com:443)"
            )
        _host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"{value!r}: expected host:port, e.g. 127.0.0.1:18080")
        return text


class Network(Fault):
    """A Toxiproxy toxic on the connections between the app and a backend.

    aichaos adds the toxic to the backend's Toxiproxy proxy when the fault's window
    opens (relative to the inject phase) and removes it when the window closes, and
    always at the end of the inject phase, also after Ctrl-C, a crash or `stop_when`.
    Proxies aichaos created are deleted; proxies it found are left as they were.
    Toxiproxy decides per connection, not per request: use `toxicity` (the share of
    connections affected) instead of `probability`, `first`, `every`, `ramp` or `match`.
    Only `backend` and `window` of the triggers apply.
    """

    summary: ClassVar[str] = (
        "a Toxiproxy toxic (`toxic`: latency, bandwidth, slow_close, timeout, reset_peer,"
        " slicer, limit_data)"
    )
    kind: Literal["network"] = "network"
    toxic: ToxicType = Field(
        description="latency, bandwidth, slow_close, timeout, reset_peer, slicer or limit_data."
    )
    latency: Duration | None = Field(
        None, description="latency: delay added to the data (Toxiproxy default 0)."
    )
    jitter: Duration | None = Field(
        None, description="latency: random +/- added to the latency (Toxiproxy default 0)."
    )
    rate: int | None = Field(
        None, ge=0, description="bandwidth: KB per second the data may flow at."
    )
    delay: Duration | None = Field(
        None,
        description="slow_close: delay before the connection is closed; slicer: delay"
        " between slices (Toxiproxy default 0).",
    )
    timeout: Duration | None = Field(
        None,
        description="timeout: close the connection after this long, 0 = never (data is held"
        " until the toxic goes); reset_peer: reset after this long, 0 = at once. Default 0.",
    )
    average_size: int | None = Field(None, ge=1, description="slicer: average slice size, bytes.")
    size_variation: int | None = Field(
        None, ge=0, description="slicer: +/- bytes around average_size (Toxiproxy default 0)."
    )
    bytes: int | None = Field(
        None, ge=0, description="limit_data: close the connection after this many bytes."
    )
    stream: Literal["upstream", "downstream"] = Field(
        "downstream",
        description="downstream: data from the backend to the app; upstream: app to backend.",
    )
    toxicity: float = Field(
        1.0, ge=0.0, le=1.0, description="Share of connections the toxic affects (per connection)."
    )
    toxiproxy: str = Field(
        default_factory=default_toxiproxy_url,
        validate_default=True,
        description=f"Toxiproxy's API URL (default $TOXIPROXY_URL, else {DEFAULT_TOXIPROXY_URL}).",
    )
    proxy: ToxiproxyProxy | None = Field(
        None,
        description="{name, listen, upstream} of the Toxiproxy proxy for this backend"
        " (default: {name: aichaos_<backend>}, which must then exist).",
    )

    @field_validator("toxiproxy")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return normalize_toxiproxy_url(value)

    @model_validator(mode="after")
    def _consistent(self) -> Network:
        per_request = [name for name in _NOT_PER_REQUEST if name in self.model_fields_set]
        if per_request:
            raise ValueError(
                f"{', '.join(per_request)}: not for a network fault: toxicity is drawn per"
                " connection by Toxiproxy; use toxicity (and window for when)"
            )
        allowed = TOXIC_ATTRIBUTES[self.toxic]
        stray = [
            name
            for name in _ALL_ATTRIBUTES
            if name not in allowed and getattr(self, name) is not None
        ]
        if stray:
            raise ValueError(
                f"{', '.join(stray)}: not an attribute of the {self.toxic} toxic; it takes"
                f" {', '.join(allowed)}"
            )
        needed = _REQUIRED.get(self.toxic, ())
        if needed and all(getattr(self, name) is None for name in needed):
            raise ValueError(f"the {self.toxic} toxic needs {' or '.join(needed)}")
        if self.proxy_spec.name is None and not self._single_backend():
            raise ValueError(
                "a network fault acts on one Toxiproxy proxy: give `backend: NAME` or"
                " `proxy: {name: ...}`"
            )
        return self

    def _single_backend(self) -> str | None:
        backend = self.backend
        if isinstance(backend, list):
            backend = backend[0] if len(backend) == 1 else "*"
        return None if backend == "*" else backend

    @property
    def proxy_spec(self) -> ToxiproxyProxy:
        return self.proxy if self.proxy is not None else ToxiproxyProxy()

    @property
    def proxy_name(self) -> str:
        """The Toxiproxy proxy this fault's toxic goes on."""
        if self.proxy_spec.name is not None:
            return self.proxy_spec.name
        return f"aichaos_{self._single_backend()}"

    def attributes(self) -> dict[str, int]:
        """The toxic's attributes in Toxiproxy's units (ms, KB/s, bytes; slicer delay in µs)."""

        def ms(value: float | None) -> int:
            return round((value or 0.0) * 1000)

        if self.toxic == "latency":
            return {"latency": ms(self.latency), "jitter": ms(self.jitter)}
        if self.toxic == "bandwidth":
            return {"rate": self.rate or 0}
        if self.toxic == "slow_close":
            return {"delay": ms(self.delay)}
        if self.toxic in ("timeout", "reset_peer"):
            return {"timeout": ms(self.timeout)}
        if self.toxic == "slicer":
            return {
                "average_size": self.average_size or 0,
                "size_variation": self.size_variation or 0,
                "delay": round((self.delay or 0.0) * 1_000_000),
            }
        return {"bytes": self.bytes or 0}

    def toxic_payload(self, name: str) -> dict[str, Any]:
        """The body of `POST /proxies/{proxy}/toxics` for this fault."""
        return {
            "name": name,
            "type": self.toxic,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": self.attributes(),
        }

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        return False  # Toxiproxy acts on connections; no single request is changed here

    def label(self) -> str:
        given = {
            name: getattr(self, name)
            for name in TOXIC_ATTRIBUTES[self.toxic]
            if getattr(self, name) is not None
        }
        shown = [
            ("" if name == self.toxic else f"{name}=")
            + (format_duration(value) if isinstance(value, float) else str(value))
            for name, value in given.items()
        ]
        return f"network({' '.join([self.toxic, *shown, self.stream])})"
