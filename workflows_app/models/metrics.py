"""Counters kept in the database for /metrics (docs/metrics.md): HTTP calls to services.

Every other metric is read from the rows the runtime keeps anyway (instances, step runs,
events). A call leaves no row of its own, so each is counted here, in latency buckets:
one UPDATE per call from whichever process made it, so every worker is counted and a
killed worker loses at most the call it was making.
"""

from django.db import models

# Upper bounds (seconds) of the latency buckets; a call slower than the last goes to +Inf.
CALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
INF_BOUND = 1e308  # the +Inf bucket, stored as a finite float every database takes


class ServiceCallCount(models.Model):
    """How many calls to `service` ended with `outcome` within bucket `le` (not cumulative)."""

    service = models.CharField(max_length=100)
    outcome = models.CharField(max_length=20)  # done | accepted | retry | fail
    le = models.FloatField()  # the bucket's upper bound; 1e308 stands for +Inf
    count = models.PositiveBigIntegerField(default=0)
    seconds = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["service", "outcome", "le"], name="service_call_bucket")
        ]

    def __str__(self) -> str:
        return f"{self.service} {self.outcome} <= {self.le}: {self.count}"
