"""The tables, split by concern; import them from here (`from workflows_app.models import StepRun`).

- choices: the vocabulary (statuses, run states, service kinds, time-out actions)
- workflows: published versions, services, drafts, the business calendar
- instances: applications and their step runs (tasks)
- events: the append-only history of each application
- documents: files sent with an application
- access: API tokens, signed callbacks already seen, delegations
- operations: heartbeats of periodic jobs
- reports: daily rollups behind the supervisors' reports
- webhooks: status-webhook subscriptions and their outbox of deliveries
- metrics: counters of HTTP calls to services, for /metrics
- history: who changed services, calendars, tokens and groups (django-simple-history)
"""

from . import history  # noqa: F401 - registers the historical models
from .access import ApiToken, Delegation, SeenWebhook, username_key
from .choices import OPEN_RUN_STATES, OnTimeout, RunState, ServiceKind, Status
from .documents import CaseDocument
from .events import REDACTABLE_EVENT_FIELDS, Event, HistoryIsAppendOnly
from .instances import (
    InstanceOperation,
    StepRun,
    WorkflowInstance,
    case_number_key,
    new_case_number,
)
from .metrics import CALL_BUCKETS, INF_BOUND, ServiceCallCount
from .operations import Heartbeat
from .reports import CaseRollup, DecisionRollup, DurationRollup, RollupDay
from .webhooks import Subscription, WebhookDelivery
from .workflows import BusinessCalendar, DraftStep, Service, WorkflowDefinition, WorkflowDraft

__all__ = [
    "CALL_BUCKETS",
    "INF_BOUND",
    "OPEN_RUN_STATES",
    "REDACTABLE_EVENT_FIELDS",
    "HistoryIsAppendOnly",
    "ServiceCallCount",
    "Subscription",
    "WebhookDelivery",
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
