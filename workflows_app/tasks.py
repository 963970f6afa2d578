"""django-q2 entry points: each takes ids, calls the runtime, and holds no logic of its own.

The queue names these functions by dotted path (runtime/queue.py, runtime/schedules.py), so
their names stay stable: a message queued before a deploy still runs after it.
"""

from uuid import UUID

from .runtime import asking, execution, notifications, reporting, retention, schedules, webhooks
from .runtime import sweep as sweeps


def run_step(run_id: str, attempts: int = 0) -> None:
    """Claim one queued step run, call its service, record the outcome."""
    execution.run_step(run_id=UUID(run_id), attempts=attempts)


def sweep() -> int:
    """The scheduled sweep (every minute); `manage.py escalate_overdue` runs the same."""
    return sweeps.scheduled_sweep()


def prune_failures() -> int:
    """Daily: delete django-q2 failures older than a month."""
    return schedules.prune_failures()


def purge_expired() -> int:
    """Daily: remove the personal data of instances past their retention (docs/records.md)."""
    return retention.purge_expired().instances


def fill_report_rollups() -> int:
    """Daily: count the days the supervisors' reports do not have yet (docs/reports.md)."""
    return reporting.fill_rollups()


def send_task_email(run_id: str, kind: str) -> int:
    """Email the assignees of one task."""
    return notifications.send_task_email(run_id, kind)


def send_applicant_email(instance_id: int, kind: str) -> int:
    """Email the applicant an update on their application."""
    return notifications.send_applicant_email(instance_id, kind)


def send_request_email(run_id: str) -> int:
    """Email the applicant the link to answer a request to them."""
    return asking.send_request_email(run_id)


def deliver_webhooks(subscription_id: int, instance_id: int) -> int:
    """Send one instance's status-webhook messages to one subscription, in order."""
    return webhooks.deliver(subscription_id=subscription_id, instance_id=instance_id)


def sweep_webhooks() -> int:
    """Every minute: drive the webhook queues whose next message is due (retries, kills)."""
    return webhooks.sweep_deliveries()
