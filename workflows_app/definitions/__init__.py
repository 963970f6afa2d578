"""Parse and validate workflow definitions and services documents into frozen dataclasses.

Pure: no database, no network, no imports of named callables. Every problem of a document is
collected (file, workflow, step, field and line) before InvalidDefinition is raised, so an
author fixes a file in one pass. docs/definitions.md and docs/http-services.md describe the format.

Modules: specs (the dataclasses), problems (Problem, InvalidDefinition, placing by path),
workflow_rules, flow_rules (parallel and workflow steps), step_rules, route_rules and
service_rules (the checks), checks (helpers they share), sources (JSON/YAML text with line
numbers) and loading (load_text, load_file).
"""

from .durations import Duration, parse_duration
from .flow_rules import BRANCH_FIELDS, PARALLEL_FIELDS, WORKFLOW_STEP_FIELDS
from .form_rules import DEFAULT_ACCEPT, DOCUMENT_TYPES, FIELD_TYPES
from .languages import in_language, localized
from .loading import load_file, load_text
from .problems import InvalidDefinition, Problem, Reference
from .retention import Retention, parse_retention
from .route_rules import CEL_VARIABLES
from .service_rules import DEFAULT_PYTHON_PREFIXES, SERVICE_FIELDS, SERVICE_KINDS, parse_services
from .sizes import format_size, parse_size
from .specs import (
    JOIN_MODES,
    MAIN_LANE,
    TERMINALS,
    BranchSpec,
    Condition,
    Document,
    FormField,
    RetryPolicy,
    ServiceSpec,
    StepSpec,
    SubscriptionSpec,
    WorkflowSpec,
    digest_of,
    humanize,
)
from .step_rules import MAX_RETRIES, ON_TIMEOUT_ACTIONS, STEP_FIELDS
from .workflow_rules import WORKFLOW_FIELDS, parse_definition

__all__ = [
    "Retention",
    "parse_retention",
    "BRANCH_FIELDS",
    "CEL_VARIABLES",
    "DEFAULT_ACCEPT",
    "DOCUMENT_TYPES",
    "FIELD_TYPES",
    "DEFAULT_PYTHON_PREFIXES",
    "JOIN_MODES",
    "MAIN_LANE",
    "MAX_RETRIES",
    "ON_TIMEOUT_ACTIONS",
    "PARALLEL_FIELDS",
    "SERVICE_FIELDS",
    "SERVICE_KINDS",
    "STEP_FIELDS",
    "TERMINALS",
    "WORKFLOW_FIELDS",
    "WORKFLOW_STEP_FIELDS",
    "BranchSpec",
    "Condition",
    "Document",
    "Duration",
    "FormField",
    "InvalidDefinition",
    "Problem",
    "Reference",
    "RetryPolicy",
    "ServiceSpec",
    "SubscriptionSpec",
    "StepSpec",
    "WorkflowSpec",
    "digest_of",
    "format_size",
    "humanize",
    "load_file",
    "load_text",
    "localized",
    "in_language",
    "parse_definition",
    "parse_duration",
    "parse_services",
    "parse_size",
]
