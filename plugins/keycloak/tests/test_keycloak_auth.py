"""The ``keycloak`` auth provider against a real OpenID Connect server (oidc-provider)."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Any

import pytest
from keycloak_testdata import ALICE_ID, CANARIES, INTROSPECTION_CLIENT

from dc_api_x import create_adapter
from dc_api_x.exceptions import AuthError, ConfigError
from dc_api_x.logs import redact

pytestmark = pytest.mark.usefixtures("kc_plugins", "no_keycloak_env")


def provider(oidc: Any, **options: Any) -> Any:
    from dc_api_x_keycloak.auth import KeycloakAuth

    options.setdefault("server_url", oidc.url)
    options.setdefault("realm", "acme")
    return KeycloakAuth(options)


def api(admin: Any, auth: Any) -> Any:
    """The core's ``http`` adapter on the admin server, with ``auth``."""
    return create_adapter({"adapter": "http", "base_url": f"{admin.url}/admin/realms/acme", "auth": auth})


def introspect(oidc: Any, realm: str, token: str) -> dict[str, Any]:
    cid, secret = INTROSPECTION_CLIENT
    status, body = oidc.post(
        realm, "token/introspect", {"token": token, "client_id": cid, "client_secret": secret}
    )
    assert status == 200, body
    return body


# -- options --------------------------------------------------------------------------------------
def test_token_url_is_built_from_the_server_url_and_the_realm() -> None:
    from dc_api_x_keycloak.auth import KeycloakAuth

    def url(**kw: Any) -> str:
        return KeycloakAuth({"client_id": "c", "client_secret": "s3cr3t-x", **kw}).token_url

    assert url(server_url="https://sso.example.com", realm="acme") == (
        "https://sso.example.com/realms/acme/protocol/openid-connect/token"
    )
    assert url(server_url="https://sso.example.com/auth/", realm="my realm") == (
        "https://sso.example.com/auth/realms/my%20realm/protocol/openid-connect/token"
    )
    assert url(token_url="https://id.example.com/t") == "https://id.example.com/t"


def test_options_come_from_the_environment_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    from dc_api_x_keycloak.auth import KeycloakAuth

    monkeypatch.setenv("KEYCLOAK_URL", "https://sso.example.com")
    monkeypatch.setenv("KEYCLOAK_REALM", "acme")
    monkeypatch.setenv("KEYCLOAK_AUTH_REALM", "master")
    monkeypatch.setenv("KEYCLOAK_CLIENT_ID", "admin-cli")
    monkeypatch.setenv("KEYCLOAK_USERNAME", "admin")
    monkeypatch.setenv("KEYCLOAK_PASSWORD", CANARIES["admin_password"])
    p = KeycloakAuth({})
    assert p.token_url == "https://sso.example.com/realms/master/protocol/openid-connect/token"
    assert (p.grant_type, p.options.username) == ("password", "admin")
    assert redact(f"pw={CANARIES['admin_password']}") == "pw=***"  # registered at construction
    assert CANARIES["admin_password"] not in repr(p)
    explicit = KeycloakAuth(
        {"realm": "acme", "client_id": "etl", "client_secret": "x" * 8, "grant_type": "client_credentials"}
    )
    assert explicit.token_url.endswith("/realms/acme/protocol/openid-connect/token")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"realm": "acme", "client_secret": "s"}, "option 'client_id': required option is missing"),
        ({"client_id": "c", "client_secret": "s"}, "option 'realm': required option is missing"),
        ({"realm": "acme", "client_id": "c"}, "option 'client_secret': required option is missing"),
        (
            {"realm": "acme", "client_id": "c", "username": "u"},
            "option 'password': required option is missing",
        ),
        ({"realm": "acme", "client_id": "c", "grant_type": "refresh_token"}, "option 'refresh_token'"),
        (
            {"realm": "acme", "client_id": "c", "client_secret": "s", "auth_method": "digest"},
            "option 'auth_method'",
        ),
        (
            {"realm": "acme", "client_id": "c", "client_secret": "s", "refresh_margn": 5},
            "option 'refresh_margn': unknown",
        ),
    ],
)
def test_bad_options_are_one_line_naming_the_option(oidc: Any, options: dict[str, Any], message: str) -> None:
    from dc_api_x_keycloak.auth import KeycloakAuth

    with pytest.raises(ConfigError) as info:
        KeycloakAuth({"server_url": oidc.url, **options})
    text = str(info.value)
    assert text.startswith("auth provider 'keycloak': ") and message in text and "\n" not in text


# -- grants ---------------------------------------------------------------------------------------
def test_client_credentials_token_is_fetched_once_and_reused(oidc: Any, admin: Any) -> None:
    before = len(oidc.calls(client_id="etl-service"))
    with api(
        admin,
        {
            "type": "keycloak",
            "server_url": oidc.url,
            "realm": "acme",
            "client_id": "etl-service",
            "client_secret": CANARIES["etl_secret"],
        },
    ) as http:
        for _ in range(5):
            assert http.request("GET", "users/count").data == 23
    calls = oidc.calls(client_id="etl-service")[before:]
    assert [(c["grant_type"], c["status"]) for c in calls] == [("client_credentials", 200)]
    assert admin.statuses() == [200] * 5


def test_client_secret_basic_form_encodes_the_credentials(oidc: Any, admin: Any) -> None:
    p = provider(oidc, client_id="etl-basic", client_secret=CANARIES["basic_secret"], auth_method="basic")
    with api(admin, None) as http:
        assert http.request("GET", "users/count", auth=p).data == 23
    assert p.grants == {"client_credentials": 1}
    assert oidc.calls(client_id="etl-basic")[-1]["status"] == 200
    p.close()


def test_password_grant_refresh_rotation_and_reuse_fallback(oidc: Any) -> None:
    p = provider(oidc, client_id="cli-short", username="alice", password=CANARIES["alice_password"])
    first = p.token()
    rt1 = p._refresh
    assert p.grants == {"password": 1} and rt1
    assert introspect(oidc, "acme", first)["sub"] == ALICE_ID
    assert p.token() == first  # reused while fresh (2 s token: 1 s before renewal)
    time.sleep(1.1)
    second = p.token()  # renewed with the refresh token, which rotates
    rt2 = p._refresh
    assert second != first and rt2 and rt2 != rt1
    assert p.grants == {"password": 1, "refresh_token": 1}
    # the server rotated for real: the old refresh token is refused, and presenting it (reuse)
    # revokes the whole grant, so the provider's current refresh token dies too ...
    status, body = oidc.post(
        "acme", "token", {"grant_type": "refresh_token", "client_id": "cli-short", "refresh_token": rt1}
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    assert introspect(oidc, "acme", rt2)["active"] is False
    # ... and the provider starts a new session with the password grant, without an error
    time.sleep(1.1)
    third = p.token()
    assert third not in (first, second)
    assert p.grants == {"password": 2, "refresh_token": 1}
    refresh_calls = [c["status"] for c in oidc.calls(client_id="cli-short", grant_type="refresh_token")]
    assert refresh_calls[-1] == 400  # the provider tried its (revoked) refresh token once, then fell back
    p.close()


def test_expired_refresh_token_is_not_sent(oidc: Any) -> None:
    p = provider(oidc, client_id="cli-rt-short", username="alice", password=CANARIES["alice_password"])
    p.token()
    time.sleep(2.1)  # both tokens are past their lifetime (1 s and 2 s)
    p.token()
    assert p.grants == {"password": 2}
    assert oidc.calls(client_id="cli-rt-short", grant_type="refresh_token") == []
    p.close()


def test_refresh_token_grant_from_a_given_token(oidc: Any) -> None:
    status, body = oidc.post(
        "acme",
        "token",
        {
            "grant_type": "password",
            "client_id": "cli",
            "username": "alice",
            "password": CANARIES["alice_password"],
            "scope": "offline_access",
        },
    )
    assert status == 200, body
    p = provider(oidc, client_id="cli", refresh_token=body["refresh_token"])
    assert p.grant_type == "refresh_token"
    token = p.token()
    assert introspect(oidc, "acme", token)["active"] is True
    assert p._refresh != body["refresh_token"]  # rotated
    # the session is revoked (RFC 7009): the next renewal is refused with one clear line
    status, _ = oidc.post(
        "acme", "revoke", {"token": p._refresh, "client_id": "cli", "token_type_hint": "refresh_token"}
    )
    assert status == 200
    p.invalidate()
    with pytest.raises(AuthError) as info:
        p.token()
    text = str(info.value)
    assert "(refresh_token) failed: HTTP 400 invalid_grant" in text and oidc.token_url("acme") in text
    assert body["refresh_token"] not in text and "\n" not in text


def test_close_revokes_the_password_session(oidc: Any) -> None:
    p = provider(oidc, client_id="cli", username="alice", password=CANARIES["alice_password"])
    token = p.token()
    rt = p._refresh
    assert introspect(oidc, "acme", rt)["active"] is True
    p.close()
    assert introspect(oidc, "acme", rt)["active"] is False
    assert introspect(oidc, "acme", token)["active"] is False  # revoking the grant ends its tokens
    p.close()  # twice is fine
    kept = provider(
        oidc, client_id="cli", username="alice", password=CANARIES["alice_password"], revoke_on_close=False
    )
    kept.token()
    rt = kept._refresh
    kept.close()
    assert introspect(oidc, "acme", rt)["active"] is True


# -- lifetime and concurrency ------------------------------------------------------------------------
def test_a_3_second_token_is_fetched_at_most_once_per_1_5_s(oidc: Any, admin: Any) -> None:
    """Issue 17 item 5: the margin (60 s by default) is capped at half the lifetime."""
    p = provider(oidc, client_id="short-lived", client_secret=CANARIES["short_secret"])
    before = len(oidc.calls(client_id="short-lived"))
    stop = time.monotonic() + 4.6
    http = api(admin, None)

    def work() -> None:
        while time.monotonic() < stop:
            assert http.request("GET", "users/count", auth=p).status_code == 200

    threads = [threading.Thread(target=work) for _ in range(3)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    calls = oidc.calls(client_id="short-lived")[before:]
    requests = len(admin.requests)
    assert requests > 20
    assert 2 <= len(calls) <= int(elapsed / 1.5) + 1, (len(calls), elapsed)
    assert all(c["status"] == 200 for c in calls)
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(calls)]
    assert all(g >= 1.0 for g in gaps), gaps  # no renewal before half the lifetime (server-side times)
    assert 401 not in admin.statuses()  # never sent after its expiry
    http.close()
    p.close()


def test_margin_option_is_used_when_below_half_the_lifetime(oidc: Any) -> None:
    p = provider(oidc, client_id="short-lived", client_secret=CANARIES["short_secret"], refresh_margin=0.5)
    t0 = time.monotonic()
    p.token()
    assert p._token is not None and p._token.deadline is not None
    assert 2.4 <= p._token.deadline - t0 <= 2.6  # 3 s - 0.5 s


def test_concurrent_requests_share_one_token_request(oidc: Any) -> None:
    """Realm 'slow' answers token requests after 400 ms: 12 threads that need a token at the same
    moment make one request between them."""
    p = provider(oidc, realm="slow", client_id="etl-service", client_secret=CANARIES["etl_secret"])
    before = len(oidc.calls(realm="slow"))
    for _round in range(2):
        barrier = threading.Barrier(12)
        got: list[str] = []

        def need(barrier: threading.Barrier = barrier, got: list[str] = got) -> None:
            barrier.wait()
            got.append(p.token())

        threads = [threading.Thread(target=need) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(got)) == 1 and len(got) == 12
        p.invalidate()
    assert len(oidc.calls(realm="slow")[before:]) == 2


def _provider_with_revoked_token(oidc: Any) -> tuple[Any, str, int]:
    """A provider holding a token the server has revoked (its next use gets a 401), that token,
    and the client's token requests so far."""
    p = provider(oidc, client_id="etl-service", client_secret=CANARIES["etl_secret"])
    old = p.token()
    status, _ = oidc.post(
        "acme", "revoke", {"token": old, "client_id": "etl-service", "client_secret": CANARIES["etl_secret"]}
    )
    assert status == 200
    return p, old, len(oidc.calls(client_id="etl-service"))


def test_a_401_drops_only_that_token_and_concurrent_401s_share_one_renewal(oidc: Any, admin: Any) -> None:
    p, old, before = _provider_with_revoked_token(oidc)
    http = api(admin, None)
    barrier = threading.Barrier(8)
    results: list[int] = []

    def call() -> None:
        barrier.wait()
        results.append(http.request("GET", "users/count", auth=p).status_code)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 8
    assert admin.statuses().count(401) == 8 and admin.statuses().count(200) == 8
    assert len(oidc.calls(client_id="etl-service")[before:]) == 1
    assert p.token() != old
    http.close()


# -- errors and secrets -----------------------------------------------------------------------------
def test_refused_credentials_are_one_line_naming_the_url_never_the_secret(oidc: Any) -> None:
    wrong = "CANARY-wrong-secret-d00d"
    cases = [
        (provider(oidc, client_id="etl-service", client_secret=wrong), "HTTP 401 invalid_client"),
        (
            provider(oidc, client_id="cli", username="alice", password=wrong),
            "HTTP 401 invalid_grant Invalid user credentials",
        ),
        (provider(oidc, realm="nope", client_id="etl-service", client_secret=wrong), "HTTP 404"),
        (
            provider(oidc, server_url="http://127.0.0.1:9", client_id="etl-service", client_secret=wrong),
            "ConnectError",
        ),
    ]
    for p, expected in cases:
        p._http = create_adapter({"adapter": "http", "retries": 1})  # no retry waits
        with pytest.raises(AuthError) as info:
            p.token()
        text = str(info.value)
        assert expected in text and p.token_url in text and "\n" not in text, text
        assert wrong not in text and CANARIES["alice_password"] not in text


def test_secrets_and_tokens_never_reach_a_log_line_or_an_error(
    oidc: Any, admin: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "dc_api_x"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    seen_tokens: list[str] = []
    errors: list[str] = []
    try:
        cc = provider(oidc, client_id="etl-service", client_secret=CANARIES["etl_secret"])
        pw = provider(oidc, client_id="cli-short", username="alice", password=CANARIES["alice_password"])
        basic = provider(
            oidc, client_id="etl-basic", client_secret=CANARIES["basic_secret"], auth_method="basic"
        )
        http = api(admin, None)
        for p in (cc, pw, basic):
            assert http.request("GET", "users/count", auth=p).status_code == 200
            seen_tokens.append(p.token())
        time.sleep(1.1)
        seen_tokens.append(pw.token())  # a refresh
        seen_tokens.append(pw._refresh or "")
        logging.getLogger("dc_api_x.test").warning(
            "sending %s with %s", seen_tokens[0], CANARIES["etl_secret"]
        )
        bad = provider(oidc, client_id="etl-service", client_secret=CANARIES["viewer_secret"])
        try:
            bad.token()
        except AuthError as exc:
            errors.append(str(exc))
            logging.getLogger("dc_api_x.test").exception("failed")
        viewer = provider(oidc, client_id="viewer", client_secret=CANARIES["viewer_secret"])
        try:
            http.request("GET", "users", auth=viewer, raise_for_status=True)
        except Exception as exc:  # the 403 of a principal without admin roles
            errors.append(str(exc))
        for p in (cc, pw, basic, viewer):
            errors.append(repr(p))
            p.close()
        http.close()
    finally:
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
    text = caplog.text + "\n".join(errors)
    assert "token request" in text or "HTTP 401" in text  # something was logged / raised
    for secret in [*CANARIES.values(), *seen_tokens]:
        if secret:
            assert secret not in text, f"a secret leaked: {secret[:12]}…"


# -- async (AsyncApiClient) -------------------------------------------------------------------------
def test_async_tasks_share_one_token_request_and_the_loop_is_not_blocked(oidc: Any) -> None:
    """Realm 'slow' answers token requests after 400 ms: 12 tasks that need a token at once make one
    request between them, and a task ticking every 10 ms keeps ticking meanwhile (the request runs
    in a worker thread, not on the event loop)."""
    import asyncio

    import httpx

    p = provider(oidc, realm="slow", client_id="etl-service", client_secret=CANARIES["etl_secret"])
    before = len(oidc.calls(realm="slow"))

    async def main() -> tuple[list[str], int]:
        ticks = 0
        done = asyncio.Event()

        async def heartbeat() -> None:
            nonlocal ticks
            while not done.is_set():
                await asyncio.sleep(0.01)
                ticks += 1

        beat = asyncio.create_task(heartbeat())
        requests = [httpx.Request("GET", "http://127.0.0.1/x") for _ in range(12)]
        await asyncio.gather(*(p.aapply(r) for r in requests))
        done.set()
        await beat
        return [r.headers["Authorization"] for r in requests], ticks

    headers, ticks = asyncio.run(main())
    assert len(set(headers)) == 1 and headers[0].startswith("Bearer ")
    assert len(oidc.calls(realm="slow")[before:]) == 1
    assert ticks >= 10, ticks  # >= 100 ms of the 400 ms fetch ticked: the loop ran on
    p.close()


def test_async_client_concurrent_401s_share_one_renewal(oidc: Any, admin: Any) -> None:
    import asyncio

    from dc_api_x import AsyncApiClient

    p, old, before = _provider_with_revoked_token(oidc)

    async def main() -> list[int]:
        async with AsyncApiClient(f"{admin.url}/admin/realms/acme", hooks=[], auth=p) as client:
            answers = await asyncio.gather(*(client.get("users/count") for _ in range(8)))
        return [a.status_code for a in answers]

    assert asyncio.run(main()) == [200] * 8
    assert admin.statuses().count(401) == 8 and admin.statuses().count(200) == 8
    assert len(oidc.calls(client_id="etl-service")[before:]) == 1
    assert p.token() != old
    p.close()
