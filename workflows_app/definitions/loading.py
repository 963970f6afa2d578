"""Load a file or text: every workflow and services document in it, or every problem."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .problems import InvalidDefinition, Problem, Report
from .service_rules import DEFAULT_PYTHON_PREFIXES, check_services
from .sources import Item, read_json, read_yaml
from .specs import Document
from .subscription_rules import check_subscriptions
from .workflow_rules import check_workflow

_FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}


def load_text(
    text: str,
    *,
    source: str,
    format: str | None = None,
    python_prefixes: Sequence[str] = DEFAULT_PYTHON_PREFIXES,
) -> Document:
    """Parse JSON or YAML text holding workflows and/or services; raise InvalidDefinition."""
    text = text.removeprefix("\ufeff")
    fmt = format or _guess_format(source, text)
    if fmt not in ("json", "yaml"):
        raise InvalidDefinition([Problem(source, f"unknown format '{fmt}'; use json or yaml")])
    items, problems = read_json(text, source) if fmt == "json" else read_yaml(text, source)
    if not items and not problems:
        problems = [Problem(source, "the file holds no workflow or services document")]
    document, found, reports = _check_items(items, source, python_prefixes)
    if problems or found:
        raise InvalidDefinition(
            [*found, *problems],
            references=[ref for report in reports for ref in report.references()],
            services_named=[name for report in reports for name in report.services_named],
        )
    return document


def load_file(
    path: str | Path, *, python_prefixes: Sequence[str] = DEFAULT_PYTHON_PREFIXES
) -> Document:
    """Read a .json, .yaml or .yml file and load it; unreadable files are problems too."""
    path, source = Path(path), str(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        message = f"unknown file type '{path.suffix}'; use .json, .yaml or .yml"
        raise InvalidDefinition([Problem(source, message)])
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise InvalidDefinition(
            [Problem(source, f"cannot read the file: {error.strerror}")]
        ) from None
    except UnicodeDecodeError as error:
        message = f"the file is not UTF-8 text (byte {error.start})"
        raise InvalidDefinition([Problem(source, message)]) from None
    return load_text(text, source=source, format=fmt, python_prefixes=python_prefixes)


def _guess_format(source: str, text: str) -> str:
    """From the extension of `source`, else JSON when the text starts with { or [."""
    fmt = _FORMATS.get(Path(source).suffix.lower())
    return fmt or ("json" if text.lstrip()[:1] in ("{", "[") else "yaml")


def _check_items(
    items: list[Item], source: str, prefixes: Sequence[str]
) -> tuple[Document, list[Problem], list[Report]]:
    """Validate every document of a file, and that workflow ids and service names are unique."""
    workflows, services, problems, reports = [], [], [], []
    subscriptions: list = []
    seen: dict[tuple, int | None] = {}
    for number, item in enumerate(items, 1):
        is_services = _is_services(item.data)
        label = None if is_services or len(items) == 1 else f"#{number}"
        report = Report(source, item.lines, workflow=label)
        for path, line in item.repeated:
            report.add(path, f"duplicate key '{path[-1]}'; line {line} sets it too")
        if is_services:
            found = check_services(item.data, report, prefixes)
            _check_unique([("services", s.name) for s in found], seen, report)
            services.extend(found)
            subscriptions.extend(check_subscriptions(item.data, report))
        else:
            workflow_id = item.data.get("id") if isinstance(item.data, Mapping) else None
            _check_unique(
                [("id", workflow_id)] if isinstance(workflow_id, str) else [], seen, report
            )
            if spec := check_workflow(item.data, report):
                workflows.append(spec)
        problems.extend(report.problems())
        reports.append(report)
    return Document(tuple(workflows), tuple(services), tuple(subscriptions)), problems, reports


def _check_unique(
    keys: list[tuple[str, str]], seen: dict[tuple, int | None], report: Report
) -> None:
    """Report a workflow id or service name that an earlier document of the file defined."""
    for key in keys:
        path = key if key[0] == "services" else ("id",)
        if key in seen:
            what = "service" if key[0] == "services" else "workflow id"
            where = f" (line {seen[key]})" if seen[key] else ""
            report.add(path, f"duplicate {what} '{key[1]}'; an earlier document defines it{where}")
        seen.setdefault(key, report.line_of(path))


def _is_services(data: Any) -> bool:
    """A services document has `services` and no workflow keys."""
    keys = set(data) if isinstance(data, Mapping) else set()
    return bool({"services", "subscriptions"} & keys) and not {"id", "steps"} & keys
