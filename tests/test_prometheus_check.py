"""The `prometheus` check against a real Prometheus server (Debian's `prometheus`, installed by
.ci/run) that scrapes the metrics of `aichaos run --metrics-port` and has one alerting rule."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from aichaos.cli import main
from aichaos.experiment import ExperimentError, parse_experiment

TESTS = Path(__file__).parent
ALERT = "AichaosFaultsInjected"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    metrics_port: int


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not installed: .ci/run installs Debian's `prometheus`"
    home = tmp_path_factory.mktemp("prometheus")
    metrics_port, port = free_port(), free_port()
    (home / "rules.yml").write_text(
        textwrap.dedent(f"""
        groups:
          - name: aichaos
            interval: 1s
            rules:
              - alert: {ALERT}
                expr: sum(aichaos_faults_injected_total) > 0
        """)
    )
    (home / "prometheus.yml").write_text(
        textwrap.dedent(f"""
        global: {{scrape_interval: 1s, evaluation_interval: 1s}}
        rule_files: [{home / "rules.yml"}]
        scrape_configs:
          - job_name: aichaos
            static_configs: [{{targets: ["127.0.0.1:{metrics_port}"]}}]
        """)
    )
    log = (home / "log.txt").open("w")
    process = subprocess.Popen(
        [binary, f"--config.file={home / 'prometheus.yml'}",
         f"--storage.tsdb.path={home / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/-/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (home / "log.txt").read_text()
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.05)
        # Prometheus applies discovered targets every 5 s: wait for its first scrape attempt
        # (the target is down until a run serves metrics) so a short run is seen at all.
        while scraped(url) is False:
            assert time.monotonic() < deadline, "prometheus never tried its target"
            time.sleep(0.05)
        yield Server(url, metrics_port)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def scraped(url: str) -> bool:
    targets = httpx.get(url + "/api/v1/targets").json()["data"]["activeTargets"]
    return any(t["health"] != "unknown" for t in targets)


def experiment(server_url: str, probability: float, checks: str) -> str:
    return textwrap.dedent(f"""
    version: 1
    backends: {{openai: {{provider: openai}}}}
    target: {{python: "experiment_targets:ask"}}
    load: {{requests: 10, rate: 20/s}}
    phases: {{baseline: {{requests: 2}}, recovery: {{requests: 2}}}}
    faults: [{{backend: openai, kind: outage, probability: {probability}}}]
    hypothesis:
    """) + textwrap.indent(textwrap.dedent(checks).replace("URL", server_url), "  ")


def run(tmp_path: Path, server: Server, text: str) -> dict[str, dict[str, object]]:
    spec = tmp_path / "exp.yaml"
    spec.write_text(text)
    journal = tmp_path / "journal.json"
    args = ["run", str(spec), "--quiet", "--seed", "1", "--journal", str(journal)]
    main([*args, "--metrics-port", str(server.metrics_port)])
    return {c["name"]: c for c in json.loads(journal.read_text())["checks"]}


def test_alert_that_does_not_fire_fails_the_check(tmp_path: Path, prometheus: Server) -> None:
    # Runs first: no fault is ever injected, so the alert stays quiet.
    checks = run(tmp_path, prometheus, experiment(prometheus.url, 0.0, """
        - {check: prometheus, name: alert, url: "URL", alert: ALERT, within: 2s}
        - {check: prometheus, name: calls, url: "URL", query: "sum(aichaos_calls_total)",
           min: 1}
        - {check: prometheus, name: bad query, url: "URL", query: "sum(", max: 1}
        - {check: prometheus, name: down, url: "http://127.0.0.1:9", query: up, max: 1}
    """.replace("ALERT", ALERT)))  # fmt: skip
    assert checks["alert"]["result"] == "FAIL"
    assert f"{ALERT} was not firing within 2.00s" in str(checks["alert"]["detail"])
    assert checks["calls"]["result"] == "PASS", checks["calls"]["detail"]
    assert checks["bad query"]["result"] == "FAIL"
    assert "Prometheus rejected the query (bad_data)" in str(checks["bad query"]["detail"])
    assert checks["down"]["result"] == "FAIL"
    assert "cannot reach Prometheus at http://127.0.0.1:9" in str(checks["down"]["detail"])


def test_alert_that_fires_passes_the_check(tmp_path: Path, prometheus: Server) -> None:
    checks = run(tmp_path, prometheus, experiment(prometheus.url, 1.0, """
        - {check: prometheus, name: alert, url: "URL", alert: ALERT, within: 60s}
        - {check: prometheus, name: faults, url: "URL",
           query: "sum(aichaos_faults_injected_total)", min: 1}
    """.replace("ALERT", ALERT)))  # fmt: skip
    assert checks["alert"]["result"] == "PASS", checks["alert"]
    assert "firing" in str(checks["alert"]["detail"])
    assert checks["faults"]["result"] == "PASS", checks["faults"]
    assert checks["faults"]["value"] == 10  # each of the 10 inject calls met the outage once


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("query: up", "needs `min`, `max` or both"),
        ("alert: X", "needs `within`"),
        ("query: up, alert: X, max: 1", "either `query`"),
        ("alert: X, within: 1s, max: 1", "go with `query`"),
        ("url: ftp://x, query: up, max: 1", "http:// or https://"),
    ],
)
def test_bad_prometheus_checks_are_input_errors(fields: str, message: str) -> None:
    url = "" if "url:" in fields else 'url: "http://127.0.0.1:9090", '
    text = experiment("", 0.0, f"- {{check: prometheus, {url}{fields}}}")
    with pytest.raises(ExperimentError, match="hypothesis") as error:
        parse_experiment(text, base_dir=TESTS)
    assert message in error.value.format()


def test_bad_prometheus_check_exits_2(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(experiment("", 0.0, "- {check: prometheus, url: 'http://x', query: up}"))
    assert main(["run", str(spec)]) == 2
