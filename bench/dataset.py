"""What the benchmarks run on: services, definitions, a token, and bulk-generated instances.

Generation is one INSERT … SELECT per table (a recursive CTE on SQLite, generate_series on
PostgreSQL), so a million instances take seconds, not hours of ORM saves. The generated
instances stand at the seed's `approve` step: `validate` succeeded, `approve` waits for a
person with its deadline far ahead, so nothing is due unless a benchmark makes it so.
"""

from datetime import timedelta

from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.utils import timezone

from workflows_app import definitions
from workflows_app.authoring import publishing
from workflows_app.models import ApiToken, Service, StepRun, WorkflowDefinition, WorkflowInstance

SEED = {
    "id": "building-permit",
    "public": True,
    "steps": [
        {"id": "validate", "service": "validationSvc"},
        {"id": "approve", "service": "approvalSvc", "timeout": "48h", "onTimeout": "escalate"},
        {"id": "notify", "service": "notificationSvc"},
    ],
}
THREE_STEPS = {
    "id": "bench-three",
    "steps": [{"id": s, "service": "benchOkSvc"} for s in ("one", "two", "three")],
}
# Two human reviews after validation, one after the other or in parallel (docs/parallel.md):
# the parallel one's cost in statements against the sequential one's (issue 15: at most 1.5x).
SEQUENTIAL_REVIEWS = {
    "id": "bench-reviews-in-sequence",
    "steps": [
        {"id": "validate", "service": "validationSvc"},
        {"id": "zoning-review", "service": "approvalSvc"},
        {"id": "fire-review", "service": "approvalSvc"},
        {"id": "notify", "service": "notificationSvc"},
    ],
}
PARALLEL_REVIEWS = {
    "id": "bench-reviews-in-parallel",
    "steps": [
        {"id": "validate", "service": "validationSvc"},
        {
            "id": "reviews",
            "parallel": [
                {"id": "zoning", "steps": [{"id": "zoning-review", "service": "approvalSvc"}]},
                {"id": "fire", "steps": [{"id": "fire-review", "service": "approvalSvc"}]},
            ],
        },
        {"id": "notify", "service": "notificationSvc"},
    ],
}
SERVICES = {
    "validationSvc": {"kind": "python", "callable": "workflows_app.builtin.accept"},
    "approvalSvc": {"kind": "human", "group": "plan-reviewers", "backup_group": "backup-reviewers"},
    "notificationSvc": {"kind": "python", "callable": "workflows_app.builtin.notify_applicant"},
    "benchOkSvc": {"kind": "python", "callable": "workflows_app.builtin.accept"},
}


def install_workflows() -> dict[str, WorkflowDefinition]:
    """Register the services and publish the seed, the three-step workflow and the two
    review shapes."""
    for name, fields in SERVICES.items():
        Service.objects.update_or_create(name=name, defaults=fields)
    for group in ("plan-reviewers", "backup-reviewers", "Supervisors"):
        Group.objects.get_or_create(name=group)
    published = {}
    for document in (SEED, THREE_STEPS, SEQUENTIAL_REVIEWS, PARALLEL_REVIEWS):
        with transaction.atomic():
            spec = definitions.parse_definition(document, source="bench")
            published[document["id"]], _ = publishing.publish(spec)
    return published


def issue_token() -> str:
    """A fresh API token with every scope."""
    return ApiToken.issue("bench")[1]


def generate_waiting(count: int, *, overdue: bool = False) -> None:
    """`count` seed instances waiting at `approve` (overdue ones are due a minute ago)."""
    definition = WorkflowDefinition.objects.get(key="building-permit", version=1)
    group = Group.objects.get(name="plan-reviewers")
    now = timezone.now()
    due = now - timedelta(minutes=1) if overdue else now + timedelta(days=365)
    wake = due if overdue else now + timedelta(days=180)
    first = (WorkflowInstance.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    adapt = connection.ops.adapt_datetimefield_value
    args = {
        "first": first,
        "last": first + count - 1,
        "definition": definition.pk,
        "group": group.pk,
        "now": adapt(now),
        "due": adapt(due),
        "wake": adapt(wake),
    }
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in _statements(connection.vendor):
            cursor.execute(statement, args)
    if connection.vendor == "postgresql":
        table = WorkflowInstance._meta.db_table
        with connection.cursor() as cursor:
            # Explicit ids do not move the sequence; the next start would collide.
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)", [first + count - 1]
            )
            cursor.execute("ANALYZE")


def _statements(vendor: str) -> list[str]:
    instance = WorkflowInstance._meta.db_table
    run = StepRun._meta.db_table
    if vendor == "postgresql":
        numbers = "SELECT n FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n"
        uuid, empty, validated = "gen_random_uuid()", "'{}'::jsonb", "'{\"validate\": {}}'::jsonb"
    else:
        numbers = (
            "WITH RECURSIVE seq(n) AS (SELECT %(first)s UNION ALL SELECT n + 1 FROM seq "
            "WHERE n < %(last)s) SELECT n FROM seq"
        )
        uuid, empty, validated = "lower(hex(randomblob(16)))", "'{}'", "'{\"validate\": {}}'"
    payload = '\'{"applicant": "Ada"}\'' + ("::jsonb" if vendor == "postgresql" else "")
    return [
        f"""INSERT INTO {instance} (id, uuid, case_number, definition_id, status, current_step,
            payload, context, request_digest, started_by, language, created_at, updated_at)
            SELECT n, {uuid}, 'BENCH-' || n, %(definition)s, 'running', 'approve', {payload},
                   {validated}, '', 'bench', '', %(now)s, %(now)s FROM ({numbers}) AS numbers""",
        f"""INSERT INTO {run} (id, instance_id, step_id, state, attempts, result, output, error,
            escalation_level, escalation_exhausted, reminders_sent, completed_by, reason, note,
            created_at, started_at, ended_at)
            SELECT {uuid}, n, 'validate', 'succeeded', 1, 'ok', {empty}, '', 0, false, 0, '', '',
                   '', %(now)s, %(now)s, %(now)s FROM ({numbers}) AS numbers""",
        f"""INSERT INTO {run} (id, instance_id, step_id, state, attempts, result, error, wake_at,
            due_at, assignee_group_id, escalation_level, escalation_exhausted, reminders_sent,
            completed_by, reason, note, created_at, started_at)
            SELECT {uuid}, n, 'approve', 'waiting', 0, '', '', %(wake)s, %(due)s, %(group)s, 0,
                   false, 0, '', '', '', %(now)s, %(now)s FROM ({numbers}) AS numbers""",
    ]
