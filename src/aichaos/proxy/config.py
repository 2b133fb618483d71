"""The proxy's backends and faults from the command line: `--upstream` and `--experiment`.

`--upstream NAME=URL` names a backend and its upstream. The provider (wire
format) is written before the URL, `NAME=PROVIDER@URL`, or inferred from the
name: a name containing `azure`, `openai`/`gpt`, `anthropic`/`claude` or
`gemini`/`google` gets that provider. The URL may be `mock` (the embedded mock).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from aichaos.faults.base import Fault
from aichaos.intercept.backends import BackendSpec
from aichaos.mock.engine import MockConfig
from aichaos.providers import provider_names
from aichaos.proxy.faultspec import FaultSpecError, build_fault

DEFAULT_BACKENDS = {"openai": "openai", "anthropic": "anthropic", "gemini": "gemini"}
BACKEND_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")  # a path segment; `_aichaos` is reserved
_INFER = (
    ("azure", "azure"),
    ("openai", "openai"),
    ("gpt", "openai"),
    ("anthropic", "anthropic"),
    ("claude", "anthropic"),
    ("gemini", "gemini"),
    ("google", "gemini"),
)


class ProxyConfigError(ValueError):
    """Invalid proxy settings; the message says what to fix."""


@dataclass
class ProxySettings:
    """What the proxy serves: backends, the faults active from the start, mock and seed."""

    backends: dict[str, BackendSpec]
    faults: list[Fault] = field(default_factory=list)
    mock: MockConfig = field(default_factory=MockConfig)
    seed: int = 0


def infer_provider(name: str) -> str | None:
    """The provider a backend name suggests (`claude-fallback` -> anthropic), if any."""
    low = name.lower()
    for word, provider in _INFER:
        if word in low:
            return provider
    return None


def parse_upstream(text: str) -> tuple[str, BackendSpec]:
    """`NAME=URL`, `NAME=PROVIDER@URL`, `NAME=mock` or `NAME=PROVIDER@mock`."""
    name, sep, target = text.partition("=")
    name, target = name.strip(), target.strip()
    if not sep or not name or not target:
        raise ProxyConfigError(
            f"--upstream {text!r}: expected NAME=URL, e.g. openai=https://api.openai.com"
        )
    if not BACKEND_NAME.match(name):
        raise ProxyConfigError(
            f"--upstream {text!r}: a backend name starts with a letter and has only letters,"
            " digits, - and _ (it is the first path segment of the proxy's URLs)"
        )
    provider: str | None = None
    head, at, tail = target.partition("@")
    if at and "://" not in head:
        provider, target = head.strip(), tail.strip()
    else:
        provider = infer_provider(name)
    if provider is None:
        raise ProxyConfigError(
            f"--upstream {text!r}: cannot tell the wire format of backend {name!r};"
            f" write {name}=PROVIDER@{target} with PROVIDER one of {', '.join(provider_names())}"
        )
    try:
        return name, BackendSpec(provider=provider, upstream=target)
    except ValidationError as exc:
        problems = "; ".join(str(err["msg"]) for err in exc.errors(include_url=False))
        raise ProxyConfigError(f"--upstream {text!r}: {problems}") from None


def default_backends() -> dict[str, BackendSpec]:
    return {name: BackendSpec(provider=p) for name, p in DEFAULT_BACKENDS.items()}


def load_experiment_settings(path: Path) -> ProxySettings:
    """Backends, faults, mock settings and seed of an experiment file.

    Uses the experiment loader (`aichaos.experiment.load_experiment`, full
    validation with file/line errors) when it is installed; otherwise reads
    just the `backends`, `faults`, `mock` and `seed` keys of the YAML.
    """
    try:
        loader = importlib.import_module("aichaos.experiment").load_experiment
    except (ImportError, AttributeError):
        return _read_experiment_yaml(path)
    try:
        experiment: Any = loader(path)
    except Exception as exc:  # the loader's ExperimentError: already a readable message
        raise ProxyConfigError(str(exc)) from None
    mock = experiment.mock
    return ProxySettings(
        backends=dict(experiment.backends),
        faults=list(experiment.faults),
        mock=MockConfig(
            seed=experiment.seed or 0,
            latency=mock.latency,
            ttft=mock.ttft,
            tokens_per_second=mock.tokens_per_second,
            max_tokens_default=mock.max_tokens,
        ),
        seed=experiment.seed or 0,
    )


def _read_experiment_yaml(path: Path) -> ProxySettings:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProxyConfigError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ProxyConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ProxyConfigError(f"{path}: an experiment file is a mapping of keys")
    backends = default_backends()
    raw_backends = data.get("backends")
    if raw_backends is not None:
        if not isinstance(raw_backends, dict):
            raise ProxyConfigError(f"{path}: backends: a mapping of name to backend")
        backends = {}
        for name, value in raw_backends.items():
            if not isinstance(name, str) or not BACKEND_NAME.match(name):
                raise ProxyConfigError(f"{path}: backends: {name!r} is not a valid backend name")
            spec = {"provider": value} if isinstance(value, str) else value
            try:
                backends[name] = BackendSpec.model_validate(spec)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(map(str, e['loc'])) or name}: {e['msg']}"
                    for e in exc.errors(include_url=False)
                )
                raise ProxyConfigError(f"{path}: backends.{name}: {problems}") from None
    faults = []
    raw_faults = data.get("faults") or []
    if not isinstance(raw_faults, list):
        raise ProxyConfigError(f"{path}: faults: a list of faults")
    for index, item in enumerate(raw_faults):
        if not isinstance(item, dict):
            raise ProxyConfigError(f"{path}: faults[{index}]: a fault is a mapping")
        try:
            faults.append(build_fault(item, backends=backends))
        except FaultSpecError as exc:
            raise ProxyConfigError(f"{path}: faults[{index}]: {exc}") from None
    seed = data.get("seed")
    seed = seed if isinstance(seed, int) else 0
    return ProxySettings(backends=backends, faults=faults, mock=MockConfig(seed=seed), seed=seed)


def build_settings(experiment: Path | None, upstreams: list[str]) -> ProxySettings:
    """The experiment's backends (else openai/anthropic/gemini on the mock), then `--upstream`
    entries replacing or adding backends by name."""
    settings = (
        load_experiment_settings(experiment)
        if experiment is not None
        else ProxySettings(backends=default_backends())
    )
    for text in upstreams:
        name, spec = parse_upstream(text)
        settings.backends[name] = spec
    return settings


__all__ = [
    "ProxyConfigError",
    "ProxySettings",
    "build_settings",
    "infer_provider",
    "load_experiment_settings",
    "parse_upstream",
]
