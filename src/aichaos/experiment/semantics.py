"""Checks across sections once the shapes are valid: names that must refer to something,
files that must exist, templates that must resolve; then, as a step of its own, the
functions that must import (`resolve_functions`)."""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from aichaos.cassette import CassetteError, read_cassette_dir, record_dir_problem
from aichaos.experiment.checks.base import Check
from aichaos.experiment.checks.kinds.attribution import IncompleteAnswers, ServedBy
from aichaos.experiment.checks.kinds.custom import PythonCheck
from aichaos.experiment.errors import KeyPath, Problem, unknown_backend_problem
from aichaos.experiment.functions import FunctionImportError, import_function
from aichaos.experiment.model import Experiment
from aichaos.experiment.prompts import (
    DEFAULT_PROMPT,
    PromptFileError,
    PromptRecord,
    messy_prompts,
    read_prompts_file,
    record_from,
)
from aichaos.experiment.target_specs import HttpTarget, PythonTarget
from aichaos.experiment.templating import name_problem, template_names
from aichaos.faults.spec import unknown_backend, unknown_backends
from aichaos.intercept.backends import Router
from aichaos.paths import UnreadableFile, read_text_file
from aichaos.providers import get_provider
from aichaos.safe_yaml import MAX_DOCUMENT_BYTES


class Findings:
    """Problems found so far, with their key paths (positions are added by the loader)."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: KeyPath, message: str, **extra: Any) -> None:
        self.problems.append(Problem(message, path, **extra))


def check_experiment(experiment: Experiment, base_dir: Path) -> tuple[list[Problem], list[Any]]:
    """Cross-section problems, and the prompt records when they could be read."""
    found = Findings()
    backends = list(experiment.backends)
    _backend_hosts(experiment, found)
    _cassettes(experiment, base_dir, found)
    _network_library(experiment, found)
    for place, fault in experiment.all_faults():
        for unknown in unknown_backends(fault, backends):
            found.problems.append(
                unknown_backend_problem((*place, "backend"), unknown, wildcard=True)
            )
    phases = experiment.phases
    enabled = [n for n in ("baseline", "inject", "recovery") if getattr(phases, n) is not None]
    if experiment.faults and phases.inject is None:
        found.add(("phases", "inject"), "faults only act in the inject phase, which is off")
    for section in ("hypothesis", "stop_when"):
        for i, check in enumerate(getattr(experiment, section)):
            _check_entry(section, i, check, backends, enabled, found)
            if isinstance(check, IncompleteAnswers):
                _observable(experiment, (section, i, "check"), found)
    _target(experiment, base_dir, found)
    prompts = _prompts(experiment, base_dir, found)
    return found.problems, prompts


def _backend_hosts(experiment: Experiment, found: Findings) -> None:
    if experiment.target.python is None:
        return  # apps out of process reach backends through the proxy, which routes by path
    try:
        Router(experiment.backends)
    except ValueError as exc:
        found.add(("backends",), str(exc))


def _cassettes(experiment: Experiment, base_dir: Path, found: Findings) -> None:
    """Cassette directories resolve against the experiment's folder; a replayed one must be
    readable now (run reads it before anything starts)."""
    for name, spec in list(experiment.backends.items()):
        spec = experiment.backends[name] = spec.with_paths_from(base_dir)
        if spec.record is not None:
            problem = record_dir_problem(Path(spec.record))
            if problem is not None:
                found.add(("backends", name, "record"), problem)
        directory = spec.replay_dir
        if directory is None:
            continue
        try:
            read_cassette_dir(directory)
        except CassetteError as exc:
            found.add(
                ("backends", name, "upstream"),
                str(exc),
                expected="a directory of cassette files, as `aichaos proxy --record DIR` writes",
            )


def _network_library(experiment: Experiment, found: Findings) -> None:
    """`run` refuses network faults without toxiproxy-python: so does validation."""
    network = [place for place, fault in experiment.all_faults() if fault.kind == "network"]
    if not network:
        return
    try:
        importlib.import_module("toxiproxy")
    except ImportError:
        from aichaos.network.client import INSTALL_HINT

        found.add(
            (*network[0], "kind"),
            "network faults drive Toxiproxy through toxiproxy-python, which is not installed:"
            f" {INSTALL_HINT}",
        )


def _check_entry(
    section: str, i: int, check: Check, backends: list[str], enabled: list[str], found: Findings
) -> None:
    path: KeyPath = (section, i)
    if check.phase is not None and check.phase not in enabled:
        found.add((*path, "phase"), f"phase {check.phase!r} is switched off in `phases`")
    if section == "hypothesis":
        for key in ("window", "min_calls"):
            if getattr(check, key) is not None:
                found.add((*path, key), f"{key!r} only applies to stop_when conditions")
    elif not check.windowed:
        found.add(
            (*path, "check"),
            f"{check.check!r} cannot be judged over a sliding window; use it in hypothesis",
        )
    unknown = unknown_backend(check.backend, backends) if isinstance(check, ServedBy) else None
    if unknown is not None:
        found.problems.append(unknown_backend_problem((*path, "backend"), unknown))


def _observable(experiment: Experiment, path: KeyPath, found: Findings) -> None:
    """Checks on upstream answers need the target's model calls to go through aichaos."""
    http = experiment.target.http
    if http is None:
        return  # in-process calls are intercepted; commands get the proxy in their environment
    values = (http.url, http.headers, http.json_body, http.body)
    if not any(n.startswith("backends.") for v in values for n in template_names(v)):
        found.add(
            path,
            "incomplete_answers judges the answers the app gets from its backends, which aichaos"
            " cannot observe for this http target: nothing tells the app where the chaos proxy is",
            expected="`{{backends.NAME.url}}` passed to the app in the request (url, headers,"
            " json or body), or a `command` target",
        )


def _target(experiment: Experiment, base_dir: Path, found: Findings) -> None:
    target = experiment.target
    backends = list(experiment.backends)
    if target.http is not None:
        _http_templates(target.http, ("target", "http"), backends, False, found)
    if target.command is not None:
        command = target.command
        path: KeyPath = ("target", "command")
        files = list(command.files)
        _http_templates(command.http, (*path, "http"), backends, True, found, files)
        for key, value in (("run", command.run), ("env", command.env), ("ready", command.ready)):
            raw = value.model_dump() if isinstance(value, BaseModel) else value
            _templates(raw, (*path, key), backends, True, False, found, files)
        for name, template in command.files.items():
            where = (*path, "files", name)
            try:
                text = read_text_file(base_dir / template, MAX_DOCUMENT_BYTES, "template")
            except UnreadableFile as exc:
                found.add(where, str(exc))
                continue
            _templates(text, where, backends, True, False, found, files)
        if command.cwd is not None and not (base_dir / command.cwd).is_dir():
            found.add((*path, "cwd"), f"directory {command.cwd!r} does not exist")


def _http_templates(
    spec: HttpTarget,
    path: KeyPath,
    backends: list[str],
    port: bool,
    found: Findings,
    files: Sequence[str] = (),
) -> None:
    for key in ("url", "headers", "json", "body"):
        value = spec.json_body if key == "json" else getattr(spec, key)
        _templates(value, (*path, key), backends, port, True, found, files)


def _templates(
    value: Any,
    path: KeyPath,
    backends: list[str],
    port: bool,
    per_call: bool,
    found: Findings,
    files: Sequence[str] = (),
) -> None:
    for name in template_names(value):
        problem = name_problem(name, backends, allow_port=port, per_call=per_call, files=files)
        if problem:
            found.add(path, problem)


def _prompts(experiment: Experiment, base_dir: Path, found: Findings) -> list[PromptRecord]:
    load = experiment.load
    records: list[PromptRecord] = []
    for i, value in enumerate(load.prompts or []):
        try:
            records.append(record_from(value, "inline"))
        except ValueError as exc:
            found.add(("load", "prompts", i), str(exc))
    if load.prompts_file is not None:
        try:
            records += read_prompts_file(base_dir / load.prompts_file)
        except PromptFileError as exc:
            found.add(("load", "prompts_file"), str(exc))
    if not records:
        records.append(PromptRecord(DEFAULT_PROMPT, {}, "default"))
    if load.messy:
        records += messy_prompts(list(load.messy))
    return records


def placeholder_keys(experiment: Experiment) -> dict[str, str]:
    """Fake API keys for mock and replayed backends whose SDK key is not set: SDKs refuse
    to start without one, and neither the mock nor a cassette needs one."""
    keys = {}
    for spec in experiment.backends.values():
        sdk = get_provider(spec.provider).sdk_env
        if not spec.is_remote and sdk is not None and sdk.api_key not in os.environ:
            keys[sdk.api_key] = sdk.placeholder_key
    return keys


def set_placeholder_keys(experiment: Experiment) -> None:
    """Let SDK clients be built offline in-process (python targets)."""
    for name, value in placeholder_keys(experiment).items():
        os.environ.setdefault(name, value)


def resolve_functions(experiment: Experiment, base_dir: Path) -> list[Problem]:
    """Import the python target's and python checks' functions and bind them; each
    failure is a problem. `sys.path` is changed only while importing."""
    found = Findings()
    entries: list[tuple[KeyPath, PythonTarget | PythonCheck]] = []
    if experiment.target.python is not None:
        set_placeholder_keys(experiment)
        entries.append((("target", "python"), experiment.target.python))
    for section in ("hypothesis", "stop_when"):
        for i, check in enumerate(getattr(experiment, section)):
            if isinstance(check, PythonCheck):
                entries.append(((section, i, "function"), check))
    for path, holder in entries:
        try:
            holder.bind(import_function(holder.function, base_dir))
        except FunctionImportError as exc:
            found.add(path, exc.message, expected=exc.expected, suggestion=exc.suggestion)
    return found.problems
