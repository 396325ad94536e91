"""Logging: stdlib logging with a redaction filter (secrets never reach a handler).

:func:`redact` masks known secret values and credentials in URLs; :class:`RedactingFilter` applies
it to every record. :func:`register_secret` adds a value to mask (auth providers call it for the
tokens they handle).

**Logfire** (the ``logfire`` extra): :func:`enable_logfire` — or ``setup_logging(logfire=True)``,
``DCAPIX_LOGFIRE=1``, ``dcapix -v`` with that variable — switches the integration on. Then every
``ApiClient`` request is a span ``dcapix {method} {path}`` (the built-in ``logfire`` request hook:
``adapter``, ``method``, ``path`` and ``url`` redacted, ``status_code``, ``bytes``), every stream a
pipeline moves is a span ``dcapix sync {stream}`` (``pipeline``, ``stream``, ``source``,
``destination``, ``rows``, ``batches``, ``status``), and ``dc_api_x`` log records go to logfire
(redacted) as logs. :func:`logfire_span` is the span helper (a no-op while the integration is off).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from typing import Any

__all__ = [
    "MASK",
    "LogfireSpan",
    "RedactingFilter",
    "disable_logfire",
    "enable_logfire",
    "install_redaction",
    "is_secret_key",
    "logfire_enabled",
    "logfire_span",
    "redact",
    "redact_mapping",
    "redact_url",
    "register_secret",
    "setup_logging",
]

MASK = "***"
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_SECRET_KEYS = re.compile(
    r"(?i)(password|passwd|secret|token|api[_-]?key|apikey|access[_-]?key|client[_-]?secret|authorization|"
    r"auth|signature|sig|session)"
)
_URL_CRED = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]*)@")
_QUERY_SECRET = re.compile(
    r"(?i)(?P<key>[?&;](?:[a-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
    r"signature|sig|auth)[a-z0-9_.-]*))=(?P<val>[^&#\s]*?)(?=[:,;.)\]'\"]*(?:[\s&#]|$))"
)
# "Bearer <token>" / "Basic <b64>" anywhere; "Token <value>" only when the value looks like a token
# (8+ characters with a digit), so prose such as "token expired" stays readable.
_HEADER_SECRET = re.compile(
    r"(?i:\b(Bearer|Basic))\s+[A-Za-z0-9._~+/=-]+|\b(Token)\s+(?=[A-Za-z._~+/=-]*[0-9])[A-Za-z0-9._~+/=-]{8,}"
)
# key=value secrets outside URLs: libpq DSNs ("host=db password=s3cr3t"), env dumps, CLI args.
# In both patterns the value stops before trailing punctuation that ends a sentence or a message
# part ("…?password=s3cr3t: HTTP 500" keeps its ": "; "password=s3cr3t." its "."), never inside it.
_KV_SECRET = re.compile(
    r"(?i)(?<![?&;\w-])(?P<key>[a-z0-9_-]*(?:password|passwd|pwd|api[_-]?key|apikey|client[_-]?secret|"
    r"access[_-]?token|refresh[_-]?token|secret[_-]?key))=(?P<val>[^\s&'\",;]+?)(?=[:.)\]]*(?:[\s&'\",;]|$))"
)


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears in logs and error messages from now on."""
    if value and len(value) >= 4:
        with _secrets_lock:
            _secrets.add(value)


def is_secret_key(key: str) -> bool:
    """Whether an option or header name looks like it holds a secret."""
    return bool(_SECRET_KEYS.search(key))


def redact_url(url: str) -> str:
    """``url`` without a password and without secret-looking query values."""
    url = _URL_CRED.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", url)
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}={MASK}", url)


#: what each pattern above needs in the text (ASCII, lower-cased), besides the ``@`` of URL
#: credentials: an ASCII text with none of them has nothing for the patterns to mask (a page URL of a
#: paged read, redacted per page, skips four regex passes)
_TRIGGERS = ("pass", "pwd", "key", "secret", "token", "sig", "auth", "bearer", "basic")


def _may_match(s: str) -> bool:
    """Whether one of the secret patterns may match ``s`` (``False`` only when none can)."""
    if "@" in s or not s.isascii():  # (case-insensitive matching folds some non-ASCII letters)
        return True
    low = s.lower()
    return any(t in low for t in _TRIGGERS)


def redact(text: Any) -> str:
    """``text`` with URL credentials, secret query values, auth headers and registered secrets masked."""
    s = str(text)
    if _may_match(s):
        s = redact_url(s)
        s = _HEADER_SECRET.sub(lambda m: f"{m.group(1) or m.group(2)} {MASK}", s)
        s = _KV_SECRET.sub(lambda m: f"{m['key']}={MASK}", s)
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in s:
            s = s.replace(secret, MASK)
    return s


def redact_mapping(data: Any) -> Any:
    """A copy of ``data`` (nested dicts/lists) with secret-looking keys masked and strings redacted."""
    if isinstance(data, dict):
        return {
            k: (
                MASK if isinstance(k, str) and is_secret_key(k) and v not in (None, "") else redact_mapping(v)
            )
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [redact_mapping(v) for v in data]
    if isinstance(data, str):
        return redact(data)
    return data


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message and the exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # bad %-args: redact the raw parts, let the handler report the rest
            msg = f"{record.msg} {record.args!r}"
            record.msg, record.args = redact(msg), None
        else:
            red = redact(msg)
            if red != msg:
                record.msg, record.args = red, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class _RedactingNullHandler(logging.NullHandler):
    """Emits nothing; redacts every record passing through the ``dc_api_x`` logger *in place*, so the
    handlers it propagates to afterwards (the root logger's, singer-sdk's, the application's) only
    ever see the redacted message, traceback and stack."""

    _dcapix_redactor = True

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(RedactingFilter())

    def handle(self, record: logging.LogRecord) -> bool:
        return bool(self.filter(record))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time (it may be replaced after setup)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr


def install_redaction() -> None:
    """Redact every record of the ``dc_api_x`` loggers before any handler above them sees it.

    Idempotent. Called by :func:`setup_logging` and by :func:`dc_api_x.enable_plugins`, so an
    application that configures logging its own way (``logging.basicConfig``, singer-sdk …) gets
    redacted ``dc_api_x`` records too. Handlers attached directly to a ``dc_api_x.*`` child logger
    run before it: give those a :class:`RedactingFilter` of their own.
    """
    logger = logging.getLogger("dc_api_x")
    with _secrets_lock:
        if not any(getattr(h, "_dcapix_redactor", False) for h in logger.handlers):
            logger.addHandler(_RedactingNullHandler())


def setup_logging(verbosity: int = 0, *, stream: Any = None, logfire: bool | None = None) -> None:
    """Configure the ``dc_api_x`` logger: a stderr handler with the redaction filter.

    ``verbosity``: 0 warnings, 1 info, 2+ debug (``DCAPIX_LOG_LEVEL`` overrides). ``logfire``:
    also send records to logfire (``DCAPIX_LOGFIRE=1``); needs the ``logfire`` extra.
    """
    level_name = os.environ.get("DCAPIX_LOG_LEVEL")
    level = (
        getattr(logging, level_name.upper(), logging.INFO)
        if level_name
        else (logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG)
    )
    install_redaction()
    logger = logging.getLogger("dc_api_x")
    logger.setLevel(level)
    for old in [h for h in logger.handlers if getattr(h, "_dcapix", False)]:
        logger.removeHandler(old)  # called again (another CLI run, a test): replace, never stack
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    handler._dcapix = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    if logfire is None:
        logfire = os.environ.get("DCAPIX_LOGFIRE", "") not in ("", "0", "false")
    if logfire:
        try:
            enable_logfire()
        except ImportError:
            logger.warning(
                "DCAPIX_LOGFIRE is set but logfire is not installed (pip install 'dc-api-x[logfire]')"
            )


# ------------------------------------------------------------------------------------ logfire
#: The ``logfire`` module while the integration is on (``None``: off).
_logfire: Any = None


def enable_logfire(*, configure: bool = True, **options: Any) -> None:
    """Switch the logfire integration on (see the module doc); idempotent.

    :param configure: call ``logfire.configure(send_to_logfire="if-token-present", console=False,
        **options)`` first; pass ``False`` when the application configured logfire itself (or a
        test did, with ``logfire.testing.capfire``).
    :raises ImportError: logfire is not installed (``pip install 'dc-api-x[logfire]'``).
    """
    global _logfire
    import logfire as lf  # type: ignore[import-not-found,unused-ignore]

    if configure:
        lf.configure(**{"send_to_logfire": "if-token-present", "console": False, **options})
    add_prefix = getattr(lf, "add_non_user_code_prefix", None)
    if add_prefix is not None:  # spans point at the caller's code, not at dc_api_x internals
        add_prefix(os.path.dirname(os.path.abspath(__file__)))
    install_redaction()
    logger = logging.getLogger("dc_api_x")
    if not any(getattr(h, "_dcapix_logfire", False) for h in logger.handlers):
        handler = lf.LogfireLoggingHandler()
        handler.addFilter(RedactingFilter())
        handler._dcapix_logfire = True  # type: ignore[attr-defined]
        logger.addHandler(handler)  # records at the logger's level (``-v`` / DCAPIX_LOG_LEVEL=INFO)
    _logfire = lf


def disable_logfire() -> None:
    """Switch the logfire integration off (spans and log forwarding stop)."""
    global _logfire
    logger = logging.getLogger("dc_api_x")
    for h in [h for h in logger.handlers if getattr(h, "_dcapix_logfire", False)]:
        logger.removeHandler(h)
    _logfire = None


def logfire_enabled() -> bool:
    """Whether :func:`enable_logfire` switched the integration on."""
    return _logfire is not None


class LogfireSpan:
    """A logfire span while the integration is on, else nothing: a context manager (an exception
    leaving the block is recorded on the span) that may also be entered and exited by hand (request
    hooks do); :meth:`set_attribute` / :meth:`set_attributes` work either way."""

    def __init__(self, msg_template: str, attributes: dict[str, Any]) -> None:
        lf = _logfire
        clean = {k: redact(v) if isinstance(v, str) else v for k, v in attributes.items()}
        self._cm: Any = lf.span(msg_template, **clean) if lf is not None else None
        self.span: Any = None

    def __enter__(self) -> LogfireSpan:
        if self._cm is not None:
            self.span = self._cm.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._cm is not None:
            self._cm.__exit__(*exc)

    def set_attribute(self, key: str, value: Any) -> None:
        if self.span is not None:
            self.span.set_attribute(key, redact(value) if isinstance(value, str) else value)

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)


def logfire_span(msg_template: str, **attributes: Any) -> LogfireSpan:
    """``with logfire_span("dcapix sync {stream}", stream=name) as span:`` — a logfire span while the
    integration is on (string attributes redacted), a no-op otherwise."""
    return LogfireSpan(msg_template, attributes)
