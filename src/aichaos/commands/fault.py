"""`aichaos fault add/list/remove/clear/pause/resume --admin URL`: a running proxy's faults, live.

    aichaos fault add --admin http://127.0.0.1:8800 kind=outage backend=openai probability=0.5
    aichaos fault add --admin http://127.0.0.1:8800 --yaml '{kind: latency, delay: 2s}'
    aichaos fault list --admin http://127.0.0.1:8800
    aichaos fault remove --admin http://127.0.0.1:8800 f1
    aichaos fault pause --admin http://127.0.0.1:8800      # kill switch

Exit codes: 0 done, 1 the proxy refused or could not be reached, 2 invalid fault or usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any
from urllib.parse import quote, urlsplit

from aichaos.commands.options import add_admin_token
from aichaos.commands.proxy import DEFAULT_HOST, DEFAULT_PORT

DEFAULT_ADMIN = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"

_ACTIONS = {
    "add": "add a fault (key=value words, or --yaml)",
    "list": "list faults (pending, active or expired) with their counters",
    "remove": "remove faults by id",
    "clear": "remove every fault",
    "pause": "stop injecting (kill switch); faults stay listed",
    "resume": "inject again",
}


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    for name, help_text in _ACTIONS.items():
        sub = actions.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(  # --proxy, --admin-token: as `run --proxy URL --admin-token T`
            "--admin",
            "--proxy",
            dest="admin",
            default=os.environ.get("AICHAOS_ADMIN") or DEFAULT_ADMIN,
            metavar="URL",
            help=f"the proxy's URL (env AICHAOS_ADMIN; default {DEFAULT_ADMIN},"
            " where `aichaos proxy` listens by default)",
        )
        add_admin_token(
            sub, "admin token", flag="--token", metavar="TOKEN", aliases=("--admin-token",)
        )
        sub.add_argument("--json", action="store_true", help="print the API's JSON answer")
        if name == "add":
            sub.add_argument("--yaml", help="the fault as YAML/JSON: '{kind: outage, backend: x}'")
            sub.add_argument("fields", nargs="*", metavar="KEY=VALUE", help="kind=outage ...")
        elif name == "remove":
            sub.add_argument("ids", nargs="+", metavar="ID", help="fault ids, as listed")


def _admin_base(url: str) -> str:
    """The admin API's base from the proxy's URL; `_Failure` (exit 2) for a URL that is not one."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise _Failure(f"--admin {url!r} is not a URL: {exc}", 2) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Failure(f"--admin {url!r}: give the proxy's URL, e.g. {DEFAULT_ADMIN}", 2)
    base = url.strip().rstrip("/")
    return base if base.endswith("/_aichaos") else f"{base}/_aichaos"


def _check_token(token: str | None) -> None:
    from aichaos.proxy.admin import AdminTokenError, check_admin_token

    try:
        check_admin_token(token)
    except AdminTokenError as exc:
        raise _Failure(f"--token: {exc}", 2) from None


def _request(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    import httpx

    # JSON on every change: the admin API refuses changes a web page could send
    headers = {"content-type": "application/json"}
    if args.token is not None:
        headers["authorization"] = f"Bearer {args.token}"
    url = _admin_base(args.admin) + path
    content = None if body is None else json.dumps(body).encode()
    try:
        response = httpx.request(method, url, content=content, headers=headers, timeout=10.0)
    except httpx.HTTPError as exc:
        raise _Failure(f"cannot reach the proxy's admin API at {args.admin}: {exc}") from None
    try:
        payload = response.json()
    except ValueError:
        payload = {"error": {"message": response.text[:200]}}
    if response.status_code >= 400:
        message = payload.get("error", {}).get("message", response.reason_phrase)
        if response.status_code == 401:
            message += " (pass --token or set AICHAOS_ADMIN_TOKEN)"
        code = 2 if response.status_code == 400 else 1
        raise _Failure(f"{response.status_code}: {message}", code)
    return payload


class _Failure(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _faults_to_add(args: argparse.Namespace) -> list[dict[str, Any]]:
    from aichaos.faults.spec import build_fault, parse_assignments, parse_yaml

    items: list[dict[str, Any]] = []
    if args.yaml:
        items.extend(parse_yaml(args.yaml))
    if args.fields:
        items.append(parse_assignments(args.fields))
    if not items:
        raise _Failure("give the fault as KEY=VALUE words (kind=outage ...) or --yaml", 2)
    for item in items:
        build_fault(item)  # precise errors before anything is sent
    return items


def run(args: argparse.Namespace) -> int:
    from aichaos.faults.spec import FaultSpecError

    if args.action is None:
        print("aichaos fault: choose an action: " + ", ".join(_ACTIONS), file=sys.stderr)
        return 2
    try:
        _admin_base(args.admin)
        _check_token(args.token)
        if args.action == "add":
            payload = _request(args, "POST", "/faults", _faults_to_add(args))
            summary = "added " + ", ".join(payload["added"])
        elif args.action == "list":
            payload = _request(args, "GET", "/faults")
            summary = _listing(payload)
        elif args.action == "remove":
            if not all(fault_id.strip() for fault_id in args.ids):
                raise _Failure("an empty fault id: give the ids `aichaos fault list` shows", 2)
            removed = [
                _request(args, "DELETE", "/faults/" + quote(fault_id, safe=""))
                for fault_id in args.ids
            ]
            payload = {"removed": [item["removed"] for item in removed]}
            summary = "removed " + ", ".join(payload["removed"])
        elif args.action == "clear":
            payload = _request(args, "DELETE", "/faults")
            summary = f"cleared {payload['cleared']} fault(s)"
        else:
            payload = _request(args, "POST", f"/{args.action}")
            summary = "paused: no fault is injected" if payload["paused"] else "injecting again"
    except FaultSpecError as exc:
        print(f"aichaos fault: {exc}", file=sys.stderr)
        return 2
    except RecursionError:
        print("aichaos fault: the fault is nested too deeply", file=sys.stderr)
        return 2
    except _Failure as exc:
        print(f"aichaos fault: {exc}", file=sys.stderr)
        return exc.code
    print(json.dumps(payload, indent=2) if args.json else summary)
    return 0


def _listing(payload: dict[str, Any]) -> str:
    lines = ["injection PAUSED" if payload["paused"] else "injecting"]
    if not payload["faults"]:
        lines.append("no faults")
    for fault in payload["faults"]:
        spec = fault.get("spec") or {}
        params = " ".join(f"{k}={_value(v)}" for k, v in spec.items() if k != "kind")
        lines.append(
            f"{fault['id']:>4}  {fault.get('state', ''):<8} {fault['label']:<24}"
            f" matched={fault['matched']:<6}"
            f" injected={fault['injected']:<6} {params}"
        )
    return "\n".join(lines)


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
