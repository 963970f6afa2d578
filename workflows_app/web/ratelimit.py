"""Sign-in rate limiting: failed attempts per (client IP, username), counted in the cache.

After HMS_LOGIN_MAX_ATTEMPTS failures within HMS_LOGIN_WINDOW_SECONDS (counted from the first
failure), every sign-in POST for that pair answers 429 until the window has passed, even with
the right password; a successful sign-in clears the count. Other usernames, and the same
username from another address, are not affected. The cache (HMS_LOGIN_CACHE, the default one)
is shared by every process, so the limit holds across gunicorn workers and machines.
"""

import hashlib
import math
import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from ..models import username_key

KEY_PREFIX = "hms:login-failures:"


def _cache() -> BaseCache:
    """The cache holding the counts (HMS_LOGIN_CACHE: the shared default one unless set)."""
    return caches[settings.HMS_LOGIN_CACHE]


def max_attempts() -> int:
    return settings.HMS_LOGIN_MAX_ATTEMPTS


def window_seconds() -> int:
    return settings.HMS_LOGIN_WINDOW_SECONDS


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or the right-most address of the header named by HMS_CLIENT_IP_HEADER.

    Only set that header (e.g. HTTP_X_FORWARDED_FOR) behind a proxy that writes it: the
    right-most entry is the one the proxy added, so a client cannot choose it.
    """
    header = settings.HMS_CLIENT_IP_HEADER
    forwarded = request.META.get(header, "") if header else ""
    if forwarded.strip():
        return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "")


def _key(ip: str, username: str) -> str:
    # Hashed: usernames may hold characters some cache backends refuse, and stay unreadable.
    digest = hashlib.sha256(f"{ip}\n{username_key(username)}".encode()).hexdigest()
    return KEY_PREFIX + digest


def seconds_blocked(ip: str, username: str, *, now: float | None = None) -> int:
    """Seconds until this pair may try again; 0 when it may try now."""
    now = time.time() if now is None else now
    count, until = _cache().get(_key(ip, username), (0, now))
    if count < max_attempts() or until <= now:
        return 0
    return math.ceil(until - now)


def record_failure(ip: str, username: str, *, now: float | None = None) -> int:
    """Count one failed attempt; returns the count in the current window."""
    now = time.time() if now is None else now
    key = _key(ip, username)
    count, until = _cache().get(key, (0, now))
    if until <= now:  # no window open, or the last one has passed: start a new one
        count, until = 0, now + window_seconds()
    _cache().set(key, (count + 1, until), timeout=math.ceil(until - now))
    return count + 1


def clear_failures(ip: str, username: str) -> None:
    """Forget the failures of this pair (after a successful sign-in)."""
    _cache().delete(_key(ip, username))


def _username(credentials: dict) -> str:
    field = get_user_model().USERNAME_FIELD
    return str(credentials.get(field) or credentials.get("username") or "")


@receiver(user_login_failed, dispatch_uid="hms-ratelimit-failed")
def _on_login_failed(sender, credentials: dict, request: HttpRequest | None = None, **kwargs):
    if request is not None:
        record_failure(client_ip(request), _username(credentials))


@receiver(user_logged_in, dispatch_uid="hms-ratelimit-logged-in")
def _on_logged_in(sender, request: HttpRequest | None, user, **kwargs):
    if request is not None:
        clear_failures(client_ip(request), user.get_username())


class LoginRateLimitMiddleware:
    """Answers 429 to sign-in POSTs of a (client IP, username) pair that failed too often."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path in login_paths():
            wait = seconds_blocked(client_ip(request), request.POST.get("username", ""))
            if wait:
                return too_many_attempts(wait)
        return self.get_response(request)


def login_paths() -> set[str]:
    """The sign-in pages: the staff login and the admin's."""
    return {reverse("workflows:login"), reverse("admin:login")}


def too_many_attempts(wait: int) -> HttpResponse:
    """429 in plain words, with Retry-After in seconds."""
    minutes = max(1, math.ceil(wait / 60))
    unit = "minute" if minutes == 1 else "minutes"
    response = HttpResponse(
        f"Too many failed sign-in attempts for this account from your address. "
        f"Try again in {minutes} {unit}, or ask an administrator to reset your password.\n",
        status=429,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(wait)
    return response
