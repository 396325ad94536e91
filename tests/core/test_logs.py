"""Secrets never reach a log handler's output."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from dc_api_x import logs

SECRET = "s3cr3t-Pa55word"
API_KEY = "AK-9f8e7d6c5b4a"
TOKEN = "eyJhbGciOi.eyJzdWIiOi.SflKxwRJSM"
REGISTERED = "registered-secret-value-42"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The dc_api_x logger set up by ``setup_logging`` writing to a buffer."""
    buf = io.StringIO()
    logs.setup_logging(2, stream=buf)
    logs.register_secret(REGISTERED)
    yield buf
    logger = logging.getLogger("dc_api_x")
    for h in [h for h in logger.handlers if getattr(h, "_dcapix", False)]:
        logger.removeHandler(h)
    logger.setLevel(logging.NOTSET)


def test_no_secret_reaches_the_handler(captured: io.StringIO) -> None:
    log = logging.getLogger("dc_api_x.some.module")  # a child logger: the handler's filter applies
    log.info("connecting to postgresql+psycopg://loader:%s@db.example:5432/warehouse", SECRET)
    log.warning("GET https://api.example/v1/items?page=2&api_key=%s&limit=10 failed", API_KEY)
    log.error("sent headers {'Authorization': 'Bearer %s'}", TOKEN)
    log.debug("token from the vault: %s", REGISTERED)
    log.info("libpq dsn host=db user=loader password=%s dbname=w", SECRET)
    try:
        raise RuntimeError(f"refused https://u:{SECRET}@host/x with {REGISTERED}")
    except RuntimeError:
        log.exception("request failed")
    log.info("stack with secret %s", "x", stack_info=True, extra={"ignored": REGISTERED})
    out = captured.getvalue()
    for secret in (SECRET, API_KEY, TOKEN, REGISTERED):
        assert secret not in out, secret
    # ... while what is not secret stays readable
    assert "postgresql+psycopg://loader:***@db.example:5432/warehouse" in out
    assert "items?page=2&api_key=***&limit=10" in out
    assert "Bearer ***" in out and "token from the vault: ***" in out
    assert "password=*** dbname=w" in out
    assert "RuntimeError: refused https://u:***@host/x with ***" in out


def test_redact_functions() -> None:
    logs.register_secret(REGISTERED)
    logs.register_secret("abc")  # too short to mask safely: ignored
    assert logs.redact_url("https://user:pw@h/p?token=t1&x=1") == "https://user:***@h/p?token=***&x=1"
    assert logs.redact(f"Basic dXNlcjpwYXNz and {REGISTERED}") == "Basic *** and ***"
    assert logs.redact("abc token expired") == "abc token expired"
    assert logs.redact("option 'token': required option is missing") == (
        "option 'token': required option is missing"
    )
    assert logs.redact_mapping(
        {
            "password": "x",
            "nested": {"api_key": "y", "url": f"s://a:{SECRET}@h"},
            "items": [REGISTERED],
            "empty_token": "",
        }
    ) == {
        "password": "***",
        "nested": {"api_key": "***", "url": "s://a:***@h"},
        "items": ["***"],
        "empty_token": "",
    }
    assert logs.is_secret_key("Client_Secret") and not logs.is_secret_key("page_size")


def _redact_every_pattern(s: str) -> str:
    """:func:`logs.redact` without its check for texts no pattern can match."""
    s = logs.redact_url(s)
    s = logs._HEADER_SECRET.sub(lambda m: f"{m.group(1) or m.group(2)} {logs.MASK}", s)
    return logs._KV_SECRET.sub(lambda m: f"{m['key']}={logs.MASK}", s)


def test_redact_skips_the_patterns_only_where_none_can_match() -> None:
    import random

    rng = random.Random(7)
    parts = [
        "https://", "h.example", "/p", "?", "&", ";", "=", "x", "1", " ", ":", "@", "u", ".", "'",
        "PASS", "Pwd", "kEy", "api-key", "SECRET", "ToKeN", "Sig", "AUTH", "bearer", "Basic",
        "abc123def4", "\u017fecret", "\u212aey", "é", "=v4lue9", "password=s3cr3t",
    ]  # fmt: skip
    texts = [
        "https://h/records?limit=100&cursor=abc",
        "https://h/r?Access_Key=zz9&x=1",
        "https://h/r?pa\u017fsword=x",  # a long s: matched case-insensitively by the patterns
        "Authorization: BEARER abc.def",
        "host=db PWD=s3cr3t",
        "u:p@h",
    ]
    texts += ["".join(rng.choice(parts) for _ in range(rng.randint(1, 12))) for _ in range(3000)]
    skipped = 0
    for text in texts:
        assert logs.redact(text) == _redact_every_pattern(text), text
        skipped += not logs._may_match(text)
    assert skipped > 100  # the check does skip texts (and they came out the same)
    assert not logs._may_match("https://h/records?limit=100&cursor=abc")


def test_bad_format_arguments_are_redacted_too(captured: io.StringIO) -> None:
    logging.getLogger("dc_api_x.x").info("only one %s", REGISTERED, "extra-arg")
    assert REGISTERED not in captured.getvalue()


def test_records_propagating_to_the_applications_handlers_are_redacted() -> None:
    """An application that configures logging itself (root handler) never sees a dc_api_x secret."""
    from dc_api_x import enable_plugins

    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # (a CLI test run before in this process may have left a level on these loggers)
    ours = [logging.getLogger(n) for n in ("dc_api_x", "dc_api_x.runner", "dc_api_x.runner.pipeline")]
    old_levels = [(lg, lg.level, lg.disabled) for lg in ours]
    for lg in ours:
        lg.setLevel(logging.NOTSET)
        lg.disabled = False
    try:
        enable_plugins(entry_points=False, make_current=False)  # installs the redactor
        logs.install_redaction()  # idempotent
        dcapix_logger = logging.getLogger("dc_api_x")
        assert sum(1 for h in dcapix_logger.handlers if getattr(h, "_dcapix_redactor", False)) == 1
        logs.register_secret(REGISTERED)
        log = logging.getLogger("dc_api_x.runner.pipeline")
        log.info("loading with %s into postgresql://u:%s@h/db", REGISTERED, SECRET)
        try:
            raise ValueError(f"Bearer {TOKEN}")
        except ValueError:
            log.exception("auth failed")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        for lg, level, disabled in old_levels:
            lg.setLevel(level)
            lg.disabled = disabled
    out = buf.getvalue()
    assert "INFO dc_api_x.runner.pipeline loading with *** into postgresql://u:***@h/db" in out
    assert "ValueError: Bearer ***" in out
    for secret in (REGISTERED, SECRET, TOKEN):
        assert secret not in out


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("GET http://h/x?password=s3cr3t-pw: HTTP 500", "GET http://h/x?password=***: HTTP 500"),
        ("url http://h/x?a=1&api_key=abc123, next", "url http://h/x?a=1&api_key=***, next"),
        ("(see http://h/x?token=abc123).", "(see http://h/x?token=***)."),
        ("http://h/x?token=a:b:c&x=1", "http://h/x?token=***&x=1"),  # a ':' inside the value is masked
        ("connect password=s3cr3t-pw: refused", "connect password=***: refused"),
        ("host=db password=p:w:d", "host=db password=***"),
    ],
)
def test_redacted_query_secret_keeps_the_punctuation_after_it(text: str, shown: str) -> None:
    assert logs.redact(text) == shown
