"""Each of the seven registries fed by a guide-style plugin with ``registry[name] = ...`` and used in
a real call: the guide's ``advanced_plugin`` (adapters, auth providers, transforms through
``register_transforms``) and ``registry_reference_plugin`` (the "Plugin Registry Reference" table's
other hooks), loaded from their entry points."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from dc_api_x import ApiClient, create_plugin, enable_plugins

from .conftest import GUIDE_GROUP

DCAPIX = Path(sys.executable).parent / "dcapix"


@pytest.fixture
def ps() -> Any:
    plugin_set = enable_plugins(entry_point_groups=[GUIDE_GROUP], blocked=["custom_plugin"])
    yield plugin_set
    plugin_set.close()


def test_who_registers_what(ps: Any) -> None:
    ps.fill_registries()
    assert ps.plugins["advanced_plugin"].registers == {
        "adapters": ["custom_protocol"],
        "auth_providers": ["custom_auth"],
        "transforms": ["custom_transform"],  # through register_transforms, the guide's other name
    }
    assert ps.plugins["registry_reference_plugin"].registers == {
        "hooks": ["request_id"],
        "schema_providers": ["static_schema"],
        "transforms": ["suffix"],
        "paginators": ["skip_take"],
        "config_providers": ["dotfile"],
    }


def test_adapter(ps: Any) -> None:
    with ApiClient(url="proto://h", adapter="custom_protocol", adapter_options={"region": "eu"}) as api:
        assert api.get("things").data["data"]["settings"] == {"region": "eu"}


def test_auth_provider_header_reaches_the_server(ps: Any, http_server: Any) -> None:
    http_server.route("GET", "/whoami", lambda req: (200, {}, {"auth": req.headers.get("x-custom-auth")}))
    with ApiClient(
        http_server.url, adapter="http", auth={"type": "custom_auth", "key": "k3y-Value-123"}
    ) as api:
        assert api.get("/whoami").data == {"auth": "k3y-Value-123"}
    assert http_server.requests[-1].headers["x-custom-auth"] == "k3y-Value-123"


def test_request_hook_header_reaches_the_server(ps: Any, http_server: Any) -> None:
    http_server.route("GET", "/ping", lambda req: (200, {}, {"ok": True}))
    with ApiClient(http_server.url, adapter="http", hooks=["request_id", "metrics"]) as api:
        api.get("/ping")
        api.get("/ping")
        sent = api.hook("request_id").sent
    assert [r.headers["x-request-id"] for r in http_server.requests] == sent and len(set(sent)) == 2


def test_paginator_drives_api_client_paginate_against_the_server(ps: Any, http_server: Any) -> None:
    rows = [{"id": i} for i in range(1, 11)]

    def items(req: Any) -> tuple[int, dict[str, str], Any]:
        skip, take = int(req.arg("skip")), int(req.arg("take"))
        return 200, {}, {"items": rows[skip : skip + take]}

    http_server.route("GET", "/items", items)
    with ApiClient(http_server.url, adapter="http") as api:
        got = list(api.paginate("/items", paginator={"type": "skip_take", "take": 4}, records_path="items"))
    assert got == rows
    assert [(r.arg("skip"), r.arg("take")) for r in http_server.requests] == [
        ("0", "4"),
        ("4", "4"),
        ("8", "4"),
    ]


def test_schema_provider(ps: Any) -> None:
    provider = create_plugin("schema_providers", {"type": "static_schema", "fields": {"id": "integer"}})
    assert provider.schema(stream="x") == {
        "type": "object",
        "properties": {"id": {"type": ["integer", "null"]}},
    }


def test_config_provider_joins_load_settings_by_priority(
    ps: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dc_api_x.config import load_settings

    class Settings(BaseModel):
        name: str = "default"
        timeout: int = 5

    dotfile = tmp_path / "dcapix.json"
    dotfile.write_text(json.dumps({"name": "from-dotfile"}))
    monkeypatch.setenv("GUIDE_DOTFILE", str(dotfile))
    monkeypatch.setenv("DCAPIX_NAME", "from-env")
    monkeypatch.setenv("DCAPIX_TIMEOUT", "9")
    settings = load_settings(Settings)
    assert (settings.name, settings.timeout) == ("from-dotfile", 9)  # priority 30 beats the env (20)


def test_transforms_change_rows_in_dcapix_run(tmp_path: Path, examples_env: dict[str, str]) -> None:
    """A real ``dcapix run`` process: the plugins come from their entry points (the environment
    switches the examples' group on), both transform hooks' entries apply in order."""
    db = tmp_path / "people.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    con.executemany("INSERT INTO people VALUES (?, ?)", [(i, f"person-{i}") for i in range(1, 6)])
    con.commit()
    con.close()
    out = tmp_path / "out"
    (tmp_path / "dcapix.yml").write_text(
        json.dumps(
            {
                "pipelines": {
                    "people": {
                        "source": {
                            "adapter": "sql",
                            "url": f"sqlite:///{db}",
                            "streams": ["people"],
                            "transforms": [
                                {"type": "custom_transform", "fields": ["name"]},
                                {"type": "suffix", "field": "name", "suffix": "!"},
                            ],
                        },
                        "destination": {"adapter": "jsonl", "path": str(out)},
                    }
                }
            }
        )
    )
    res = subprocess.run(
        [str(DCAPIX), "run", "-c", str(tmp_path / "dcapix.yml"), "--no-state", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=180,
        env=examples_env,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    rows = [json.loads(x) for f in sorted(out.rglob("*.jsonl")) for x in f.read_text().splitlines() if x]
    assert sorted(r["name"] for r in rows) == [f"PERSON-{i}!" for i in range(1, 6)]


def test_every_registry_was_filled_through_the_mapping_form() -> None:
    """The two plugins above register only with ``registry[name] = ...`` (no .register call)."""
    import inspect

    import advanced_plugin
    import registry_reference_plugin

    for mod in (advanced_plugin, registry_reference_plugin):
        src = inspect.getsource(mod)
        assert "registry[" in src and ".register(" not in src
