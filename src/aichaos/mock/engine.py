"""The embedded mock model backend: sans-IO, deterministic, every provider at once.

`MockBackend.handle(req)` returns a `Reply` whose body is a lazy iterator of parts.
Timing is expressed as parts, except the delay before the status line:

* `config.latency` (delay before headers) is *not* in the Reply: whoever asks for the
  answer hands `MockBackend.header_delay` with it to the exchange life (the session's
  `(header_delay, reply)` answers, in-process and in the proxy) or to the mock server's
  `exchange.asgi.send_reply(reply, send, header_delay=...)`, which wait that long before
  the head.
* `config.ttft` is a `Pause` before the first token event of a stream; with
  `tokens_per_second` set, a `Pause(1/tps)` separates later token events.
  Non-streaming replies get one `Pause(ttft + tokens/tps)` before the body,
  as a real model finishes generating before it answers.

Tokens are counted as whitespace-separated words (text) and the reply text is
drawn from a small vocabulary with `random.Random` seeded by the seed and a
SHA-256 of the last user message, so the same (seed, prompt) gives the same text.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from aichaos.providers import closest_provider, resolve
from aichaos.providers._common import split_words
from aichaos.providers.base import Completion, Dialect, EventRole, Finish, Prompt, ToolCall, Usage
from aichaos.providers.provider import Provider
from aichaos.wire.exchange import JSONBytes, Part, Pause, Reply, RequestInfo
from aichaos.wire.sse import SSEEvent

_WORDS = (
    "the a model answer system request token stream latency error retry fallback "
    "chaos signal quiet river mountain bright cloud server client network packet "
    "window moment careful steady simple clear quick gentle green blue seven eleven "
    "north south value result check graph metric budget limit queue cache vector "
    "prompt reply sample"
)
VOCABULARY: tuple[str, ...] = tuple(_WORDS.split())

_PACED = (EventRole.TEXT, EventRole.TOOL_START, EventRole.TOOL_ARGS)


class MockConfig(BaseModel):
    """Knobs of the mock backend. Times are in seconds."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    latency: float = Field(default=0.0, ge=0)  # before the response headers
    ttft: float = Field(default=0.0, ge=0)  # before the first token
    tokens_per_second: float | None = Field(default=None, gt=0)  # None: no pacing
    max_tokens_default: int = Field(default=32, ge=1)  # longest natural answer, in words


def _rng(*parts: object) -> random.Random:
    # surrogatepass: a prompt may hold a lone surrogate (JSON allows "\ud800"); it still seeds
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode("utf-8", "surrogatepass")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@functools.lru_cache(maxsize=256)
def _route(method: str, path: str) -> tuple[Provider, Dialect, bool] | None:
    """`resolve(method, path)` and whether the dialect `embeds`, remembered for the paths a
    mock serves (a pure function of its arguments)."""
    found = resolve(method, path)
    return None if found is None else (*found, found[1].embeds)


_Known = tuple[Provider, Dialect, Completion, bool]
"""A request's provider, dialect, completion and whether it is streamed."""
_KNOWN_REQUESTS = 256

_CACHED_PROMPT = 4096  # longest prompt kept as a cache key (bounds the cache's memory)


@functools.lru_cache(maxsize=256)
def _plain_text(
    seed: int, last_user: str, longest: int, max_tokens: int | None
) -> tuple[str, Finish]:
    """The natural answer to a prompt: a pure function of its arguments, so a load of the
    same prompt draws its words once (drawing them was a fifth of the mock's CPU)."""
    rng = _rng(seed, last_user)
    count = rng.randint(min(8, longest), longest)
    finish: Finish = "stop"
    if max_tokens is not None and count > max_tokens:
        count, finish = max_tokens, "length"
    words = [rng.choice(VOCABULARY) for _ in range(count)]
    words[0] = words[0].capitalize()
    if finish == "stop":
        words[-1] += "."
    return " ".join(words), finish


def sample_value(
    schema: dict[str, Any], rng: random.Random, *, all_props: bool, depth: int = 0
) -> Any:
    """A plausible deterministic value for a JSON schema (Gemini's upper-case types too)."""
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    kind = str(kind or ("object" if "properties" in schema else "string")).lower()
    if kind == "object":
        raw_props = schema.get("properties")
        props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
        raw_required = schema.get("required")
        required: list[Any] = raw_required if isinstance(raw_required, list) else []
        names = list(props) if all_props else [str(n) for n in required]
        if depth > 4:
            return {}
        return {
            n: sample_value(props.get(n) or {}, rng, all_props=all_props, depth=depth + 1)
            for n in names
        }
    if kind == "array":
        raw_items = schema.get("items")
        items: dict[str, Any] = raw_items if isinstance(raw_items, dict) else {}
        return [sample_value(items, rng, all_props=all_props, depth=depth + 1)]
    if kind == "integer":
        return rng.randint(1, 100)
    if kind == "number":
        return round(rng.uniform(0, 100), 2)
    if kind == "boolean":
        return True
    if schema.get("format") == "date":
        return "2025-01-01"
    return rng.choice(VOCABULARY)


class MockBackend:
    """Answers any provider request like the real API would, deterministically per seed."""

    def __init__(self, config: MockConfig | None = None) -> None:
        self.config = config or MockConfig()
        # The completion of each recent request (by method, path, query and body): a pure
        # function of them and the config, as `_plain_text` is of a prompt, so a repeated
        # request is not parsed, checked and answered again (a third of the mock's own CPU).
        self._completions: dict[tuple[str, str, str, bytes], _Known] = {}

    @property
    def header_delay(self) -> float:
        """Seconds an adapter waits before sending the status line and headers."""
        return self.config.latency

    # --- entry point ------------------------------------------------------------
    def handle(self, req: RequestInfo) -> Reply:
        key = (req.method, req.path, req.query, req.body)
        known = self._completions.get(key)
        if known is None:
            found = _route(req.method, req.path)
            if found is None:
                return self._not_found(req)
            provider, dialect, embeddings = found
            refused = provider.request_error(req)
            if refused is not None:
                return refused  # a malformed request gets the provider's 400, not an answer
            if embeddings:
                vectors = dialect.embed(req, seed=self.config.seed, model=req.model)
                return Reply.json(200, vectors, provider.response_headers(req))
            if not dialect.has_completion:
                completion = Completion(model="", text="")
                return Reply.json(
                    200, dialect.render(req, completion), provider.response_headers(req)
                )
            stream = req.stream and dialect.supports_stream
            known = (provider, dialect, self.complete(req, dialect), stream)
            if len(req.body) <= _CACHED_PROMPT:
                if len(self._completions) >= _KNOWN_REQUESTS:
                    self._completions.clear()  # (atomic: the backend may serve several threads)
                self._completions[key] = known
        provider, dialect, completion, stream = known
        headers = provider.response_headers(req)  # its ids are new for every answer
        if stream:
            return self._stream(req, provider, dialect, completion, headers)
        data = JSONBytes.of(dialect.render(req, completion))
        wait = self.config.ttft + self._token_time(completion.usage.output_tokens)
        body: list[Part] = [Pause(wait), data] if wait > 0 else [data]
        return Reply(200, [("content-type", "application/json"), *headers], body)

    def _not_found(self, req: RequestInfo) -> Reply:
        provider = closest_provider(req.path)
        return provider.answer(req, "not_found") or provider.error(req, 404)

    # --- answers ----------------------------------------------------------------
    def complete(self, req: RequestInfo, dialect: Dialect) -> Completion:
        """The provider-neutral answer to a request (deterministic for seed + prompt)."""
        prompt = dialect.read_prompt(req.json_object)
        model = req.model or dialect.default_model
        input_tokens = max(1, len(prompt.all_text.split()))
        if prompt.tools and not prompt.tools_disabled and not prompt.tool_result_last:
            rng = _rng(self.config.seed, prompt.last_user)
            named = [t for t in prompt.tools if t.name == prompt.forced_tool]
            tool = (named or prompt.tools)[0]
            arguments = json.dumps(sample_value(tool.schema, rng, all_props=False))
            call = ToolCall(id=dialect.tool_call_id(rng), name=tool.name, arguments=arguments)
            usage = Usage(input_tokens, max(1, len(split_words(arguments))))
            return Completion(model, "", "tool_calls", [call], usage)
        text, finish = self._text(prompt)
        words = text.count(" ") + 1 if text else 0  # the stream's deltas: `split_words(text)`
        return Completion(model, text, finish, [], Usage(input_tokens, words))

    def _text(self, prompt: Prompt) -> tuple[str, Finish]:
        if prompt.json_mode:
            rng = _rng(self.config.seed, prompt.last_user)
            if prompt.json_schema:
                value = sample_value(prompt.json_schema, rng, all_props=True)
            else:
                value = {"answer": " ".join(rng.choice(VOCABULARY) for _ in range(6))}
            return json.dumps(value), "stop"
        key = (self.config.seed, prompt.last_user, self.config.max_tokens_default)
        if len(prompt.last_user) <= _CACHED_PROMPT:
            return _plain_text(*key, prompt.max_tokens)
        return _plain_text.__wrapped__(*key, prompt.max_tokens)

    def _token_time(self, tokens: int) -> float:
        tps = self.config.tokens_per_second
        return tokens / tps if tps else 0.0

    # --- streams ----------------------------------------------------------------
    def _stream(
        self,
        req: RequestInfo,
        provider: Provider,
        dialect: Dialect,
        completion: Completion,
        headers: list[tuple[str, str]],
    ) -> Reply:
        events = self._paced(dialect, dialect.render_stream(req, completion))
        content_type, body = dialect.stream_framing(req, events)
        return Reply(200, [("content-type", content_type), *headers], body)

    def _paced(self, dialect: Dialect, events: Iterable[SSEEvent]) -> Iterable[SSEEvent | Pause]:
        gap = self._token_time(1)
        if gap <= 0 and self.config.ttft <= 0:
            return events  # nothing to pace: no event need be classified
        return self._pacing(dialect, events, gap)

    def _pacing(
        self, dialect: Dialect, events: Iterable[SSEEvent], gap: float
    ) -> Iterator[SSEEvent | Pause]:
        first = True
        for event in events:
            if dialect.classify(event) in _PACED:
                if first and self.config.ttft > 0:
                    yield Pause(self.config.ttft)
                elif not first and gap > 0:
                    yield Pause(gap)
                first = False
            yield event
