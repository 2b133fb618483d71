"""The `raw` fault replays an exact answer, in-process and through the proxy, with the real SDKs.

What the openai SDK does with each shape is its own behaviour (`_streaming.Stream`: events
until the connection breaks, then `APIConnectionError`; `_base_client`: 5xx retried twice,
`.body` the raw text of a non-JSON body).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

import aichaos
from aichaos.experiment import ExperimentError
from aichaos.experiment.loader import parse_experiment
from aichaos.proxy import serve_proxy_in_thread
from proxy_helpers import make_session, settled
from sdk_support import API_KEY, GPT, MESSAGES, read_until_error


def chunk(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-raw",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": GPT,
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }


STREAM_THEN_RESET = {
    "kind": "raw",
    "status": 200,
    "headers": [["content-type", "text/event-stream"], ["x-captured", "yes"]],
    "events": [{"data": chunk("Hel")}, {"delay": "150ms", "data": chunk("lo")}],
    "end": "reset",
}
GATEWAY_PAGE = {
    "kind": "raw",
    "status": 524,
    "headers": {"content-type": "text/html", "server": "cloudflare", "cf-ray": "8f-SJC"},
    "body": "<html><body><h1>A timeout occurred</h1>Error code 524</body></html>",
}


def stream(client: openai.OpenAI) -> Any:
    return client.chat.completions.create(
        model=GPT,
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
    )


def test_events_with_delays_then_a_reset_in_process() -> None:
    started = time.monotonic()
    with aichaos.inject([STREAM_THEN_RESET]) as chaos, openai.OpenAI(api_key=API_KEY) as sdk:
        received, error = read_until_error(stream(sdk))
    assert [c.choices[0].delta.content for c in received] == ["Hel", "lo"]
    assert isinstance(error, openai.APIConnectionError)  # mid-stream: not retried
    assert len(chaos.attempts) == 1 and chaos.attempts[0].faults == ["raw(200)"]
    assert time.monotonic() - started >= 0.15


def test_headers_are_exactly_as_given_in_process() -> None:
    with (
        aichaos.inject([GATEWAY_PAGE]) as chaos,
        openai.OpenAI(api_key=API_KEY) as sdk,
        pytest.raises(openai.InternalServerError) as info,
    ):
        sdk.chat.completions.create(model=GPT, messages=MESSAGES)  # type: ignore[arg-type]
    exc = info.value
    assert exc.status_code == 524 and exc.body == GATEWAY_PAGE["body"]
    names = [k.lower() for k, _ in exc.response.headers.multi_items()]
    given = ["content-type", "server", "cf-ray"]
    assert [n for n in names if n in given] == given  # in order, once each
    assert "x-request-id" not in names and "openai-version" not in names  # no defaults
    assert len(chaos.attempts) == 3  # 5xx: the SDK retries twice


def test_mappings_go_out_as_compact_json_in_process() -> None:
    """A `body` or event `data` written as a mapping is sent as the providers write JSON (no
    spaces, UTF-8 kept); the openai SDK reads the body's error as from the real API."""
    error = {"error": {"message": "Überlastet", "type": "server_error", "param": None}}
    fault = {"kind": "raw", "status": 400, "headers": [["content-type", "application/json"]]}
    with (
        aichaos.inject([{**fault, "body": error}]),
        openai.OpenAI(api_key=API_KEY) as sdk,
        pytest.raises(openai.BadRequestError) as info,
    ):
        sdk.chat.completions.create(model=GPT, messages=MESSAGES)  # type: ignore[arg-type]
    assert info.value.body == error["error"]  # the SDK's `.body` is the inner error
    assert info.value.response.content == (
        '{"error":{"message":"Überlastet","type":"server_error","param":null}}'.encode()
    )
    events = {**STREAM_THEN_RESET, "end": "clean", "events": [{"data": {"a": [1, "é"]}}]}
    with aichaos.inject([events]), httpx.Client() as client:
        answer = client.post("https://api.openai.com/v1/chat/completions", json={})
    assert answer.content == 'data: {"a":[1,"é"]}\n\n'.encode()


@pytest.fixture(scope="module")
def proxied() -> Iterator[Any]:
    session = make_session({"openai": "openai"})
    with serve_proxy_in_thread(session) as running:
        yield running


def test_raw_through_the_proxy(proxied: Any) -> None:
    proxied.session.engine.clear()
    proxied.session.recorder.clear()
    proxied.session.engine.add(aichaos.fault(**STREAM_THEN_RESET))
    try:
        client = openai.OpenAI(
            base_url=proxied.backend_url("openai") + "/v1", api_key=API_KEY, max_retries=0
        )
        with client:
            received, error = read_until_error(stream(client))
    finally:
        proxied.session.engine.clear()
    assert [c.choices[0].delta.content for c in received] == ["Hel", "lo"]
    assert isinstance(error, openai.APIConnectionError)
    assert settled(proxied.session)[0].faults == ["raw(200)"]


def _experiment(fault: str) -> str:
    return (
        "version: 1\n"
        "backends: {openai: openai}\n"
        "target: {python: 'json:dumps'}\n"
        "load: {requests: 1}\n"
        f"faults:\n  - {fault}\n"
    )


def test_a_file_next_to_the_experiment(tmp_path: Path) -> None:
    answer = {key: value for key, value in GATEWAY_PAGE.items() if key != "kind"}
    (tmp_path / "page.json").write_text(json.dumps(answer))
    experiment = parse_experiment(
        _experiment("{kind: raw, file: page.json}"), file="x.yaml", base_dir=tmp_path
    )
    (fault,) = experiment.faults
    assert fault.label() == "raw(524)"


def test_a_bad_file_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("status: 200\nheaders: {a: b}\nevents:\n  - delay: soon\n")
    with pytest.raises(ExperimentError) as info:
        parse_experiment(
            _experiment("{kind: raw, file: bad.yaml}"), file="x.yaml", base_dir=tmp_path
        )
    text = str(info.value)
    assert "bad.yaml line 4" in text and "x.yaml" in text  # `aichaos run` exits 2 with it


# --- nothing added: the bytes on the wire ----------------------------------------------------
#
# In-process the SDK's transport gets the headers exactly as given (case and order kept).
# Through the proxy, HTTP/1.1 needs the body framed: the proxy adds `content-length` when the
# answer is one whole body, else uvicorn sends `transfer-encoding: chunked`, and nothing else
# (no `date`, no `server`: both are switched off in `proxy/server.py`). Names go out in lower
# case, as the ASGI interface carries them.

CASED = {
    "kind": "raw",
    "status": 502,
    "headers": [["Content-Type", "text/html"], ["X-Edge", "a"], ["x-edge", "b"]],
    "body": "<html>Bad gateway</html>",
}


def test_in_process_headers_keep_case_order_and_repeats() -> None:
    with (
        aichaos.inject([CASED]),
        openai.OpenAI(api_key=API_KEY, max_retries=0) as sdk,
        pytest.raises(openai.InternalServerError) as info,
    ):
        sdk.chat.completions.create(model=GPT, messages=MESSAGES)  # type: ignore[arg-type]
    raw = info.value.response.headers.raw
    assert raw == [(k.encode(), v.encode()) for k, v in CASED["headers"]]  # nothing added


Head = list[tuple[bytes, bytes]]


def _exchange(proxied: Any, fault: dict[str, Any], extra: str = "") -> tuple[bytes, Head, bytes]:
    """One request on a raw socket through the proxy: the status line, headers and body bytes."""
    proxied.session.engine.clear()
    proxied.session.engine.add(aichaos.fault(**fault))
    body = json.dumps({"model": GPT, "messages": MESSAGES}).encode()
    request = (
        f"POST /openai/v1/chat/completions HTTP/1.1\r\nhost: {proxied.host}:{proxied.port}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body  # a keep-alive request: the answer is read by its own framing
    received = b""
    try:
        with socket.create_connection((proxied.host, proxied.port), timeout=5) as sock:
            sock.sendall(request)
            while not _complete(received):
                chunk = sock.recv(65536)
                assert chunk, f"the proxy closed the connection early: {received!r}"
                received += chunk
    finally:
        proxied.session.engine.clear()
    head, _, rest = received.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = [(name, value.strip()) for name, _, value in (line.partition(b":") for line in lines)]
    return status, headers, rest


def _complete(received: bytes) -> bool:
    """Whether `received` holds a whole answer: its head, then its content-length or chunks."""
    head, found, rest = received.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.lower().split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name == b"content-length":
            return len(rest) >= int(value)
    return rest.endswith(b"0\r\n\r\n")


def test_through_the_proxy_only_framing_is_added(proxied: Any) -> None:
    status, headers, body = _exchange(proxied, CASED)
    assert status == b"HTTP/1.1 502 Bad Gateway"
    given = [(k.lower().encode(), v.encode()) for k, v in CASED["headers"]]
    length = str(len(CASED["body"])).encode()
    assert headers == [*given, (b"content-length", length)]  # no date, no server
    assert body == CASED["body"].encode()


def test_through_the_proxy_events_are_chunked_and_nothing_else(proxied: Any) -> None:
    fault = {**STREAM_THEN_RESET, "end": "clean"}
    status, headers, body = _exchange(proxied, fault)
    assert status == b"HTTP/1.1 200 OK"
    given = [(k.encode(), v.encode()) for k, v in fault["headers"]]
    assert headers == [*given, (b"transfer-encoding", b"chunked")]
    assert b'data: {"id":"chatcmpl-raw",' in body  # compact, as providers write JSON


def test_a_given_content_length_is_not_doubled(proxied: Any) -> None:
    fault = {**CASED, "headers": [["content-length", str(len(CASED["body"]))]]}
    _, headers, body = _exchange(proxied, fault)
    assert headers == [(b"content-length", str(len(CASED["body"])).encode())]
    assert body == CASED["body"].encode()


def test_a_client_closing_gets_connection_close_and_nothing_else(proxied: Any) -> None:
    """The one hop-by-hop addition: uvicorn answers a client's `connection: close` in kind."""
    _, headers, body = _exchange(proxied, CASED, "connection: close\r\n")
    given = [(k.lower().encode(), v.encode()) for k, v in CASED["headers"]]
    length = str(len(CASED["body"])).encode()
    assert headers == [*given, (b"content-length", length), (b"connection", b"close")]
    assert body == CASED["body"].encode()
