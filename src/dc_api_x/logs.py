"""Logging: stdlib logging with a redaction filter (secrets never reach a handler).

:func:`redact` masks known secret values and credentials in URLs; :class:`RedactingFilter` applies
it to every record. :func:`register_secret` adds a value to mask (auth providers call it for the
tokens they handle). Optional logfire integration: :func:`setup_logging` with ``logfire=True`` sends
records to logfire when the ``logfire`` extra is installed.
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
    "RedactingFilter",
    "install_redaction",
    "is_secret_key",
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
    r"signature|sig|auth)[a-z0-9_.-]*))=(?P<val>[^&#\s]*)"
)
# "Bearer <token>" / "Basic <b64>" anywhere; "Token <value>" only when the value looks like a token
# (8+ characters with a digit), so prose such as "token expired" stays readable.
_HEADER_SECRET = re.compile(
    r"(?i:\b(Bearer|Basic))\s+[A-Za-z0-9._~+/=-]+|\b(Token)\s+(?=[A-Za-z._~+/=-]*[0-9])[A-Za-z0-9._~+/=-]{8,}"
)
# key=value secrets outside URLs: libpq DSNs ("host=db password=s3cr3t"), env dumps, CLI args.
_KV_SECRET = re.compile(
    r"(?i)(?<![?&;\w-])(?P<key>[a-z0-9_-]*(?:password|passwd|pwd|api[_-]?key|apikey|client[_-]?secret|"
    r"access[_-]?token|refresh[_-]?token|secret[_-]?key))=(?P<val>[^\s&'\",;]+)"
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


def redact(text: Any) -> str:
    """``text`` with URL credentials, secret query values, auth headers and registered secrets masked."""
    s = str(text)
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
            import logfire as _logfire  # type: ignore[import-not-found]
        except ImportError:
            logger.warning(
                "DCAPIX_LOGFIRE is set but logfire is not installed (pip install 'dc-api-x[logfire]')"
            )
        else:
            _logfire.configure(send_to_logfire="if-token-present")
            lf_handler = _logfire.LogfireLoggingHandler()
            lf_handler.addFilter(RedactingFilter())
            logger.addHandler(lf_handler)
