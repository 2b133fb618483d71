"""Declared backends: their settings, names, defaults, and which host each one claims."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aichaos.providers import get_provider, provider_names

_DEFAULT_PORTS = {"http": 80, "https": 443}

DEFAULT_BACKENDS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "azure": "azure",
}
"""Backend name -> provider when none are declared: each provider's official hosts (Azure's
and Vertex AI's for any resource, project and region), on the mock."""

BACKEND_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def check_backend_name(name: object) -> str:
    """`name` if it can name a backend; raises ValueError saying the rule.

    A name becomes the proxy's first path segment (`/_aichaos` is reserved) and
    part of an environment variable name (`AICHAOS_BACKEND_<NAME>_URL`).
    """
    if not isinstance(name, str) or not BACKEND_NAME.match(name):
        raise ValueError(
            f"backend name {name!r}: start with a letter and use only letters, digits, '-'"
            " and '_' (it becomes a URL path and an environment variable name)"
        )
    return name


class BackendSpec(BaseModel):
    """A named model API the app talks to.

    `upstream` is `mock` (the embedded mock, the default), `replay:DIR` (a cassette's
    recorded answers, see docs/record-replay.md) or a base URL. The backend claims `host`
    in-process; by default the upstream URL's host, else the provider's official hosts (all
    of them: `Provider.claimed_hosts`), so an app's unmodified SDK client is caught. `host`
    may hold a `*` standing for part of one DNS label: `*.openai.azure.com` claims every
    Azure OpenAI resource. `record: DIR` writes every exchange with a real upstream to a
    cassette there.
    """

    # errors never repeat the value: an upstream URL may carry a password
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    provider: str = Field(description="Wire format: openai, azure, anthropic or gemini.")
    upstream: str = Field("mock", description="`mock` or a base URL such as https://api.openai.com")
    host: str | None = Field(
        None,
        description="Host (host:port) claimed in-process; `*` matches part of one label,"
        " as in `*.openai.azure.com`.",
    )
    record: str | None = Field(
        None, description="Cassette directory to record every exchange with a real upstream to."
    )
    on_miss: Literal["error", "mock"] = Field(
        "error",
        description="With `upstream: replay:DIR`, a request the cassette does not hold gets"
        " the provider's 404 naming the closest recorded request (`error`), or the mock's answer.",
    )
    speed: float = Field(
        1.0, gt=0, description="With `upstream: replay:DIR`, how much faster than recorded."
    )
    replay_ignore: list[str] | None = Field(
        None,
        description="With `upstream: replay:DIR`, the top-level body fields not compared when"
        " matching (default: stream_options, user, metadata, store, service_tier and ids/times).",
    )

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value not in provider_names():
            raise ValueError(
                f"unknown provider {value!r}; choose one of {', '.join(provider_names())}"
            )
        return value

    @field_validator("upstream")
    @classmethod
    def _mock_or_url(cls, value: str) -> str:
        if value == "mock":
            return value
        if value.startswith("replay:"):
            if not value[len("replay:") :].strip():
                raise ValueError("replay needs a cassette directory: `replay:path/to/cassette`")
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "upstream must be `mock`, `replay:DIR` or an http(s) URL like"
                " https://api.openai.com"
            )
        if "@" in parts.netloc:
            # Refused rather than sent: providers take keys in headers, and a password in a
            # URL ends up in banners, errors and logs. (The value is not repeated here.)
            raise ValueError(
                "upstream URL carries credentials (user:password@host): remove them; give the"
                " key to the app, whose SDK sends it in a header that aichaos forwards unchanged"
            )
        return value.rstrip("/")

    @property
    def is_mock(self) -> bool:
        return self.upstream == "mock"

    @property
    def replay_dir(self) -> Path | None:
        """The cassette directory of a `replay:DIR` upstream."""
        if not self.upstream.startswith("replay:"):
            return None
        return Path(self.upstream[len("replay:") :].strip())

    @property
    def is_remote(self) -> bool:
        """Whether answers come from a real upstream over the network."""
        return not self.is_mock and self.replay_dir is None

    def with_paths_from(self, base: Path) -> BackendSpec:
        """This spec with its relative cassette directories resolved against `base`."""
        update: dict[str, str] = {}
        replay = self.replay_dir
        if replay is not None and not replay.is_absolute():
            update["upstream"] = f"replay:{base / replay}"
        if self.record is not None and not Path(self.record).is_absolute():
            update["record"] = str(base / self.record)
        return self.model_copy(update=update) if update else self

    @property
    def public_upstream(self) -> str:
        """The upstream fit for records and reports: no credentials, query or fragment."""
        return _public_url(self.upstream) if self.is_remote else self.upstream

    def claimed_hosts(self) -> tuple[str, ...]:
        """Hosts (`host` or `host:port`, maybe with a `*`) this backend claims in-process."""
        if self.host:
            return (self.host.lower(),)
        if self.is_remote:
            return (host_key(self.upstream),)
        return get_provider(self.provider).claimed_hosts

    def claimed_host(self) -> str:
        """The claimed hosts, for people to read."""
        return ", ".join(self.claimed_hosts())

    @property
    def reaches_claimed_host(self) -> bool:
        """Whether aichaos itself connects to a host this backend claims (its real upstream)."""
        return self.is_remote and host_key(self.upstream) in self.claimed_hosts()


def host_key(url: str) -> str:
    """`host` or `host:port` (default ports omitted) of a URL, lower-case."""
    parts = urlsplit(url if "//" in url else f"//{url}")
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is None or port == _DEFAULT_PORTS.get(parts.scheme or "https"):
        return host
    return f"{host}:{port}"


def default_backends() -> dict[str, BackendSpec]:
    """`DEFAULT_BACKENDS` as specs (a fresh dict each time: callers add to it)."""
    return parse_backends(dict(DEFAULT_BACKENDS))


def parse_backends(data: dict[str, object]) -> dict[str, BackendSpec]:
    """Backends from a mapping of name to spec, a spec dict, or just a provider name.

    Raises ValueError for a name `check_backend_name` refuses, or pydantic's
    ValidationError for a bad spec.
    """
    specs: dict[str, BackendSpec] = {}
    for name, value in data.items():
        check_backend_name(name)
        if isinstance(value, BackendSpec):
            specs[name] = value
        elif isinstance(value, str):
            specs[name] = BackendSpec(provider=value)
        else:
            specs[name] = BackendSpec.model_validate(value)
    return specs


def _wildcard(pattern: str) -> re.Pattern[str]:
    """`*` stands for one or more characters of one DNS label."""
    return re.compile("[^.:]+".join(re.escape(part) for part in pattern.split("*")) + r"\Z")


class Router:
    """Finds the backend that claims a request's host: an exact claim first, then wildcards."""

    def __init__(self, backends: dict[str, BackendSpec]) -> None:
        self.backends = backends
        self._by_host: dict[str, str] = {}
        self._wildcards: list[tuple[re.Pattern[str], str]] = []
        for name, spec in backends.items():
            for host in spec.claimed_hosts():
                if host in self._by_host:
                    other = self._by_host[host]
                    raise ValueError(
                        f"backends {other!r} and {name!r} both claim host {host!r};"
                        " give one of them its own `host:`"
                    )
                self._by_host[host] = name
                if "*" in host:
                    self._wildcards.append((_wildcard(host), name))

    def match(self, host: str, port: int | None, scheme: str) -> str | None:
        """The backend claiming `host` on `port`, or None."""
        host = host.lower()
        if port is not None and port != _DEFAULT_PORTS.get(scheme):
            host = f"{host}:{port}"
        name = self._by_host.get(host)
        if name is None and self._wildcards:
            for pattern, backend in self._wildcards:
                if pattern.match(host):
                    return backend
        return name


@functools.lru_cache(maxsize=64)
def _public_url(url: str) -> str:
    """`url` without credentials, query or fragment (once per URL: read on every request)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")).rstrip("/")
