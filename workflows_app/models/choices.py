"""The vocabulary of the tables: statuses, run states, service kinds, time-out actions.

Values are the lowercase words the API shows. The engine speaks this vocabulary too (it is
the one import it takes from the models layer), so it holds no Django model and no query.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    RUNNING = "running", _("Running")
    COMPLETED = "completed", _("Completed")
    REJECTED = "rejected", _("Rejected")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class RunState(models.TextChoices):
    QUEUED = "queued", _("Queued")  # ready to dispatch at wake_at
    RUNNING = "running", _("Running")  # claimed by a worker until wake_at (the lease)
    WAITING = "waiting", _("Waiting")  # for a person or a callback
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")
    CANCELLED = "cancelled", _("Cancelled")


OPEN_RUN_STATES = (RunState.QUEUED, RunState.RUNNING, RunState.WAITING)


class ServiceKind(models.TextChoices):
    HTTP = "http", _("HTTP call")
    HUMAN = "human", _("Task for a person")
    PYTHON = "python", _("Built-in (Python)")
    APPLICANT = "applicant", _("Request to the applicant")


class OnTimeout(models.TextChoices):
    ESCALATE = "escalate", _("escalate: hand the task to the next backup")
    FAIL = "fail", _("fail: the application fails")
    SKIP = "skip", _("skip: go on with result 'timeout'")
    RETRY = "retry", _("retry: try again (a person is reminded)")
    REJECT = "reject", _("reject: the application lapses (ends rejected)")
