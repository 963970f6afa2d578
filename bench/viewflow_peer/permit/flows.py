"""The seed's shape in viewflow: validate (code), approve (a person), notify (code)."""

from django.db import connection
from viewflow import this
from viewflow.workflow import flow, lock
from viewflow.workflow.flow.views import UpdateProcessView


class PermitFlow(flow.Flow):
    """validate -> approve (human task) -> notify, as in our seed definition."""

    # Row locks on PostgreSQL, as viewflow advises for concurrent use; SQLite serialises writers.
    lock_impl = lock.select_for_update_lock if connection.vendor == "postgresql" else lock.no_lock

    start = flow.StartHandle(this.start_application).Next(this.validate)
    validate = flow.Function(this.validate_application).Next(this.approve)
    approve = (
        flow.View(UpdateProcessView.as_view(fields=[]))
        .Permission(auto_create=True)
        .Next(this.notify)
    )
    notify = flow.Function(this.notify_applicant).Next(this.end)
    end = flow.End()

    def start_application(self, activation, payload):
        activation.process.data = payload
        return activation.process

    def validate_application(self, activation):
        """Like workflows_app.builtin.accept: always fine."""

    def notify_applicant(self, activation):
        """Like notify_applicant without an email address: nothing to send."""
