"""Who changed what, and when, on the rows that steer applications (docs/history.md):
services, the business calendar, API tokens, status-webhook subscriptions and staff groups,
with django-simple-history.

Each save through the ORM (the admin, the loader, commands) adds a historical row with the
user of the request (simple_history's middleware) and the kind of change. Secrets are left
out: the signing secrets of services and subscriptions and a token's hash are not copied.
"""

from django.contrib.auth.models import Group
from simple_history import register

from .access import ApiToken
from .webhooks import Subscription
from .workflows import BusinessCalendar, Service

register(Service, excluded_fields=["secret"])
register(BusinessCalendar)
register(ApiToken, excluded_fields=["key_hash"])
register(Subscription, excluded_fields=["secret"])  # who may hear about applications
# Django's own model: its history table lives in this app (and this app's migrations).
register(Group, app="workflows_app", table_name="workflows_app_historicalgroup")
