"""The Django admin: authoring (drafts, versions, services) and operations (instances).

Declarative; every write that changes an instance goes through services.py or assignments.py.
"""

from . import definitions, drafts, instances, queue, services, tokens

__all__ = ["definitions", "drafts", "instances", "queue", "services", "tokens"]
