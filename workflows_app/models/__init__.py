"""The tables, split by concern; import them from here (`from workflows_app.models import StepRun`).

- choices: the vocabulary (statuses, run states, service kinds, time-out actions)
- workflows: published versions, services, drafts, the business calendar
- instances: applications, their step runs (tasks) and events
- documents: files sent with an application
- access: API tokens, signed callbacks already seen, delegations
- operations: heartbeats of periodic jobs
- reports: daily rollups behind the supervisors' reports
"""

from .access import ApiToken, Delegation, SeenWebhook, username_key
from .choices import OPEN_RUN_STATES, OnTimeout, RunState, ServiceKind, Status
from .documents import CaseDocument
from .instances import (
    Event,
    InstanceOperation,
    StepRun,
    WorkflowInstance,
    case_number_key,
    new_case_number,
)
from .operations import Heartbeat
from .reports import CaseRollup, DecisionRollup, DurationRollup, RollupDay
from .workflows import BusinessCalendar, DraftStep, Service, WorkflowDefinition, WorkflowDraft

__all__ = [
    "OPEN_RUN_STATES",
    "ApiToken",
    "BusinessCalendar",
    "CaseDocument",
    "CaseRollup",
    "DecisionRollup",
    "DurationRollup",
    "Delegation",
    "DraftStep",
    "Event",
    "Heartbeat",
    "InstanceOperation",
    "OnTimeout",
    "RollupDay",
    "RunState",
    "SeenWebhook",
    "Service",
    "ServiceKind",
    "Status",
    "StepRun",
    "WorkflowDefinition",
    "WorkflowDraft",
    "WorkflowInstance",
    "case_number_key",
    "new_case_number",
    "username_key",
]
