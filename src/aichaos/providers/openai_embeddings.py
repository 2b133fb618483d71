"""OpenAI embeddings (`/v1/embeddings`, base64 or floats) and model listing (`/v1/models`)."""

from __future__ import annotations

import base64
import hashlib
import math
import random
import struct
from typing import Any

from aichaos.providers.base import Completion, Dialect
from aichaos.wire.exchange import RequestInfo

DEFAULT_DIMENSIONS = 1536
MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "o4-mini", "text-embedding-3-small")


def _inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        if value and all(isinstance(v, int) for v in value):
            return [str(value)]  # one pre-tokenised input
        return [v if isinstance(v, str) else str(v) for v in value]
    return [""]


def embedding_vector(text: str, dimensions: int, seed: int = 0) -> list[float]:
    """A deterministic unit vector for (seed, text)."""
    digest = hashlib.sha256(f"{seed}\x00{text}".encode("utf-8", "surrogatepass")).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    raw = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    # Round-trip through float32 so float and base64 encodings agree exactly.
    return [struct.unpack("<f", struct.pack("<f", x / norm))[0] for x in raw]


class _DataSurface(Dialect):
    """An API surface that answers with data, not a completion: never streamed."""

    supports_stream = False
    has_completion = False


class Embeddings(_DataSurface):
    """`/v1/embeddings`: honours `encoding_format` (the SDK asks for base64 by default)."""

    name = "embeddings"
    default_model = "text-embedding-3-small"
    embeds = True
    usage_at = ("usage", "prompt_tokens", "completion_tokens")

    endpoint = ("POST", "/embeddings")

    required_fields = ("input",)  # Azure names the deployment in the path

    def render(self, req: RequestInfo, completion: Completion) -> Any:
        return self.embed(req, seed=0, model=completion.model)

    def embed(self, req: RequestInfo, *, seed: int, model: str | None = None) -> dict[str, Any]:
        body = req.json_object
        dims = body.get("dimensions")
        dimensions = dims if isinstance(dims, int) and dims > 0 else DEFAULT_DIMENSIONS
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        tokens = 0
        for index, text in enumerate(_inputs(body.get("input"))):
            tokens += max(1, len(text.split()))
            vector = embedding_vector(text, dimensions, seed)
            encoded: Any = (
                base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
                if as_base64
                else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        return {
            "object": "list",
            "data": data,
            "model": model or req.model or self.default_model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


class Models(_DataSurface):
    """`GET /v1/models`: a fixed list of well-known models."""

    name = "models"

    endpoint = ("GET", "/v1/models")

    def render(self, req: RequestInfo, completion: Completion) -> Any:
        return {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": 1715367049, "owned_by": "system"}
                for m in MODELS
            ],
        }
