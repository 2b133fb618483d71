"""The admin API against an attacker: empty tokens, cross-site requests from a web page,
DNS rebinding, hostile bodies, and the `aichaos fault` client's own input."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from aichaos.cli import build_parser, main
from aichaos.commands.fault import DEFAULT_ADMIN
from aichaos.proxy import AdminExposedError, RunningProxy, serve_proxy_in_thread
from aichaos.proxy.admin import AdminAPI, AdminTokenError
from aichaos.proxy.stats import ProxyStats
from proxy_helpers import make_session

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def proxy() -> Iterator[RunningProxy]:
    with serve_proxy_in_thread(make_session({"openai": "openai"})) as running:
        yield running


@pytest.fixture
def admin(proxy: RunningProxy) -> Iterator[str]:
    proxy.session.engine.clear()
    proxy.session.engine.paused = False
    yield proxy.admin_url
    proxy.session.engine.clear()
    proxy.session.engine.paused = False


@pytest.mark.parametrize("token", ["", "  ", "pässword", "two words"])
def test_unusable_tokens_are_refused(token: str) -> None:
    session = make_session({"openai": "openai"})
    with pytest.raises(AdminTokenError):
        AdminAPI(session, ProxyStats(), token=token)
    with (
        pytest.raises(AdminExposedError),
        serve_proxy_in_thread(session, "0.0.0.0", admin_token=token),
    ):
        pass


def test_proxy_command_refuses_an_empty_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["proxy", "--host", "0.0.0.0", "--admin-token", ""]) == 2
    assert "admin token is empty" in capsys.readouterr().err
    monkeypatch.setenv("AICHAOS_ADMIN_TOKEN", "")
    assert main(["proxy", "--host", "0.0.0.0"]) == 2
    assert "admin token is empty" in capsys.readouterr().err


def test_cross_site_changes_are_refused(proxy: RunningProxy, admin: str) -> None:
    fault = json.dumps({"kind": "outage"})
    # what a web page can send without a preflight: text/plain, form data, or no body
    for headers in (
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},
        {},
    ):
        response = httpx.post(admin + "/faults", content=fault, headers=headers)
        assert response.status_code == 415, headers
        assert "application/json" in response.json()["error"]["message"]
        assert httpx.post(admin + "/pause", headers=headers).status_code == 415
        assert httpx.delete(admin + "/faults", headers=headers).status_code == 415
    assert proxy.session.engine.faults == [] and proxy.session.engine.paused is False
    page = {**JSON, "origin": "https://evil.example"}
    refused = httpx.post(admin + "/faults", content=fault, headers=page)
    assert refused.status_code == 403 and "origin" in refused.json()["error"]["message"]
    assert (
        httpx.post(admin + "/faults", content=fault, headers={**JSON, "origin": "null"}).status_code
        == 403
    )
    assert proxy.session.engine.faults == []
    own = {**JSON, "origin": proxy.base_url}
    assert httpx.post(admin + "/faults", content=fault, headers=own).status_code == 201
    assert (
        httpx.get(admin + "/faults", headers={"origin": "https://evil.example"}).status_code == 200
    )


def test_dns_rebinding_is_refused_without_a_token(proxy: RunningProxy, admin: str) -> None:
    rebound = {"host": "attacker.example"}
    response = httpx.get(admin + "/faults", headers=rebound)
    assert response.status_code == 403 and "Host" in response.json()["error"]["message"]
    assert httpx.post(admin + "/pause", headers={**rebound, **JSON}).status_code == 403
    assert proxy.session.engine.paused is False
    for host in (f"localhost:{proxy.port}", f"127.0.0.1:{proxy.port}", "[::1]", "app.localhost"):
        assert httpx.get(admin + "/faults", headers={"host": host}).status_code == 200, host


def test_a_request_without_host_is_refused_without_a_token(proxy: RunningProxy) -> None:
    # HTTP/1.0 may leave Host out; without one nothing shows the request was meant for loopback
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock:
        sock.sendall(b"GET /_aichaos/faults HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"403", head
    assert "loopback Host" in json.loads(body)["error"]["message"]


def test_a_token_allows_any_host(proxy: RunningProxy) -> None:
    with serve_proxy_in_thread(make_session({"openai": "openai"}), admin_token="t0k") as locked:
        headers = {"host": "proxy.internal:8800", "authorization": "Bearer t0k"}
        assert httpx.get(locked.admin_url + "/faults", headers=headers).status_code == 200
        # the token header itself forces a preflight: no content type needed
        assert httpx.post(locked.admin_url + "/pause", headers=headers).json() == {"paused": True}


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"kind": "latency", "delay": "1s", "x": ' + "[" * 5_000 + "]" * 5_000 + "}",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ],
    ids=["deep-list", "deep-field", "alias-bomb"],
)
def test_hostile_fault_bodies_get_a_json_400(proxy: RunningProxy, admin: str, body: str) -> None:
    response = httpx.post(admin + "/faults", content=body, headers=JSON)
    assert response.status_code == 400
    assert response.json()["error"]["message"]
    assert proxy.session.engine.faults == []


def test_a_bodiless_delete_needs_the_json_type_as_documented(admin: str) -> None:
    """docs/proxy.md: a bare DELETE is refused; with `content-type: application/json` and no
    body it removes the fault (the token header alone also does: see the token test)."""
    fault_id = httpx.post(admin + "/faults", json={"kind": "outage"}).json()["added"][0]
    assert httpx.delete(f"{admin}/faults/{fault_id}").status_code == 415
    removed = httpx.delete(f"{admin}/faults/{fault_id}", headers=JSON)
    assert removed.json() == {"removed": fault_id}
    with serve_proxy_in_thread(make_session({"openai": "openai"}), admin_token="t0ken") as tokened:
        bearer = {"authorization": "Bearer t0ken"}
        url = tokened.admin_url + "/faults"
        assert httpx.post(url, content='{"kind": "outage"}', headers=bearer).status_code == 201
        assert httpx.delete(url, headers=bearer).json() == {"cleared": 1}


def test_a_body_error_names_the_language_it_was_sent_in(admin: str) -> None:
    deep = '{"kind": "latency", "x": ' + "[" * 100 + "]" * 100 + "}"
    for media, language in (("application/json", "JSON"), ("application/yaml", "YAML")):
        answer = httpx.post(admin + "/faults", content=deep, headers={"content-type": media})
        message = answer.json()["error"]["message"]
        assert answer.status_code == 400
        assert message.startswith(f"not valid {language}: nested deeper than")
        assert ({"JSON", "YAML"} - {language}).pop() not in message


def test_fault_remove_escapes_the_id(
    proxy: RunningProxy, admin: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = proxy.stats.snapshot()["requests"]
    assert main(["fault", "remove", "--admin", proxy.base_url, "../../openai/v1/models"]) == 1
    assert "no fault '../../openai/v1/models'" in capsys.readouterr().err
    assert proxy.stats.snapshot()["requests"] == before  # nothing reached the proxied routes


def test_fault_command_defaults_to_the_proxy_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AICHAOS_ADMIN", raising=False)
    parser, _ = build_parser()
    assert parser.parse_args(["fault", "list"]).admin == DEFAULT_ADMIN == "http://127.0.0.1:8800"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fault", "list", "--admin", "http://[::1"], "not a URL"),
        (["fault", "list", "--admin", "http://127.0.0.1:99999"], "not a URL"),
        (["fault", "list", "--admin", "127.0.0.1:8800"], "give the proxy's URL"),
        (["fault", "list", "--token", "pässword"], "printable ASCII"),
        (["fault", "list", "--token", ""], "empty"),
        (["fault", "add", "--yaml", "[" * 5_000 + "]" * 5_000], "nested deeper"),
        (["fault", "add", "kind=" + "[" * 5_000], "fault kind"),
    ],
)
def test_fault_command_input_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_empty_or_slashed_id_removes_nothing(
    proxy: RunningProxy, admin: str, capsys: pytest.CaptureFixture[str]
) -> None:
    added = httpx.post(admin + "/faults", json={"kind": "outage"}, headers=JSON).json()["added"]
    for fault_id in ("", " ", "/"):
        code = main(["fault", "remove", "--admin", proxy.base_url, fault_id])
        assert code in (1, 2) and "Traceback" not in capsys.readouterr().err
    response = httpx.delete(admin + "/faults/", headers=JSON)
    assert response.status_code == 400 and "give the id" in response.json()["error"]["message"]
    assert [f.id for f in proxy.session.engine.faults] == added  # still there
    assert main(["fault", "remove", "--admin", proxy.base_url, f"{added[0]}/"]) == 1
    assert [f.id for f in proxy.session.engine.faults] == added
