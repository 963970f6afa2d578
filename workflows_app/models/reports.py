"""Daily rollups behind the supervisors' reports (docs/reports.md).

A finished day never changes (a run's end, result and due time are fixed once it has ended),
so each day is counted once, by the daily schedule or on demand, and the report pages sum a
few thousand rollup rows instead of millions of runs.
"""

from django.db import models


class RollupDay(models.Model):
    """A day whose rollup rows are complete."""

    day = models.DateField(primary_key=True)
    computed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return str(self.day)


class DecisionRollup(models.Model):
    """Decisions (human tasks ended) of one day, by workflow, step, group and reviewer."""

    day = models.DateField()
    workflow = models.CharField(max_length=64)
    step = models.CharField(max_length=64)
    group = models.CharField(max_length=150, blank=True)
    reviewer = models.CharField(max_length=150, blank=True)
    decided = models.PositiveIntegerField(default=0)
    timed = models.PositiveIntegerField(default=0, help_text="Those with a time limit.")
    on_time = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["day"], name="decisionrollup_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.workflow}/{self.step}"


class CaseRollup(models.Model):
    """Instances ended on one day, by workflow and status, against the workflow's deadline."""

    day = models.DateField()
    workflow = models.CharField(max_length=64)
    status = models.CharField(max_length=20)
    ended = models.PositiveIntegerField(default=0)
    timed = models.PositiveIntegerField(default=0, help_text="Those with a deadline.")
    on_time = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["day"], name="caserollup_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.workflow} {self.status}"


class DurationRollup(models.Model):
    """How many decisions (or whole cases: step "") of one day took a time in one bucket."""

    day = models.DateField()
    workflow = models.CharField(max_length=64)
    step = models.CharField(max_length=64, blank=True)
    bucket = models.PositiveSmallIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["day"], name="durationrollup_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.workflow}/{self.step} #{self.bucket}"
