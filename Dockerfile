# The aichaos image: the `aichaos` command with the Toxiproxy extra, and this repository's
# experiments (the game-day app, experiment and Toxiproxy config among them) under /app.
#
#   docker build -t aichaos .                 # the runtime image (the last stage)
#   docker run --rm aichaos faults            # any aichaos command
#   docker build --target test -t aichaos-test .   # plus the tests (for toxiproxy-tests)
#
# docker-compose.yml builds both; docs/gameday.md walks through the stack.

FROM python:3.12-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[toxiproxy]" \
    && useradd --create-home --uid 10001 aichaos
COPY experiments ./experiments

# The integration tests against a real Toxiproxy (docker compose run --rm toxiproxy-tests).
FROM base AS test
RUN pip install ".[test]"
COPY tests ./tests
USER aichaos
ENTRYPOINT []
CMD ["pytest", "-q", "-p", "no:cacheprovider", "tests/test_toxiproxy_integration.py"]

# The runtime image: the default target.
FROM base AS runtime
USER aichaos
EXPOSE 8800 8900
ENTRYPOINT ["aichaos"]
CMD ["--help"]
