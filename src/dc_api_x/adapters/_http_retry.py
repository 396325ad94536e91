"""The retry policy of the HTTP adapter: what is retried, how long to wait, what was retried.

The policy decides; the caller sends and sleeps. :class:`Attempts` is what the sync send loop
(``HttpAdapter._send``) and the async one (``AsyncHttpSession._send``) share: one request's
attempts, each failure turned into the wait before the next attempt or the final error (counted,
logged, carrying the retries made); the loops differ only in their I/O (``client.send`` /
``await client.send``, ``time.sleep`` / ``anyio.sleep``). What is retried (within
``retries.max_attempts`` attempts in total):

* a ``429`` answer (every method) and the ``retries.statuses`` 5xx answers (the idempotent
  ``retries.methods`` only), after the server's ``Retry-After`` (capped at ``max_retry_after``)
  or an exponential backoff with jitter;
* connect errors (every method: nothing was sent) and other transport errors (idempotent methods);
* a 2xx answer whose body is cut short (fewer bytes than its ``Content-Length``, a connection
  dropped mid-body) or whose JSON does not decode (it ends early, or is not JSON): a
  :class:`BodyFault`, retried like a transport error (idempotent methods).

Every retry is counted by reason in :class:`RetryCounters` (``HttpAdapter.retry_counters``) and
reported to the ``metrics`` request hook (its ``retries`` / ``retries_by_reason`` counters) through
the answer's ``extensions`` (:data:`RETRIES_EXTENSION`) or the final error's ``retries``.

Imports no HTTP library.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Any, NoReturn

from ..exceptions import HTTPStatusError, TransportError
from ..logs import redact
from ._http_options import RetryOptions

if TYPE_CHECKING:  # pragma: no cover
    from ..exceptions import ResponseDecodeError

__all__ = [
    "RETRIES_EXTENSION",
    "Attempts",
    "BodyFault",
    "RetryCounters",
    "RetryPolicy",
    "parse_retry_after",
]

log = logging.getLogger("dc_api_x.http")

#: Key of ``httpx.Response.extensions`` holding the reasons of the retries made before that answer
#: (an error raised after the last attempt carries them as ``exc.retries``).
RETRIES_EXTENSION = "dcapix_retries"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (seconds or an HTTP-date); ``None`` if absent
    or unreadable. Never negative."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


class BodyFault(Exception):
    """A 2xx answer whose body could not be used: truncated or undecodable. Transient: retried
    like a transport error. ``reason`` is the metrics key (``truncated_body``, ``invalid_json``,
    ``undecodable_body``); ``detail`` the message (``truncated body (got N of M bytes)``, ``invalid
    JSON at byte K: …``), with no URL (the caller adds the redacted one)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(detail)

    def error(
        self, prefix: str, method: str, url: str, status: int, attempt: int, max_attempts: int
    ) -> ResponseDecodeError:
        """The one-line error once the retries are spent (``url`` already redacted); shared by the
        sync and async clients."""
        from ..exceptions import ResponseDecodeError

        return ResponseDecodeError(
            f"{prefix}: {method} {url}: HTTP {status}: {self.detail} (attempt {attempt} of {max_attempts})",
            url=url,
        )


class RetryCounters:
    """Retries by reason (``429``, ``5xx``, ``transport``, ``truncated_body``, ``invalid_json``,
    ``undecodable_body``) and requests that failed after their last attempt (``exhausted``).
    Thread-safe. Counts added to a child (``parent`` given: one stream's reads) are added to its
    parent (the adapter's) too."""

    def __init__(self, parent: RetryCounters | None = None) -> None:
        self._lock = threading.Lock()
        self.parent = parent
        self.by_reason: dict[str, int] = {}
        self.exhausted = 0

    def add(self, reason: str) -> None:
        with self._lock:
            self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        if self.parent is not None:
            self.parent.add(reason)

    def gave_up(self) -> None:
        with self._lock:
            self.exhausted += 1
        if self.parent is not None:
            self.parent.gave_up()

    @property
    def retries(self) -> int:
        with self._lock:
            return sum(self.by_reason.values())

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "retries": sum(self.by_reason.values()),
                "retries_by_reason": dict(self.by_reason),
                "exhausted": self.exhausted,
            }


def status_reason(status: int) -> str:
    return "429" if status == 429 else f"{status // 100}xx"


class RetryPolicy:
    """Decisions of :class:`RetryOptions`: whether an attempt is retried and after how long."""

    def __init__(self, options: RetryOptions) -> None:
        self.options = options

    @property
    def max_attempts(self) -> int:
        return int(self.options.max_attempts)

    def idempotent(self, method: str) -> bool:
        return method.upper() in self.options.methods

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt ``attempt`` (1-based): exponential, capped, jittered."""
        r = self.options
        delay = min(r.max_backoff, r.backoff_factor * (2 ** (attempt - 1)))
        if r.jitter:
            delay *= 0.5 + random.random() * 0.5
        return float(delay)

    def status_retryable(self, status: int, method: str) -> bool:
        """Whether an answer with ``status`` is retried (before counting attempts)."""
        return status in self.options.statuses and (status == 429 or self.idempotent(method))

    def status_delay(self, headers: Any, attempt: int) -> float:
        """The wait before retrying a retryable status: the server's ``Retry-After`` (capped at
        ``max_retry_after``), else the backoff."""
        wait = parse_retry_after(headers.get("retry-after"))
        return min(wait, self.options.max_retry_after) if wait is not None else self.backoff(attempt)

    def transport_retryable(self, method: str, *, connect: bool) -> bool:
        """Whether a transport error is retried: connect errors always (nothing was sent),
        others (and :class:`BodyFault`) for idempotent methods only."""
        return connect or self.idempotent(method)


class Attempts:
    """The attempts of one request under a :class:`RetryPolicy`: the part of the send loop the sync
    client (``HttpAdapter._send``) and the async one (``AsyncHttpSession._send``) share. Each
    ``*_failed`` method is called with a failed attempt and either returns the seconds to wait
    before the next one (the retry counted in ``counters`` and logged, one redacted line) or raises
    the final one-line error (counted as exhausted, carrying the reasons of the retries made as
    ``exc.retries``); the caller sends, sleeps (``time.sleep`` or ``anyio.sleep``) and paces.
    URLs given here are already redacted."""

    __slots__ = ("attempt", "counters", "made", "method", "policy", "prefix")

    def __init__(self, policy: RetryPolicy, counters: RetryCounters, prefix: str, method: str) -> None:
        self.policy = policy
        self.counters = counters
        self.prefix = prefix
        self.method = method
        self.attempt = 0
        #: the reasons of this request's retries (for the metrics hook: ``RETRIES_EXTENSION``)
        self.made: list[str] = []

    def _retry(self, reason: str, delay: float, shown: str, what: str) -> float:
        self.made.append(reason)
        self.counters.add(reason)
        log.warning(
            "%s: %s %s: %s; retry %d/%d in %.2fs",
            self.prefix,
            self.method,
            shown,
            redact(what),
            self.attempt,
            self.policy.max_attempts - 1,
            delay,
        )
        return delay

    def _give_up(self, exc: Exception) -> NoReturn:
        self.counters.gave_up()
        exc.retries = tuple(self.made)  # type: ignore[attr-defined]
        raise exc from None

    def redirects_failed(self, shown: str, max_redirects: int) -> NoReturn:
        """Too many redirects: not retried (the same redirects would follow)."""
        self._give_up(
            TransportError(
                f"{self.prefix}: {self.method} {shown}: more than {max_redirects} redirects "
                "(a redirect loop?)",
                url=shown,
            )
        )

    def transport_failed(self, exc: BaseException, shown: str, *, connect: bool) -> float:
        """A transport error (``connect``: raised before the request was sent)."""
        policy = self.policy
        if policy.transport_retryable(self.method, connect=connect) and self.attempt < policy.max_attempts:
            return self._retry("transport", policy.backoff(self.attempt), shown, type(exc).__name__)
        self._give_up(
            TransportError(
                f"{self.prefix}: {self.method} {shown}: {type(exc).__name__}: {redact(exc) or 'no detail'} "
                f"(attempt {self.attempt} of {policy.max_attempts})",
                url=shown,
            )
        )

    def status_failed(self, status: int, headers: Any, shown: str) -> tuple[float, bool]:
        """A retryable status (:meth:`RetryPolicy.status_retryable`): the wait, and whether the
        server asked for it (``Retry-After``: every worker of the host then pauses too)."""
        policy = self.policy
        if self.attempt >= policy.max_attempts:
            self._give_up(
                HTTPStatusError(
                    f"{self.prefix}: {self.method} {shown}: HTTP {status} after {self.attempt} attempt(s)",
                    url=shown,
                    status_code=status,
                )
            )
        delay = policy.status_delay(headers, self.attempt)
        asked = parse_retry_after(headers.get("retry-after")) is not None
        return self._retry(status_reason(status), delay, shown, f"HTTP {status}"), asked

    def body_failed(self, fault: BodyFault, shown: str, status: int) -> float:
        """A 2xx body cut short or undecodable: retried like a transport error."""
        policy = self.policy
        if policy.transport_retryable(self.method, connect=False) and self.attempt < policy.max_attempts:
            return self._retry(fault.reason, policy.backoff(self.attempt), shown, fault.detail)
        self._give_up(fault.error(self.prefix, self.method, shown, status, self.attempt, policy.max_attempts))
