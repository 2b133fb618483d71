"""What aichaos tells a team's own signals: Prometheus metrics (`metrics`) and, with the
`otel` extra, OpenTelemetry spans (`tracing`). Both are fed from the attempt records."""

from __future__ import annotations

import os


def otel_configured() -> bool:
    """Whether the standard OTEL_* environment asks for traces to be exported: an OTLP
    endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or
    `OTEL_TRACES_EXPORTER=otlp|console`; never with `OTEL_SDK_DISABLED=true` or
    `OTEL_TRACES_EXPORTER=none`. Needs no OpenTelemetry package."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    return bool(endpoint) or exporter in ("otlp", "console")
