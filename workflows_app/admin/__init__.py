"""The Django admin: authoring (drafts, versions, services) and operations (instances).

Declarative; every write that changes an instance goes through the runtime.
"""

from . import (
    definition_admin,
    draft_admin,
    history_admin,
    instance_admin,
    queue_admin,
    service_admin,
    token_admin,
    webhook_admin,
)

__all__ = [
    "definition_admin",
    "draft_admin",
    "history_admin",
    "instance_admin",
    "queue_admin",
    "service_admin",
    "token_admin",
    "webhook_admin",
]
