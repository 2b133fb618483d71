"""Which hosts `inject()` claims by default and by wildcard, and failing closed on the rest."""

from __future__ import annotations

import asyncio
import http.client
import socket
import sys
import urllib.request
from typing import Any

import openai
import pytest

import aichaos
from aichaos.intercept.guard import UncoveredClientError

MESSAGES: Any = [{"role": "user", "content": "hi"}]
_connects: list[tuple[str, Any]] | None = None
_hooked = False


def _record_connects(event: str, args: tuple[Any, ...]) -> None:
    if _connects is not None and event in ("socket.connect", "socket.getaddrinfo"):
        _connects.append((event, args[1] if event == "socket.connect" else args[0]))


def opened_by(action: Any) -> tuple[BaseException | None, list[tuple[str, Any]]]:
    """Run `action`; what it raised and every name look-up or connection that got through.

    Audit hooks run in the order they were added and stop at the first that raises, so
    this one, added after aichaos's guard (on the first `inject()`), sees what passed it.
    """
    global _connects, _hooked
    if not _hooked:
        sys.addaudithook(_record_connects)  # inert outside this function: hooks stay forever
        _hooked = True
    seen: list[tuple[str, Any]] = []
    _connects, error = seen, None
    try:
        action()
    except BaseException as exc:
        error = exc
    finally:
        _connects = None
    return error, seen


@pytest.mark.parametrize(
    "endpoint",
    ["https://contoso-prod-7.openai.azure.com", "https://my-foundry.cognitiveservices.azure.com"],
)
def test_azure_on_any_resource_name_is_intercepted_without_host(endpoint: str) -> None:
    client = openai.AzureOpenAI(azure_endpoint=endpoint, api_key="k", api_version="2024-10-21")
    with aichaos.inject([{"kind": "rate_limit", "backend": "azure", "first": 1}]) as chaos:
        reply = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert reply.choices[0].message.content
    assert [(a.backend, a.status) for a in chaos.attempts] == [("azure", 429), ("azure", 200)]
    assert chaos.attempts[0].path == "/openai/deployments/gpt-4o/chat/completions"


def test_gemini_on_vertex_ai_regional_hosts_is_intercepted() -> None:
    from google import genai  # here, not at collection (every xdist worker collects)
    from google.oauth2.credentials import Credentials

    token = Credentials(token="test-token")  # Vertex AI asks for OAuth credentials
    client = genai.Client(vertexai=True, project="p", location="europe-west4", credentials=token)
    with aichaos.inject() as chaos:
        sync = client.models.generate_content(model="gemini-2.0-flash", contents="hi")
        on_aio = asyncio.run(
            client.aio.models.generate_content(model="gemini-2.0-flash", contents="x")
        )
    assert sync.text and on_aio.text
    assert [a.backend for a in chaos.attempts] == ["gemini", "gemini"]
    assert chaos.attempts[0].path.startswith("/v1beta1/projects/p/locations/europe-west4/")


def test_a_backend_host_may_be_a_wildcard() -> None:
    backends = {"internal": {"provider": "openai", "host": "*.llm.internal"}}
    with aichaos.inject(backends=backends) as chaos:
        for url in ("https://eu.llm.internal/v1", "https://us.llm.internal/v1"):
            client = openai.OpenAI(base_url=url, api_key="k", max_retries=0)
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        blocked, _ = opened_by(lambda: socket.getaddrinfo("eu.llm.internal", 443))
        beyond, opened = opened_by(lambda: socket.getaddrinfo("a.eu.llm.internal", 443))
    assert isinstance(blocked, UncoveredClientError)
    assert not isinstance(beyond, UncoveredClientError)  # `*` is part of one label only
    assert opened == [("socket.getaddrinfo", "a.eu.llm.internal")]
    assert [a.backend for a in chaos.attempts] == ["internal", "internal"]


@pytest.mark.parametrize(
    "stack",
    {
        "urllib": lambda: urllib.request.urlopen("https://api.openai.com/v1/models", timeout=5),
        "http.client": lambda: http.client.HTTPSConnection("api.anthropic.com").request("GET", "/"),
        "create_connection": lambda: socket.create_connection(("x.openai.azure.com", 443)),
        "resolver": lambda: socket.gethostbyname("generativelanguage.googleapis.com"),
    }.items(),
    ids=lambda item: item[0],
)
def test_an_uncovered_stack_never_reaches_a_claimed_host(stack: tuple[str, Any]) -> None:
    with aichaos.inject():
        error, opened = opened_by(stack[1])
    assert isinstance(error, UncoveredClientError)
    assert "claimed by backend" in str(error) and "aichaos proxy" in str(error)
    assert opened == []  # no look-up, no connection: nothing left the process


def test_a_raw_socket_connecting_by_name_is_stopped() -> None:
    """`socket.connect((name, port))` resolves the name in C before Python sees the call (a
    look-up may leave), so the claim is on a name that resolves here; no connection opens."""
    backends = {"local": {"provider": "openai", "host": "localhost"}}
    with aichaos.inject(backends=backends), socket.socket() as sock:
        error, opened = opened_by(lambda: sock.connect(("localhost", 443)))
    assert isinstance(error, UncoveredClientError)
    assert opened == []


def test_the_guard_spares_real_upstreams_and_ends_with_the_injection() -> None:
    backends = {"real": {"provider": "openai", "upstream": "https://127.0.0.1:9"}}
    with aichaos.inject(backends=backends):
        error, _ = opened_by(lambda: socket.getaddrinfo("127.0.0.1", 9))
    assert error is None  # aichaos itself connects there: not guarded
    with aichaos.inject():
        pass
    error, _ = opened_by(lambda: socket.getaddrinfo("localhost", 443))
    assert error is None
    with pytest.raises(OSError):  # not UncoveredClientError: outside any injection
        socket.create_connection(("api.openai.com.invalid", 443), timeout=1)
