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

_ACTIONS = {
    "add": "add a fault (key=value words, or --yaml)",
    "list": "list active faults with their counters",
    "remove": "remove faults by id",
    "clear": "remove every fault",
    "pause": "stop injecting (kill switch); faults stay listed",
    "resume": "inject again",
}


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    for name, help_text in _ACTIONS.items():
        sub = actions.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--admin",
            default=os.environ.get("AICHAOS_ADMIN"),
            metavar="URL",
            help="the proxy's URL, e.g. http://127.0.0.1:8800 (env AICHAOS_ADMIN)",
        )
        sub.add_argument(
            "--token",
            default=os.environ.get("AICHAOS_ADMIN_TOKEN"),
            help="admin token (env AICHAOS_ADMIN_TOKEN)",
        )
        sub.add_argument("--json", action="store_true", help="print the API's JSON answer")
        if name == "add":
            sub.add_argument("--yaml", help="the fault as YAML/JSON: '{kind: outage, backend: x}'")
            sub.add_argument("fields", nargs="*", metavar="KEY=VALUE", help="kind=outage ...")
        elif name == "remove":
            sub.add_argument("ids", nargs="+", metavar="ID", help="fault ids, as listed")


def _admin_base(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/_aichaos") else f"{url}/_aichaos"


def _request(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    import httpx

    headers = {"authorization": f"Bearer {args.token}"} if args.token else {}
    url = _admin_base(args.admin) + path
    try:
        response = httpx.request(method, url, json=body, headers=headers, timeout=10.0)
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
    if not args.admin:
        print("aichaos fault: --admin URL is required (or set AICHAOS_ADMIN)", file=sys.stderr)
        return 2
    try:
        if args.action == "add":
            payload = _request(args, "POST", "/faults", _faults_to_add(args))
            summary = "added " + ", ".join(payload["added"])
        elif args.action == "list":
            payload = _request(args, "GET", "/faults")
            summary = _listing(payload)
        elif args.action == "remove":
            removed = [_request(args, "DELETE", f"/faults/{fault_id}") for fault_id in args.ids]
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
            f"{fault['id']:>4}  {fault['label']:<24} matched={fault['matched']:<6}"
            f" injected={fault['injected']:<6} {params}"
        )
    return "\n".join(lines)


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
