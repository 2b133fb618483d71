"""What the proxy serves (`ProxySettings`), and backends written on its command line.

The command (`aichaos proxy`) builds the settings: from an experiment file
through the experiment loader, then `--upstream` entries.

`--upstream NAME=URL` names a backend and its upstream. The provider (wire
format) is written before the URL, `NAME=PROVIDER@URL`, or inferred from the
name: a name containing `azure`, `openai`/`gpt`, `anthropic`/`claude` or
`gemini`/`google` gets that provider. The URL may be `mock` (the embedded mock).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from aichaos.faults.base import Fault
from aichaos.intercept.backends import BackendSpec, check_backend_name
from aichaos.mock.engine import MockConfig
from aichaos.providers import infer_provider, provider_names
from aichaos.secret_shapes import scrub


class ProxyConfigError(ValueError):
    """Invalid proxy settings; the message says what to fix."""


@dataclass
class ProxySettings:
    """What the proxy serves: backends, the faults active from the start, mock and seed."""

    backends: dict[str, BackendSpec]
    faults: list[Fault] = field(default_factory=list)
    mock: MockConfig = field(default_factory=MockConfig)
    seed: int = 0


def parse_upstream(text: str) -> tuple[str, BackendSpec]:
    """`NAME=URL`, `NAME=PROVIDER@URL`, `NAME=mock` or `NAME=PROVIDER@mock`."""
    shown = scrub(text)  # errors never repeat a password written in the URL
    name, sep, target = text.partition("=")
    name, target = name.strip(), target.strip()
    if not sep or not name or not target:
        raise ProxyConfigError(
            f"--upstream {shown!r}: expected NAME=URL, e.g. openai=https://api.openai.com"
        )
    try:
        check_backend_name(name)
    except ValueError as exc:
        raise ProxyConfigError(f"--upstream {shown!r}: {exc}") from None
    provider: str | None = None
    head, at, tail = target.partition("@")
    if at and "://" not in head:
        provider, target = head.strip(), tail.strip()
    else:
        provider = infer_provider(name)
    if provider is None:
        raise ProxyConfigError(
            f"--upstream {shown!r}: cannot tell the wire format of backend {name!r};"
            f" write {name}=PROVIDER@{scrub(target)} with PROVIDER one of"
            f" {', '.join(provider_names())}"
        )
    try:
        return name, BackendSpec(provider=provider, upstream=target)
    except ValidationError as exc:
        problems = "; ".join(
            str(err["msg"]).removeprefix("Value error, ") for err in exc.errors(include_url=False)
        )
        raise ProxyConfigError(f"--upstream {shown!r}: {problems}") from None


__all__ = ["ProxyConfigError", "ProxySettings", "infer_provider", "parse_upstream"]
