"""The exchange life's shortcut (`at_once`) ends as stepping through the life does."""

from __future__ import annotations

import json
from typing import Any

from aichaos.exchange.actions import FINISH, Action, Fail, SendBytes, StartAnswer, Wait
from aichaos.exchange.driver import ExchangeLife
from aichaos.faults.plan import Plan
from aichaos.mock import MockConfig
from aichaos.mock.engine import MockBackend
from aichaos.providers import resolve
from aichaos.records import Attempt
from aichaos.wire.exchange import Abort, Pause, Reply, RequestInfo


def _request(**fields: Any) -> RequestInfo:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], **fields}
    path = "/v1/chat/completions"
    return RequestInfo(
        "POST", f"http://mock{path}", "mock", path, "", {}, json.dumps(body).encode()
    )


class _Life:
    """A life with an empty plan over the mock, and what it recorded."""

    def __init__(self, req: RequestInfo, config: MockConfig | None = None, **plan: Any) -> None:
        provider, dialect = resolve(req.method, req.path) or (None, None)
        assert provider is not None
        backend = MockBackend(config)
        self.asked = 0
        self.finished: list[tuple[Attempt, int]] = []

        def mock() -> tuple[float, Reply]:
            self.asked += 1
            return backend.header_delay, backend.handle(req)

        self.attempt = Attempt("mock", "openai", req.method, req.path, "gpt-4o", False)
        self.life = ExchangeLife(
            Plan(req=req, provider=provider, dialect=dialect, **plan),
            self.attempt,
            mock=mock,
            finished=lambda attempt, _plan, tokens: self.finished.append((attempt, tokens)),
        )

    def steps(self) -> list[Action]:
        actions = [self.life.send(None)]
        while actions[-1] is not FINISH and not isinstance(actions[-1], Fail):
            actions.append(self.life.send(None))
        return actions

    def record(self) -> dict[str, Any]:
        fields = self.attempt.to_dict()
        timed = ("started", "headers_at", "ttft", "duration")
        return {k: (v is not None) if k in timed else v for k, v in fields.items()}


def test_at_once_answers_and_records_as_the_steps_do() -> None:
    stepped, quick = _Life(_request()), _Life(_request())
    actions = stepped.steps()
    whole = quick.life.at_once()
    assert whole is not None
    head, body = whole
    assert [type(a) for a in actions] == [StartAnswer, SendBytes, type(FINISH)]
    start, sent = actions[0], actions[1]
    assert isinstance(start, StartAnswer) and isinstance(sent, SendBytes)
    assert (head.status, head.headers[0], head.length) == (
        start.status,
        start.headers[0],
        len(body),
    )
    assert [name for name, _ in head.headers] == [name for name, _ in start.headers]
    assert json.loads(body)["usage"] == json.loads(sent.data)["usage"]
    assert quick.record() == stepped.record()
    assert quick.attempt.outcome == "complete" and quick.attempt.input_tokens is not None
    assert quick.attempt.status == 200 and quick.attempt.duration is not None
    assert [tokens for _, tokens in quick.finished] == [t for _, t in stepped.finished]
    assert len(quick.finished) == 1 and quick.asked == 1
    assert quick.life.ended


def test_at_once_takes_a_faults_reply_as_the_steps_do() -> None:
    body = b'{"error":{"message":"down","type":"server_error"}}'
    reply = Reply(500, [("content-type", "application/json")], [body])
    stepped, quick = _Life(_request(), reply=reply), _Life(_request(), reply=reply)
    actions = stepped.steps()
    whole = quick.life.at_once()
    assert whole is not None
    head, sent = whole
    start, stepped_body = actions[0], actions[1]
    assert isinstance(start, StartAnswer) and isinstance(stepped_body, SendBytes)
    assert (head.status, head.headers, head.length, sent) == (
        start.status,
        start.headers,
        len(body),
        stepped_body.data,
    )
    assert sent == body and head.status == 500
    assert quick.asked == stepped.asked == 0  # a fault's reply: the mock is not asked
    assert quick.record() == stepped.record()
    assert quick.attempt.outcome == stepped.attempt.outcome


def test_without_a_shortcut_the_life_steps_on_asking_the_mock_once() -> None:
    cases: list[tuple[RequestInfo, MockConfig | None, dict[str, Any]]] = [
        (_request(stream=True), None, {}),  # a stream
        (_request(), MockConfig(latency=0.01), {}),  # a wait before the head
        (_request(), MockConfig(ttft=0.01), {}),  # a pause before the body
        (_request(), None, {"delay": 0.01}),  # a fault's delay
        (_request(), None, {"failure": Abort("reset")}),  # a connection failure
        (_request(), None, {"abort_after_bytes": 3}),  # an edit of the answer
        (_request(), None, {"header_edits": [lambda headers: headers]}),  # another edit
    ]
    for req, config, plan in cases:
        stepped, quick = _Life(req, config, **plan), _Life(req, config, **plan)
        assert quick.life.at_once() is None
        assert not quick.finished and quick.attempt.outcome is None
        expected = [type(a) for a in stepped.steps()]
        assert [type(a) for a in quick.steps()] == expected
        failing = "failure" in plan  # the connection fails before any answer is asked for
        assert quick.asked == stepped.asked == (0 if failing else 1)
        assert quick.record() == stepped.record()


def test_pauses_in_a_reply_keep_it_off_the_shortcut() -> None:
    reply = Reply(200, [("content-type", "application/json")], [Pause(0.01), b"{}"])
    life = ExchangeLife.of_reply(reply)
    assert life.at_once() is None
    assert [type(a) for a in [life.send(None), life.send(None), life.send(None)]] == [
        StartAnswer,
        Wait,
        SendBytes,
    ]
