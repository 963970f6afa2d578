import os
import sys

from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate

# Pools and connections a forked process inherited from its parent: kept referenced, never
# closed (closing would end the parent's sessions on the server), never used again.
_INHERITED: list[object] = []


def forget_inherited_connections() -> None:
    """In a forked child (qcluster forks its workers): make new PostgreSQL connections.

    The parent's pool and connections share their sockets with the parent, and the pool's
    threads do not exist in the child; the child's first query opens a pool of its own
    (docs/deploy.md, database connections).
    """
    postgresql = sys.modules.get("django.db.backends.postgresql.base")
    if postgresql is not None:
        pools = postgresql.DatabaseWrapper._connection_pools
        _INHERITED.extend(pools.values())
        pools.clear()
    for wrapper in connections.all(initialized_only=True):
        if wrapper.vendor == "postgresql" and wrapper.connection is not None:
            _INHERITED.append(wrapper.connection)
            wrapper.connection = None


class WorkflowsConfig(AppConfig):
    name = "workflows_app"
    verbose_name = "Workflows"

    def ready(self) -> None:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured
        from django_q.signals import post_spawn

        from .definitions import parse_size

        try:
            parse_size(settings.HMS_MAX_UPLOAD)
        except ValueError as error:
            raise ImproperlyConfigured(f"HMS_MAX_UPLOAD: {error}") from None

        from .runtime import schedules, ticker

        os.register_at_fork(after_in_child=forget_inherited_connections)
        post_spawn.connect(ticker.start_timer_thread, dispatch_uid="hms-timer-thread")
        post_migrate.connect(schedules.ensure_schedules, sender=self)
