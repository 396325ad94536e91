"""End to end through the installed distribution: ``dcapix plugins``, ``dcapix run`` and
``tap-dcapix | target-dcapix`` from the admin-API server (tokens from the real OIDC server)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from dc_api_x_keycloak.schemas import CLIENT, GROUP, ROLE, USER
from keycloak_admin_server import _group_rep, _role_rep, _user_rep
from keycloak_testdata import CANARIES, flat_groups, listed_users

pytestmark = pytest.mark.usefixtures("no_keycloak_env")


def _src(
    oidc: Any, admin: Any, client: str = "etl-service", secret: str = "etl_secret", **kw: Any
) -> dict[str, Any]:
    return {
        "adapter": "keycloak",
        "server_url": admin.url,
        "realm": "acme",
        "page_size": 4,
        "auth": {
            "type": "keycloak",
            "server_url": oidc.url,
            "client_id": client,
            "client_secret": CANARIES[secret],
        },
        **kw,
    }


def _run(bin_dir: Path, *args: str, cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


def _dcapix_run(
    bin_dir: Path, tmp: Path, src: dict[str, Any], dst: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    (tmp / "src.json").write_text(json.dumps(src))
    (tmp / "dst.json").write_text(json.dumps(dst))
    return _run(
        bin_dir,
        "dcapix",
        "run",
        "--source",
        "src.json",
        "--destination",
        "dst.json",
        "--state-db",
        str(tmp / "state.db"),
        "--no-progress",
        cwd=tmp,
    )


def _shape(rows: list[dict[str, Any]], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows as a destination holds them: every schema field (absent: null), JSON text decoded."""
    out = []
    for r in rows:
        row = {}
        for k in schema["properties"]:
            v = r.get(k)
            row[k] = json.loads(v) if isinstance(v, str) and v[:1] in "{[" else v
        out.append(row)
    return out


def expected(admin: Any) -> dict[str, list[dict[str, Any]]]:
    realm = admin.realms["acme"]
    groups = {g["id"]: g for g in _walk(realm.groups)}
    parents = {gid: parent for gid, parent, _ in flat_groups(realm)}
    clients = []
    for c in sorted(realm.clients, key=lambda c: c["clientId"]):
        rep = {k: v for k, v in c.items() if v is not None and k != "secret"}
        rep["access"] = {"view": True, "configure": True, "manage": True}
        clients.append(rep)
    return {
        "users": _shape([_user_rep(u, brief=False) for u in listed_users(realm)], USER),
        "groups": _shape(
            [
                _group_rep(groups[gid], brief=False, count=True, parent=groups.get(parents[gid] or ""))
                for gid, _p, _path in flat_groups(realm)
            ],
            GROUP,
        ),
        "clients": _shape(clients, CLIENT),
        "realm_roles": _shape(
            [_role_rep(r, brief=False) for r in sorted(realm.roles, key=lambda r: r["name"])], ROLE
        ),
    }


def _walk(groups: list[dict[str, Any]]) -> Any:
    for g in groups:
        yield g
        yield from _walk(g["subGroups"])


def _jsonl(root: Path, stream: str) -> list[dict[str, Any]]:
    rows = []
    for part in sorted((root / stream).glob("*.jsonl")):
        rows.extend(json.loads(line) for line in part.read_text().splitlines() if line.strip())
    return rows


def _no_secret_in(*texts: str) -> None:
    for text in texts:
        for name, canary in CANARIES.items():
            assert canary not in text, f"secret {name} leaked"


def test_dcapix_plugins_lists_the_installed_distribution(installed_plugin: Path, tmp_path: Path) -> None:
    res = _run(installed_plugin, "dcapix", "plugins", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    info = next(p for p in json.loads(res.stdout) if p["name"] == "keycloak")
    assert (info["distribution"], info["status"]) == ("dc-api-x-keycloak", "loaded")
    assert info["registers"] == {
        "adapters": ["keycloak"],
        "auth_providers": ["keycloak"],
        "paginators": ["keycloak"],
    }


def test_dcapix_run_to_jsonl_exact_rows_and_a_second_run_replaces_them(
    installed_plugin: Path, oidc: Any, admin: Any, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    dst = {"adapter": "jsonl", "path": str(lake), "load_method": "overwrite"}
    first = _dcapix_run(installed_plugin, tmp_path, _src(oidc, admin), dst)
    assert first.returncode == 0, first.stderr[-3000:]
    want = expected(admin)
    assert {s: len(v) for s, v in want.items()} == {"users": 23, "groups": 20, "clients": 5, "realm_roles": 8}
    for stream, rows in want.items():
        assert _shape(_jsonl(lake, stream), {"properties": dict.fromkeys(rows[0])}) == rows, stream

    # the realm changes; full-table streams: the next run (overwrite) holds exactly the new state
    realm = admin.realms["acme"]
    realm.users.append(
        {
            "id": "00000000-0000-4000-8000-000000000099",
            "username": "user99",
            "enabled": True,
            "emailVerified": True,
            "createdTimestamp": 1_800_000_000_000,
            "email": "new@acme.example",
        }
    )
    realm.users[4]["email"] = "changed@acme.example"
    del realm.users[0]
    sales = next(g for g in realm.groups if g["id"] == "g-sales")
    sales["subGroups"] = []
    realm.roles = [r for r in realm.roles if r["name"] != "auditor"]
    second = _dcapix_run(installed_plugin, tmp_path, _src(oidc, admin), dst)
    assert second.returncode == 0, second.stderr[-3000:]
    want = expected(admin)
    assert {s: len(v) for s, v in want.items()} == {"users": 23, "groups": 19, "clients": 5, "realm_roles": 7}
    for stream, rows in want.items():
        assert _shape(_jsonl(lake, stream), {"properties": dict.fromkeys(rows[0])}) == rows, stream
    assert (
        next(u for u in _jsonl(lake, "users") if u["username"] == "user05")["email"] == "changed@acme.example"
    )
    _no_secret_in(
        first.stdout,
        first.stderr,
        second.stdout,
        second.stderr,
        *(p.read_text() for p in lake.rglob("*") if p.is_file()),
    )


def test_tap_dcapix_pipe_target_dcapix_to_parquet_exact_values(
    installed_plugin: Path, oidc: Any, admin: Any, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    lake = tmp_path / "parquet"
    tap_cfg, tgt_cfg = tmp_path / "tap.json", tmp_path / "target.json"
    tap_cfg.write_text(json.dumps(_src(oidc, admin)))
    tgt_cfg.write_text(json.dumps({"adapter": "parquet", "path": str(lake)}))
    tap_err, tgt_err = tmp_path / "tap.err", tmp_path / "target.err"
    with tap_err.open("wb") as te, tgt_err.open("wb") as ge:
        tap = subprocess.Popen(
            [str(installed_plugin / "tap-dcapix"), "--config", str(tap_cfg)],
            stdout=subprocess.PIPE,
            stderr=te,
            cwd=tmp_path,
        )
        target = subprocess.Popen(
            [str(installed_plugin / "target-dcapix"), "--config", str(tgt_cfg)],
            stdin=tap.stdout,
            stdout=subprocess.PIPE,
            stderr=ge,
            cwd=tmp_path,
        )
        assert tap.stdout is not None
        tap.stdout.close()
        out, _ = target.communicate(timeout=180)
        tap.wait(timeout=60)
    assert (tap.returncode, target.returncode) == (0, 0), (
        tgt_err.read_text()[-2000:] + tap_err.read_text()[-2000:]
    )
    want = expected(admin)
    for stream, rows in want.items():
        table = pq.read_table(lake / stream)
        got = table.to_pylist()
        keys = list(rows[0])
        by_id = {r["id"]: r for r in _shape(got, {"properties": dict.fromkeys(keys)})}
        assert len(got) == len(rows) and by_id == {r["id"]: r for r in rows}, stream
    assert str(pq.read_table(lake / "users").schema.field("createdTimestamp").type) == "int64"
    _no_secret_in(out.decode(), tap_err.read_text(), tgt_err.read_text())


def test_a_3_second_token_during_dcapix_run_is_fetched_at_most_once_per_1_5_s(
    installed_plugin: Path, oidc: Any, admin: Any, tmp_path: Path
) -> None:
    admin.delay = 0.1  # a slow API: the run lasts several token lifetimes
    before = len(oidc.calls(client_id="short-lived"))
    src = _src(oidc, admin, client="short-lived", secret="short_secret", page_size=2, prefetch=False)
    started = time.monotonic()
    res = _dcapix_run(installed_plugin, tmp_path, src, {"adapter": "jsonl", "path": str(tmp_path / "out")})
    elapsed = time.monotonic() - started
    assert res.returncode == 0, res.stderr[-3000:]
    calls = oidc.calls(client_id="short-lived")[before:]
    assert elapsed > 4.5 and len(admin.requests) > 30
    assert 2 <= len(calls) <= int(elapsed / 1.5) + 1, (len(calls), elapsed)
    assert 401 not in admin.statuses()
    assert sum(1 for _ in (tmp_path / "out").rglob("*.jsonl")) == 4


def test_a_pipeline_file_with_a_stream_selection_and_a_dry_run(
    installed_plugin: Path, oidc: Any, admin: Any, tmp_path: Path
) -> None:
    (tmp_path / "dcapix.yml").write_text(
        f"""
pipelines:
  kc:
    source:
      adapter: keycloak
      server_url: {admin.url}
      realm: acme
      auth:
        {{type: keycloak, server_url: "{oidc.url}", client_id: etl-service, client_secret: "${{KC_SECRET}}"}}
      streams: [users, realm_roles]
    destination:
      adapter: parquet
      path: {tmp_path / "lake"}
      load_method: overwrite
"""
    )
    env = {"KC_SECRET": CANARIES["etl_secret"], "PATH": str(installed_plugin)}
    dry = subprocess.run(
        [str(installed_plugin / "dcapix"), "run", "kc", "--dry-run"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert '"users"' in dry.stdout and '"groups"' not in dry.stdout
    assert admin.requests == []  # planning reads nothing
    run = subprocess.run(
        [str(installed_plugin / "dcapix"), "run", "kc", "--no-progress"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "lake").iterdir()) == ["realm_roles", "users"]
    _no_secret_in(dry.stdout, dry.stderr, run.stdout, run.stderr)
