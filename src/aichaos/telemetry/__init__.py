"""What aichaos tells a team's own signals: Prometheus metrics (`metrics`) and, with the
`otel` extra, OpenTelemetry spans (`tracing`). Both are fed from the attempt records."""
