"""docker-compose.yml, the Dockerfile and the game-day files they name, checked without Docker.

Docker's engine is not available where these tests run, so they read the files: every
service is an official image or built from this repository's Dockerfile, every command
parses with aichaos's own command line, every file named exists, ports and depends_on
are consistent, and the experiment's Toxiproxy proxies are the ones Toxiproxy starts with.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from aichaos.cli import COMMANDS, build_parser
from aichaos.experiment import load_experiment
from aichaos.faults.kinds.network import Network

ROOT = Path(__file__).resolve().parent.parent
OFFICIAL_IMAGES = ("ghcr.io/shopify/toxiproxy:",)  # Shopify's own Toxiproxy image
WORKDIR = "/app"  # the Dockerfile's WORKDIR: the repository's files are under it


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def dockerfile_stages() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    return re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", text, flags=re.MULTILINE | re.IGNORECASE)


def argv(value: Any) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def test_the_stack_has_every_part_of_the_game_day(services: dict[str, dict[str, Any]]) -> None:
    assert {"toxiproxy", "mock", "aichaos-proxy", "app", "gameday"} <= set(services)
    assert services["gameday"]["profiles"] == ["run"]  # `up` does not start the run itself
    assert services["toxiproxy-tests"]["profiles"] == ["test"]


def test_every_image_is_official_or_built_from_this_repository(
    services: dict[str, dict[str, Any]],
) -> None:
    stages = dockerfile_stages()
    assert stages[-1] == "runtime"  # a plain `docker build .` gives the runtime image
    for name, service in services.items():
        build = service.get("build")
        if build is None:
            image = service["image"]
            assert image.startswith(OFFICIAL_IMAGES), f"{name}: {image} is not an official image"
            assert not image.endswith(":latest") and image.count(":") == 1, f"{name}: pin a tag"
            continue
        context = build if isinstance(build, str) else build["context"]
        assert (ROOT / context).resolve() == ROOT, f"{name}: builds from outside the repository"
        assert (ROOT / context / "Dockerfile").is_file()
        if isinstance(build, dict) and "target" in build:
            assert build["target"] in stages, f"{name}: no stage {build['target']!r}"


def test_the_dockerfile_installs_aichaos_with_the_toxiproxy_extra() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim AS base$", text, flags=re.MULTILINE)
    assert 'pip install ".[toxiproxy]"' in text
    runtime = text.split("AS runtime", 1)[1]
    assert 'ENTRYPOINT ["aichaos"]' in runtime and "USER aichaos" in runtime
    for copied in re.findall(r"^COPY\s+(.+?)\s+\S+$", text, flags=re.MULTILINE):
        for path in copied.split():
            assert (ROOT / path).exists(), f"Dockerfile copies {path}, which does not exist"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^toxiproxy = \["toxiproxy-python[^"]*"\]$', pyproject, flags=re.MULTILINE)


def test_aichaos_commands_parse_and_name_existing_files(
    services: dict[str, dict[str, Any]],
) -> None:
    parser, _ = build_parser()
    checked = 0
    for name, service in services.items():
        if service.get("image", "").startswith(OFFICIAL_IMAGES):
            continue
        entrypoint = argv(service.get("entrypoint"))
        command = argv(service.get("command"))
        build = service.get("build")
        if isinstance(build, dict) and build.get("target") == "test":
            assert command[0] == "pytest", name  # the test stage has no entrypoint
            files = [a for a in command[1:] if a.startswith("tests/")]
        elif entrypoint:  # an app shipped under experiments/, run with the image's python
            assert entrypoint[0] == "python" and entrypoint[1].startswith("experiments/"), name
            files = entrypoint[1:2]
        else:  # the image's entrypoint: aichaos
            assert command[0] in COMMANDS, f"{name}: aichaos has no command {command[0]!r}"
            try:
                args = parser.parse_args(command)
            except SystemExit:
                pytest.fail(f"{name}: `aichaos {' '.join(command)}` does not parse")
            files = [str(v) for v in vars(args).values() if isinstance(v, Path)]
            files += [a for a in command if a.endswith((".yaml", ".yml"))]
            checked += 1
        for file in files:
            assert (ROOT / file).is_file(), f"{name}: names {file}, which does not exist"
    assert checked >= 3  # mock, aichaos-proxy, gameday


def test_mounted_files_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: mounts {source}, which does not exist"


def test_ports_and_dependencies_are_consistent(services: dict[str, dict[str, Any]]) -> None:
    published: list[str] = []
    for name, service in services.items():
        for dep in service.get("depends_on", []):
            assert dep in services, f"{name} depends on {dep!r}, which is not a service"
            assert dep != name
        command = argv(service.get("command"))
        for port in service.get("ports", []):
            host_ip, host_port, container_port = str(port).split(":")
            assert host_ip == "127.0.0.1", f"{name}: publish on loopback only"
            published.append(host_port)
            if "--port" in command:
                assert command[command.index("--port") + 1] == container_port, name
            if "--host" in command:
                assert command[command.index("--host") + 1] == "0.0.0.0", name
    assert len(published) == len(set(published)), "a host port is published twice"


def test_the_proxy_binds_beyond_loopback_only_with_an_admin_token(
    services: dict[str, dict[str, Any]],
) -> None:
    proxy = services["aichaos-proxy"]
    command = argv(proxy["command"])
    assert command[command.index("--host") + 1] == "0.0.0.0"
    token = proxy.get("environment", {}).get("AICHAOS_ADMIN_TOKEN", "")
    # the token comes from the environment (a flag would show it in `ps`), set by the user
    assert "--admin-token" not in command
    assert token.startswith("${AICHAOS_ADMIN_TOKEN")


def test_the_app_reaches_its_backends_through_toxiproxy_then_the_aichaos_proxy(
    services: dict[str, dict[str, Any]],
) -> None:
    config = json.loads((ROOT / "experiments/apps/gameday/toxiproxy.json").read_text())
    toxiproxies = {p["name"]: p for p in config}
    listen_ports = {p["listen"].rpartition(":")[2]: p for p in config}
    env = services["app"]["environment"]
    for key, backend in (("PRIMARY_BASE_URL", "openai"), ("FALLBACK_BASE_URL", "claude")):
        match = re.fullmatch(r"http://toxiproxy:(\d+)/([^/]+)(/.*)?", env[key])
        assert match, f"app: {key} does not go through toxiproxy"
        port, path_backend = match.group(1), match.group(2)
        assert listen_ports[port]["name"] == backend and path_backend == backend
    proxy_command = argv(services["aichaos-proxy"]["command"])
    proxy_port = proxy_command[proxy_command.index("--port") + 1]
    for entry in toxiproxies.values():
        assert entry["listen"].startswith("0.0.0.0:")  # reachable from the app's container
        host, _, port = entry["upstream"].rpartition(":")
        assert host in services and port == proxy_port


def test_the_gameday_experiment_matches_the_stack(services: dict[str, dict[str, Any]]) -> None:
    experiment = load_experiment(ROOT / "experiments/gameday-network.yaml")
    config = json.loads((ROOT / "experiments/apps/gameday/toxiproxy.json").read_text())
    toxiproxies = {p["name"]: p for p in config}
    network = [f for f in experiment.faults if isinstance(f, Network)]
    others = [f for f in experiment.faults if not isinstance(f, Network)]
    assert network and others  # network faults via Toxiproxy, provider faults via the proxy
    for fault in network:
        proxy = toxiproxies[fault.proxy_name]
        spec = fault.proxy_spec
        assert spec.listen in (None, proxy["listen"]) and spec.upstream in (None, proxy["upstream"])
    # The file leaves the API URL to $TOXIPROXY_URL, which the stack's runner sets.
    raw = yaml.safe_load((ROOT / "experiments/gameday-network.yaml").read_text())
    assert all("toxiproxy" not in f for f in raw["faults"] if f["kind"] == "network")
    assert services["gameday"]["environment"]["TOXIPROXY_URL"] == "http://toxiproxy:8474"
    target = experiment.target.http
    assert target is not None and target.url.startswith("http://app:8000/")
    for spec in experiment.backends.values():
        assert spec.upstream == "http://mock:8900"
