"""Rules for `subscriptions:` in a services document (status webhooks, docs/webhooks.md):

subscriptions:
  portalHook: {url: "https://portal.example/hooks", secret: "whsec_...",
               events: ["instance.updated"], workflows: ["building-permit"]}
"""

import base64
import binascii
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .checks import SERVICE_NAME, check_keys, describe
from .problems import Report
from .specs import SubscriptionSpec

SUBSCRIPTION_EVENTS = ("instance.updated",)
SUBSCRIPTION_FIELDS = ("url", "secret", "events", "workflows")


def check_subscriptions(data: Mapping, report: Report) -> tuple[SubscriptionSpec, ...]:
    """Every subscription of the document's `subscriptions` mapping (none when absent)."""
    entries = data.get("subscriptions")
    if entries is None:
        return ()
    if not isinstance(entries, Mapping):
        report.add(("subscriptions",), f"subscriptions must be a mapping NAME: {{url, secret}}, not {describe(entries)}")  # fmt: skip
        return ()
    found = [_check_one(name, raw, report) for name, raw in entries.items()]
    return tuple(s for s in found if s)


def _check_one(name: Any, raw: Any, report: Report) -> SubscriptionSpec | None:
    path = ("subscriptions", name)
    if not isinstance(name, str) or not SERVICE_NAME.fullmatch(name):
        report.add(path, f"subscription name {describe(name)} must be letters, digits, - and _")
        return None
    if not isinstance(raw, Mapping):
        report.add(path, f"subscription '{name}' must be a mapping {{url, secret}}, not {describe(raw)}")  # fmt: skip
        return None
    check_keys(raw, SUBSCRIPTION_FIELDS, path, report)
    url, secret = raw.get("url"), raw.get("secret")
    problems_before = len(report.problems())
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        report.add((*path, "url"), f"url {describe(url)} must be an http:// or https:// URL with a host")  # fmt: skip
    if not isinstance(secret, str) or not _is_whsec(secret):
        report.add((*path, "secret"), "secret must be a Standard Webhooks secret: whsec_ and base64 (e.g. whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw)")  # fmt: skip
    events = _text_list(raw, "events", path, report, default=list(SUBSCRIPTION_EVENTS))
    for event in events:
        if event not in SUBSCRIPTION_EVENTS:
            report.add((*path, "events"), f"event '{event}' is not one of {', '.join(SUBSCRIPTION_EVENTS)}")  # fmt: skip
    workflows = _text_list(raw, "workflows", path, report, default=[])
    if len(report.problems()) > problems_before:
        return None
    return SubscriptionSpec(name, url, secret, tuple(events), tuple(workflows))


def _text_list(raw: Mapping, key: str, path: tuple, report: Report, default: list) -> list[str]:
    value = raw.get(key, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        report.add((*path, key), f"{key} must be a list of text, not {describe(value)}")
        return []
    return value


def _is_whsec(secret: str) -> bool:
    if not secret.startswith("whsec_"):
        return False
    try:
        return bool(base64.b64decode(secret.removeprefix("whsec_"), validate=True))
    except (binascii.Error, ValueError):
        return False
