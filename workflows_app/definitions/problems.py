"""Problems of a document, each placed by the path of the value it is about."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a definition, placed as precisely as the source allows."""

    source: str
    message: str
    step: str | None = None  # step id, "#3" (third step, no usable id), or service name
    field: str | None = None  # "timeout", "next[0].if", "retry.max", "on.rejected"
    line: int | None = None
    workflow: str | None = None  # workflow id, or "#2" (second document, no usable id)
    scope: str = "step"  # what `step` names: "step" or "service"

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        parts = [_labelled("workflow", self.workflow), _labelled(self.scope, self.step)]
        parts.append(_labelled("field", self.field))
        about = ", ".join(p for p in parts if p)
        return f"{where}: {about}: {self.message}" if about else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able form for API error bodies."""
        keys = ("source", "workflow", "step", "field", "line", "message")
        return {key: getattr(self, key) for key in keys}


@dataclass(frozen=True, slots=True)
class Reference:
    """A name a document uses that only the database can check: a step's `service`, a
    `user:` assignee, a workflow step's child `workflow`. `place` is a Problem without a
    message, placed where the name is."""

    kind: str  # "service", "user" or "workflow"
    name: str
    place: Problem


class InvalidDefinition(Exception):
    """A definition or services document breaks the rules; `problems` lists every one.

    `references` are the names the refused documents use (checked against the database too,
    so that every problem is listed at once) and `services_named` the services they define.
    """

    def __init__(
        self,
        problems: Sequence[Problem],
        *,
        references: Sequence[Reference] = (),
        services_named: Sequence[str] = (),
    ) -> None:
        self.problems = list(problems)
        self.references = list(references)
        self.services_named = list(services_named)
        super().__init__(self.problems)  # args hold the problems, so the exception pickles

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


class Report:
    """Collects (path, message) pairs for one document and turns them into Problems."""

    def __init__(
        self, source: str, lines: Mapping[tuple, int] | None, workflow: str | None = None
    ) -> None:
        self.source, self.lines, self.workflow = source, lines or {}, workflow
        # The id of each step and branch with a usable one, by its path in the document:
        # ("steps", 2) is the third step; ("steps", 2, "parallel", 0) its first branch.
        self.step_labels: dict[tuple, str] = {}
        self.branch_labels: dict[tuple, str] = {}
        self.targets: list[tuple[tuple, str]] = []  # (path, target) checked once ids are known
        self.found: list[tuple[tuple, str]] = []
        self.named: list[tuple[str, str, tuple]] = []  # (kind, name, path) for the database
        self.services_named: list[str] = []  # services a services document defines

    def refer(self, kind: str, name: str, path: tuple) -> None:
        """Note a name only the database can check (a service, a user) used at `path`."""
        self.named.append((kind, name, path))

    def references(self) -> list[Reference]:
        """The names noted with `refer`, each placed for a problem about it."""
        return [Reference(kind, name, self.make(path, "")) for kind, name, path in self.named]

    def add(self, path: tuple, message: str) -> None:
        """Note a problem at `path` (a tuple of keys and indexes from the document root)."""
        self.found.append((path, message))

    def is_clean(self, path: tuple) -> bool:
        """No problem noted at or below `path` so far."""
        return not any(found[: len(path)] == path for found, _ in self.found)

    def line_of(self, path: tuple) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def make(self, path: tuple, message: str) -> Problem:
        """A Problem for `path`: its innermost step (or service), field and line."""
        step, scope, rest = None, "step", path
        if end := step_path_end(path):
            step, rest = self.step_label(path[:end]), path[end:]
        elif len(path) >= 2 and path[0] == "services":
            step, scope, rest = str(path[1]), "service", path[2:]
        line = self.line_of(path)
        return Problem(self.source, message, step, field_name(rest), line, self.workflow, scope)

    def step_label(self, step_path: tuple) -> str:
        """The step's id, or its position: "#3", or "#2 of branch 'fire'" inside a branch."""
        if step_path in self.step_labels:
            return self.step_labels[step_path]
        position = f"#{step_path[-1] + 1}"
        if len(step_path) == 2:
            return position
        branch = self.branch_labels.get(step_path[:-2])
        return f"{position} of branch '{branch}'" if branch else f"{position} of a branch"

    def problems(self) -> list[Problem]:
        """Every problem noted, in line order."""
        made = [self.make(path, message) for path, message in self.found]
        return sorted(made, key=lambda p: p.line or 0)


def step_path_end(path: tuple) -> int:
    """The length of the path of the innermost step `path` is in (0: none): steps are at
    ("steps", i) and, inside branches, ("steps", i, "parallel", b, "steps", j)."""
    end = 0
    for at in range(len(path) - 1):
        if path[at] == "steps" and isinstance(path[at + 1], int) and _nested_right(path, at):
            end = at + 2
    return end


def _nested_right(path: tuple, at: int) -> bool:
    """("steps", i) at the root, or right after ("parallel", b) of a step."""
    return at == 0 or (at >= 2 and path[at - 2] == "parallel" and isinstance(path[at - 1], int))


def field_name(path: tuple) -> str | None:
    """("next", 0, "if") -> "next[0].if"; () -> None."""
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    return text.lstrip(".") or None


def _labelled(label: str, value: str | None) -> str:
    """ "step 'approve'", "step #3", or "" when there is no value."""
    if not value:
        return ""
    return f"{label} {value}" if value.startswith("#") else f"{label} '{value}'"
