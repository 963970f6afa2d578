"""Every HTTP request we send to a service: one signed POST, no redirects, a capped reply,
and a wall-clock deadline on the whole call.

Dispatch calls services through `post`, and so does the admin's "send a signed ping", so a
request is built, signed and read the same way everywhere. Signatures follow Standard
Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).

`requests`' read time-out is per socket read: a service sending one byte a second never
trips it. So every call also has a deadline (its read time-out, counted from the start): a
timer shuts the call's socket down when it passes, whatever the call is doing (connecting,
waiting for headers, reading the body), and `post` raises DeadlinePassed, a time-out.
"""

import base64
import binascii
import contextlib
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from requests.adapters import HTTPAdapter
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError as TransportError
from urllib3.exceptions import ReadTimeoutError

from ..queries import addresses
from . import call_timers

CONNECT_TIMEOUT = 3.05
# What a service may answer; more is refused rather than stored in the instance's context.
MAX_ANSWER_BYTES = 1024 * 1024


class DeadlinePassed(requests.Timeout):
    """The whole call took longer than its deadline (a trickling or stalled service)."""


class AddressRefused(Exception):
    """The service's address is not one we may call (queries/addresses.py): nothing was sent.
    Not an OSError, so that neither urllib3 nor requests retries or rewraps it."""


# What `post` may raise besides UnusableSecret: a time-out, or no connection at all.
TIMEOUTS = (requests.Timeout, ReadTimeoutError)
UNREACHABLE = (requests.RequestException, TransportError)


class UnusableSecret(Exception):
    """A service has a signing secret configured that cannot be used (missing or malformed)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """What a service answered; `content` is None when it was over MAX_ANSWER_BYTES."""

    status: int
    headers: Mapping[str, str]
    content: bytes | None


def post(
    service,
    body: str,
    *,
    msg_id: str,
    timeout: tuple[float, float],
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """POST `body` (JSON text) to the service's URL, signed when it has a secret; the whole
    call ends within `timeout[1]` seconds (DeadlinePassed otherwise)."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    sent.update(signature_headers(service, msg_id=msg_id, body=body))
    call = _Call(timeout[1])
    try:
        with session().post(
            service.url,
            data=body.encode(),
            headers=sent,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        ) as reply:
            try:
                answer = Reply(reply.status_code, reply.headers, _read_capped(reply))
            finally:
                call.finish()  # before the connection goes back to the pool
    except UNREACHABLE:
        if call.expired:
            raise DeadlinePassed(f"no whole answer within {timeout[1]:g}s") from None
        raise
    finally:
        call.finish()
    if call.expired:  # cut in the body: what was read is not the whole answer
        raise DeadlinePassed(f"no whole answer within {timeout[1]:g}s")
    return answer


# --- the deadline: one per call (runtime/call_timers.py), cutting the socket the call uses -----

_current = threading.local()


class _Call:
    """One call's deadline. Connections made or used by this thread while the call runs
    attach themselves (`_Watched`); when the timer fires, their socket is shut down, which
    ends any read or write at once."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._done = False
        self._connection = None
        self._lock = threading.Lock()
        _current.call = self
        self._timer = call_timers.schedule(seconds, self._cut)

    def attach(self, connection) -> None:
        with self._lock:
            if not self._done:
                self._connection = connection
                if self.expired:
                    _shut(connection)

    def finish(self) -> None:
        with self._lock:
            self._done, self._connection = True, None
        self._timer.cancel()
        if getattr(_current, "call", None) is self:
            _current.call = None

    def _cut(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            if self._connection is not None:
                _shut(self._connection)


def _shut(connection) -> None:
    if connection.sock is not None:
        with contextlib.suppress(OSError):  # already closed
            connection.sock.shutdown(socket.SHUT_RDWR)


class _Watched:
    """A connection that refuses an address we may not call (checked on the address actually
    connected to, before anything is sent) and tells the calling thread's deadline that the
    call uses it."""

    def connect(self) -> None:
        super().connect()
        ip, port = self.sock.getpeername()[:2]
        if why := addresses.refusal(ip, port):
            self.close()
            raise AddressRefused(why)
        self._attach()

    def request(self, *args, **kwargs) -> None:
        self._attach()
        return super().request(*args, **kwargs)

    def _attach(self) -> None:
        if (call := getattr(_current, "call", None)) is not None:
            call.attach(self)


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    """requests' adapter with connections that a call's deadline can cut."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


_session: requests.Session | None = None


def session() -> requests.Session:
    """The process's pooled HTTP session (created lazily, after qcluster forks)."""
    global _session
    if _session is None:
        _session = requests.Session()
        _session.mount("http://", _Adapter(pool_connections=16, pool_maxsize=32))
        _session.mount("https://", _Adapter(pool_connections=16, pool_maxsize=32))
    return _session


def _read_capped(reply: requests.Response) -> bytes | None:
    """The reply's body, or None when it is over MAX_ANSWER_BYTES."""
    chunks, size = [], 0
    # iter_content, read to the end, lets the pooled connection be reused (keep-alive).
    for chunk in reply.iter_content(chunk_size=64 * 1024):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


# --- signatures (Standard Webhooks) --------------------------------------------------------


def service_secret(service) -> str:
    """The signing secret of a service: its own, or from the environment variable it names."""
    if service.secret_env:
        return os.environ.get(service.secret_env, "")
    return service.secret


def webhook_for(service) -> Webhook | None:
    """The Standard Webhooks signer/verifier of a service; None when it has no secret.

    Raises UnusableSecret when a secret is configured but missing from the environment or
    not decodable, so that a signed service is never called unsigned.
    """
    secret = service_secret(service)
    if not secret:
        if service.secret_env:
            raise UnusableSecret(
                f"service '{service.name}' signs with the environment variable "
                f"{service.secret_env}, which is not set"
            )
        return None
    try:
        return Webhook(_as_whsec(secret))
    except (EmptyWebhookSecretError, binascii.Error, ValueError) as exc:
        raise UnusableSecret(f"service '{service.name}' has an unusable secret: {exc}") from None


def signature_headers(service, *, msg_id: str, body: str) -> dict[str, str]:
    """Standard Webhooks headers for a service with a secret; none otherwise."""
    webhook = webhook_for(service)
    if webhook is None:
        return {}
    now = datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": webhook.sign(msg_id, now, body),
    }


def _as_whsec(secret: str) -> str:
    """Standard Webhooks secrets are base64 behind 'whsec_'; raw strings are encoded."""
    if secret.startswith("whsec_"):
        return secret
    return "whsec_" + base64.b64encode(secret.encode()).decode()
