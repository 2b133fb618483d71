"""Provider registry: every provider is a stateless singleton looked up by name or path."""

from __future__ import annotations

from aichaos.providers.anthropic import AnthropicProvider
from aichaos.providers.base import Dialect
from aichaos.providers.gemini import GeminiProvider
from aichaos.providers.openai import AzureOpenAIProvider, OpenAIProvider
from aichaos.providers.provider import Provider

PROVIDERS: dict[str, Provider] = {
    provider.name: provider
    for provider in (OpenAIProvider(), AzureOpenAIProvider(), AnthropicProvider(), GeminiProvider())
}


def provider_names() -> list[str]:
    return list(PROVIDERS)


def get_provider(name: str) -> Provider:
    try:
        return PROVIDERS[name]
    except KeyError:
        known = ", ".join(PROVIDERS)
        raise KeyError(f"unknown provider {name!r}; known providers: {known}") from None


def resolve(method: str, path: str) -> tuple[Provider, Dialect] | None:
    """Which provider and dialect serve `method path` (query string excluded).

    Azure deployment paths go to Azure; otherwise OpenAI, Anthropic and Gemini are tried.
    """
    path = path.split("?", 1)[0]
    azure = "/deployments/" in path
    names = ["azure"] if azure else [n for n in PROVIDERS if n != "azure"]
    for name in names:
        provider = PROVIDERS[name]
        dialect = provider.dialect_for(method.upper(), path)
        if dialect is not None:
            return provider, dialect
    return None


def infer_provider(name: str) -> str | None:
    """The provider a backend name suggests (`claude-fallback` -> anthropic), if any; Azure
    first, since its names often contain `openai` or `gpt` too."""
    low = name.lower()
    for provider in sorted(PROVIDERS.values(), key=lambda p: p.name != "azure"):
        if any(word in low for word in provider.name_hints):
            return provider.name
    return None


def closest_provider(path: str) -> Provider:
    """The provider whose error shape best fits an unknown path (for 404s)."""
    if "/deployments/" in path:
        return PROVIDERS["azure"]
    if path.startswith("/v1beta") or ":generate" in path or ":streamGenerate" in path:
        return PROVIDERS["gemini"]
    if "/messages" in path or path.endswith("/v1/complete"):
        return PROVIDERS["anthropic"]
    return PROVIDERS["openai"]


__all__ = [
    "PROVIDERS",
    "closest_provider",
    "get_provider",
    "infer_provider",
    "provider_names",
    "resolve",
]
