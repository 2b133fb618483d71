"""Secrets recognised by their shape, for every layer that shows text it did not write.

`scrub(text)` replaces URL credentials (`https://user:pass@host` -> `https://[redacted]@host`),
key-like query parameters (`?key=...`) and strings shaped like provider and platform keys:

* OpenAI / Anthropic `sk-...` (also `sk-proj-`, `sk-ant-`), Google `AIza...`;
* Azure OpenAI / Cognitive Services keys: 32 hex characters standing alone (the form the
  Azure portal shows; a W3C trace id inside a `traceparent` is not alone, so it stays), and
  the 84-character keys Azure AI services issue since 2024 (with `JQQJ9` inside);
* `Bearer ...` and `Basic ...` credentials; JSON Web Tokens (`eyJ...`);
* GitHub (`ghp_`, `github_pat_`, ...), Hugging Face (`hf_`), Groq (`gsk_`), xAI (`xai-`),
  AWS access key ids (`AKIA`/`ASIA`), Slack (`xox?-`), Stripe (`sk_live_`, `rk_live_`);
* the value after `api_key=`, `api-key:`, `password=`, `token:` and similar labels, also
  with a prefix (`OPENAI_API_KEY=`, `client_secret:`, `aws_secret_access_key=`).
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"

URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#'\"<>]+@")
_KEY_SHAPES = re.compile(
    r"(?:sk-[A-Za-z0-9_\-]{8,}"
    r"|AIza[0-9A-Za-z_\-]{20,}"
    r"|(?i:bearer|basic)\s+[A-Za-z0-9._\-+/=]{8,}"
    r"|eyJ[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]*"
    r"|(?:gh[pousr]_|github_pat_)[A-Za-z0-9_]{20,}"
    r"|hf_[A-Za-z0-9]{20,}|gsk_[A-Za-z0-9]{20,}|xai-[A-Za-z0-9]{20,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}"
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"
    # Azure AI services keys since 2024: 84 letters and digits with "JQQJ9" inside
    r"|(?<![0-9A-Za-z])(?=[0-9A-Za-z]{0,79}JQQJ9)[0-9A-Za-z]{84}(?![0-9A-Za-z])"
    # Azure: 32 hex characters, not part of a longer word, id or traceparent
    r"|(?<![0-9A-Za-z_\-.])(?=[0-9a-fA-F]{0,31}[a-fA-F])(?=[0-9a-fA-F]{0,31}[0-9])"
    r"[0-9a-fA-F]{32}(?![0-9A-Za-z_\-])"
    r")"
)
_LABELLED = re.compile(
    r"(?i)((?:[?&](?:key|api_key|apikey|access_token|token|sig|signature)=)"
    # a label may have a prefix (OPENAI_API_KEY=, client_secret:, aws_secret_access_key=):
    # it starts after any non-alphanumeric, `_` and `-` included (no prefix pattern: that
    # backtracks quadratically on `a_a_a_...`)
    r"|(?:(?<![A-Za-z0-9])(?:x-)?(?:api[-_]?key|goog-api-key"
    r"|access[-_]?token|auth[-_]?token|secret(?:[-_]access)?(?:[-_]key)?|password|passwd)"
    r"[\"']?\s*[:=]\s*[\"']?))"
    r"(?!\[redacted\])[^\s\"'&,;}<>]{4,}"
)


def scrub(text: str) -> str:
    """`text` with URL credentials, labelled secrets and key-shaped strings replaced."""
    if "@" in text:
        text = URL_CREDENTIALS.sub(rf"\1{REDACTED}@", text)
    text = _KEY_SHAPES.sub(REDACTED, text)
    return _LABELLED.sub(rf"\1{REDACTED}", text)


def has_url_credentials(url: str) -> bool:
    """Whether a URL carries `user[:password]@` before its host."""
    return bool(URL_CREDENTIALS.match(url.strip()))


__all__ = ["REDACTED", "URL_CREDENTIALS", "has_url_credentials", "scrub"]
