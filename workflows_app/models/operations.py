"""Rows the processes keep about themselves: heartbeats of periodic jobs."""

from django.db import models


class Heartbeat(models.Model):
    """The last tick of a named periodic job, for health checks."""

    name = models.CharField(max_length=50, primary_key=True)
    last_tick = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.last_tick:%Y-%m-%d %H:%M:%S}"
