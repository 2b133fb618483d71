"""The built-in fault kinds. Importing this package registers them all by name."""

from aichaos.faults.kinds import (
    connection,
    content,
    http_errors,
    malformed,
    network,
    rate_limiter,
    raw,
    streaming,
    tool_calls,
)

__all__ = [
    "connection",
    "content",
    "http_errors",
    "malformed",
    "network",
    "rate_limiter",
    "raw",
    "streaming",
    "tool_calls",
]
