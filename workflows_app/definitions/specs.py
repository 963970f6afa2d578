"""The frozen dataclasses a valid document becomes, and small helpers about them."""

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cel

from .cel_cost import CostShape
from .durations import Duration
from .languages import Text, in_language
from .problems import Problem, Reference, Report
from .retention import Retention

TERMINALS = frozenset({"end", "reject", "fail"})
JOIN_MODES = ("all", "any")
MAIN_LANE = ""  # the lane of a workflow's own list of steps; a branch's lane is its id


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often an automated step is retried, and the base delay between tries."""

    max: int = 3  # retries AFTER the first attempt (max: 2 -> at most 3 requests)
    backoff: Duration = Duration(10, text="10s")  # base delay; the dispatcher doubles it


@dataclass(frozen=True, slots=True)
class Condition:
    """One `{if, goto}` entry of a step's `next` list; the CEL program is compiled at load."""

    condition: str
    goto: str
    program: "cel.Program" = field(compare=False, repr=False)
    cost: CostShape = field(default=CostShape(), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One step of a workflow as written, validated: it runs a service, parallel branches
    (`parallel`, joined by `join`) or a child instance of another workflow (`workflow`)."""

    id: str
    service: str
    title: Text = ""  # text, or a language map (docs/definitions.md, Languages)
    description: Text = ""
    timeout: Duration | None = None
    on_timeout: str | None = None  # None: the engine picks (fail, or escalate for human steps)
    escalate_to: tuple[str, ...] = ()
    assignee: str | None = None
    retry: RetryPolicy | None = None
    next: str | None = None
    conditions: tuple[Condition, ...] = ()
    on: Mapping[str, str] = field(default_factory=dict)
    parallel: tuple["BranchSpec", ...] = ()
    join: str = "all"  # all: every branch ends; any: the first one (the others are cancelled)
    workflow: str = ""  # the key of the workflow a child instance runs

    @property
    def kind(self) -> str:
        """ "service", "parallel" or "workflow"."""
        return "parallel" if self.parallel else "workflow" if self.workflow else "service"

    @property
    def display_title(self) -> str:
        """The title in the active language, or the id made readable ("checkDocs" -> "Check
        docs")."""
        return in_language(self.title) or humanize(self.id)

    @property
    def display_description(self) -> str:
        """The description in the active language, or ""."""
        return in_language(self.description)

    @property
    def targets(self) -> tuple[str, ...]:
        """Every step id or terminal this step may route to, in the order written."""
        found = [*self.on.values(), *(b.goto for b in self.conditions)]
        return tuple(dict.fromkeys([*found, self.next] if self.next else found))


@dataclass(frozen=True, slots=True)
class BranchSpec:
    """One branch of a parallel step: its own list of steps, run beside the other branches."""

    id: str
    steps: tuple[StepSpec, ...]
    title: Text = ""

    @property
    def display_title(self) -> str:
        """The title in the active language, or the id made readable."""
        return in_language(self.title) or humanize(self.id)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a step is written: its lane (MAIN_LANE or a branch id), the list it is in, and
    the path of the step in the document (for problems found later)."""

    step: StepSpec
    lane: str
    siblings: tuple[StepSpec, ...]
    index: int
    path: tuple
    order: int  # its position among all steps, in definition order (depth first)


@dataclass(frozen=True, slots=True)
class WorkflowSpec:
    """A validated workflow definition; `source` is the document as loaded."""

    id: str
    steps: tuple[StepSpec, ...]
    name: Text = ""  # text, or a language map
    description: Text = ""
    public: bool = False
    input_schema: Mapping[str, Any] | None = None
    source: Mapping[str, Any] = field(default_factory=dict, compare=False)
    origin: str = field(default="", compare=False, repr=False)  # file name, "<admin>", ...
    lines: Mapping[tuple, int] = field(default_factory=dict, compare=False, repr=False)
    # Services and users it names, placed for problems: checked against the database.
    references: tuple[Reference, ...] = field(default=(), compare=False, repr=False)
    deadline: Duration | None = None  # start to end, not counting waits for the applicant
    retention: Retention | None = None  # after the end, until personal data is purged
    _places: Mapping[str, Place] = field(init=False, compare=False, repr=False)
    _forks: Mapping[str, tuple[BranchSpec, str]] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        places: dict[str, Place] = {}
        forks: dict[str, tuple[BranchSpec, str]] = {}
        _index_steps(self.steps, MAIN_LANE, ("steps",), places, forks)
        object.__setattr__(self, "_places", places)
        object.__setattr__(self, "_forks", forks)

    def step(self, step_id: str) -> StepSpec:
        """The step with this id, in any branch; KeyError if there is none."""
        return self._places[step_id].step

    def following(self, step_id: str) -> str:
        """The step after `step_id` in its own list (the workflow's or its branch's), or
        "end" after the last one (for a branch: the branch ends)."""
        place = self._places[step_id]
        index = place.index + 1
        return place.siblings[index].id if index < len(place.siblings) else "end"

    def lane_of(self, step_id: str) -> str:
        """MAIN_LANE for the workflow's own steps, else the id of the branch holding the step."""
        return self._places[step_id].lane

    def branch(self, branch_id: str) -> BranchSpec:
        """The branch with this id; KeyError if there is none."""
        return self._forks[branch_id][0]

    def fork_of(self, branch_id: str) -> str:
        """The id of the parallel step a branch belongs to."""
        return self._forks[branch_id][1]

    def order_of(self, step_id: str) -> int:
        """The step's position in definition order (depth first: a parallel step, then its
        branches' steps, then the steps after it)."""
        return self._places[step_id].order

    @property
    def all_steps(self) -> tuple[StepSpec, ...]:
        """Every step, branches' steps included, in definition order."""
        return tuple(place.step for place in self._places.values())

    @property
    def branch_ids(self) -> tuple[str, ...]:
        """Every branch id, in definition order."""
        return tuple(self._forks)

    @property
    def is_single_lane(self) -> bool:
        """No parallel step: an instance is only ever at one step."""
        return not self._forks

    @property
    def first_step(self) -> str:
        """The id of the step an instance starts with."""
        return self.steps[0].id

    @property
    def step_ids(self) -> tuple[str, ...]:
        """Step ids in list order."""
        return tuple(s.id for s in self.steps)

    @property
    def display_name(self) -> str:
        """The name in the active language, or the id made readable ("building-permit" ->
        "Building permit")."""
        return in_language(self.name) or humanize(self.id)

    @property
    def display_description(self) -> str:
        """The description in the active language, or ""."""
        return in_language(self.description)

    def digest(self) -> str:
        """sha256 hex of the canonical JSON of `source`: same document, same digest."""
        return digest_of(self.source)

    def problem(self, message: str, *, step: str | None = None, path: tuple = ()) -> Problem:
        """A Problem placed at `path` (inside `step` when given), for checks made elsewhere."""
        report = Report(self.origin or "<definition>", self.lines, workflow=self.id)
        report.step_labels = {place.path: key for key, place in self._places.items()}
        full = (*self._places[step].path, *path) if step is not None else path
        return report.make(full, message)


def _index_steps(
    steps: tuple[StepSpec, ...],
    lane: str,
    path: tuple,
    places: dict[str, Place],
    forks: dict[str, tuple[BranchSpec, str]],
) -> None:
    """Record every step's place and every branch's parallel step, depth first."""
    for index, step in enumerate(steps):
        places[step.id] = Place(step, lane, steps, index, (*path, index), len(places))
        for number, branch in enumerate(step.parallel):
            forks[branch.id] = (branch, step.id)
            inner = (*path, index, "parallel", number, "steps")
            _index_steps(branch.steps, branch.id, inner, places, forks)


@dataclass(frozen=True, slots=True)
class FormField:
    """One thing an `applicant` service asks for (docs/http-services.md, applicant services)."""

    name: str
    label: Text = ""  # text, or a map of language code to text
    type: str = "text"  # text, textarea, number, date, choice, file
    required: bool = False
    choices: tuple[tuple[str, Text], ...] = ()  # (value, label) of a choice
    accept: tuple[str, ...] = ()  # file: the document types allowed (pdf, png, jpg, ...)
    max_size: int | None = None  # file: the largest document, in bytes

    @property
    def display_label(self) -> str:
        """The label in the active language, or the name made readable ("sitePlan" -> "Site
        plan")."""
        return in_language(self.label) or humanize(self.name)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A validated service registration (kind http, human or python)."""

    name: str
    kind: str
    url: str = ""
    timeout: Duration | None = None
    secret: str = ""
    secret_env: str = ""
    concurrency: int | None = None  # calls in flight at once per cluster; None: the default
    group: str = ""
    backup_group: str = ""
    callable: str = ""
    form: tuple[FormField, ...] = ()  # applicant: what the applicant is asked
    source: Mapping[str, Any] = field(default_factory=dict, compare=False)
    origin: str = field(default="", compare=False, repr=False)
    lines: Mapping[tuple, int] = field(default_factory=dict, compare=False, repr=False)

    def problem(self, message: str, *, path: tuple = ()) -> Problem:
        """A Problem about this service (at `path` inside it), for checks made elsewhere."""
        report = Report(self.origin or "<services>", self.lines)
        return report.make(("services", self.name, *path), message)


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    """A validated status-webhook subscription (docs/webhooks.md)."""

    name: str
    url: str
    secret: str
    events: tuple[str, ...] = ("instance.updated",)
    workflows: tuple[str, ...] = ()  # empty: every workflow


@dataclass(frozen=True, slots=True)
class Document:
    """Everything one file holds."""

    workflows: tuple[WorkflowSpec, ...] = ()
    services: tuple[ServiceSpec, ...] = ()
    subscriptions: tuple[SubscriptionSpec, ...] = ()


def humanize(name: str) -> str:
    """A readable title from an id: "check-docs", "check_docs", "checkDocs" -> "Check docs"."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("-", " ").replace("_", " ")
    parts = [w.lower() if w[:1].isupper() and w[1:].islower() else w for w in words.split()]
    text = " ".join(parts)
    return text[:1].upper() + text[1:]


def digest_of(document: Any) -> str:
    """sha256 hex of canonical JSON (sorted keys, compact separators, UTF-8)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
