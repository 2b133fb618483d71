"""JUnit XML: one test case per hypothesis check (CI systems show each as a test)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from aichaos.experiment.run_result import RunResult
from aichaos.report.journal import phase_dict
from aichaos.report.redact import Redactor
from aichaos.report.summary import phase_rows, timeline_rows


def _suite(result: RunResult, redactor: Redactor) -> ET.Element:
    experiment = result.experiment
    stem = experiment.source.stem if experiment.source else "experiment"
    failures = sum(1 for c in result.checks if not c.passed)
    errors = 1 if result.status in ("aborted", "interrupted") else 0
    suite = ET.Element(
        "testsuite",
        name=redactor.text(experiment.name),
        tests=str(len(result.checks) + errors),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        time=f"{result.duration:.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    file = str(experiment.source) if experiment.source else ""
    where: dict[str, str] = {"file": file} if file else {}  # the file as given, for CI to link
    for name, value in (("seed", result.seed), ("status", result.status), ("file", file)):
        ET.SubElement(properties, "property", name=name, value=str(value))
    for check in result.checks:
        attrib = {"classname": f"aichaos.{stem}", "name": redactor.text(check.name)}
        case = ET.SubElement(suite, "testcase", {**attrib, "time": "0", **where})
        value = "-" if check.value is None else f"{check.value:.6g}"
        summary = f"{check.check} ({check.phase}): measured {value}, bound {check.bound}"
        if not check.passed:
            summary = f"{check.verdict}: {summary}"
            failure = ET.SubElement(
                case, "failure", message=redactor.text(summary), type=check.check
            )
            failure.text = redactor.text(check.detail)
        else:
            ET.SubElement(case, "system-out").text = redactor.text(f"{summary}. {check.detail}")
    if any(p.stage for p in result.phases):
        # The timeline (phases, stages, when each fault was active), for the CI's log view.
        journal = {"phases": [phase_dict(p) for p in result.phases]}
        lines = [
            f"{t.kind} {t.name}: {t.start} to {t.end}"
            + ("" if t.completed else " (stopped early)")
            + f"; calls {r.calls}, success {r.success}, p95 {r.p95}; faults: {t.faults}"
            for t, r in zip(timeline_rows(journal), phase_rows(journal), strict=True)
        ]
        ET.SubElement(suite, "system-out").text = redactor.text("\n".join(lines))
    if errors:
        attrib = {"classname": f"aichaos.{stem}", "name": "run", "time": "0", **where}
        case = ET.SubElement(suite, "testcase", attrib)
        reason = redactor.text(result.reason or result.status)
        ET.SubElement(case, "error", message=reason, type=result.status).text = reason
    return suite


def junit_xml(results: RunResult | Sequence[RunResult]) -> str:
    """The JUnit XML text for one run or several."""
    runs = [results] if isinstance(results, RunResult) else list(results)
    root = ET.Element("testsuites", name="aichaos")
    for result in runs:
        spec = result.experiment.model_dump(mode="json", by_alias=True)
        root.append(_suite(result, Redactor.for_run(spec)))
    root.set("tests", str(sum(int(s.get("tests", "0")) for s in root)))
    root.set("failures", str(sum(int(s.get("failures", "0")) for s in root)))
    root.set("errors", str(sum(int(s.get("errors", "0")) for s in root)))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(results: RunResult | Sequence[RunResult], path: str | Path) -> Path:
    """Write JUnit XML (one test suite per run, one test case per check)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(junit_xml(results), encoding="utf-8")
    return target
