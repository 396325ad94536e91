"""The distribution as a plugin: discovered through its entry point, listed by ``dcapix plugins``,
lazy, listed as failed with the reason when its client library is missing (the others keep
working), configured by pydantic and the environment, removed cleanly by ``pip uninstall``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dc_api_x_ldap
import pytest
from ldap_support import BIN, ROOT, run_cli

import dc_api_x
from dc_api_x.exceptions import ConfigError

PLUGIN_DIR = ROOT / "plugins" / "ldap"


def test_entry_point_registers_the_ldap_adapter():
    ps = dc_api_x.enable_plugins(make_current=False)
    try:
        from dc_api_x_ldap.adapter import LdapAdapter

        assert ps.adapters.get("ldap") is LdapAdapter  # (a core with lazy registries fills them now)
        info = ps.plugins["ldap"]
        assert (info.status, info.distribution, info.version) == ("loaded", "dc-api-x-ldap", "0.2.0")
        assert info.registers == {"adapters": ["ldap"]}
    finally:
        ps.close()


def test_guide_style_mapping_registration_without_entry_points():
    ps = dc_api_x.enable_plugins(entry_points=False, plugins=[dc_api_x_ldap], make_current=False)
    try:
        assert ps.plugins["dc_api_x_ldap"].status == "loaded"
        assert ps.adapters.get("ldap").name == "ldap"
    finally:
        ps.close()


def test_dcapix_plugins_lists_it():
    res = run_cli("dcapix", "plugins")
    assert res.returncode == 0, res.stderr
    assert "dc-api-x-ldap 0.2.0" in res.stdout and "registers adapters: ldap" in res.stdout


def test_importing_and_registering_does_not_import_a_client_library():
    code = textwrap.dedent(
        """
        import sys, dc_api_x
        ps = dc_api_x.enable_plugins()
        assert ps.plugins["ldap"].status == "loaded", ps.plugins["ldap"]
        cls = ps.adapters.get("ldap")
        heavy = [m for m in ("ldap3", "ldap", "ldaptor", "twisted") if m in sys.modules]
        print(",".join(heavy) or "none")
        a = cls({"url": "ldap://127.0.0.1:9"})   # creating the adapter imports no client either
        print(",".join(m for m in ("ldap3", "ldap", "ldaptor", "twisted") if m in sys.modules) or "none")
        a.backend   # the backend (and only its library) is loaded on first use
        print(",".join(m for m in ("ldap3", "ldap", "ldaptor", "twisted") if m in sys.modules))
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["none", "none", "ldap3"]


BLOCK = textwrap.dedent(
    """
    import sys
    for name in {names!r}:
        sys.modules[name] = None          # "No module named ..." for any import of it
    from dc_api_x.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _dcapix_without(
    names: list[str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK.format(names=names), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_without_ldap3_the_plugin_is_listed_as_failed_with_the_reason_and_others_work(tmp_path):
    res = _dcapix_without(["ldap3"], "plugins", "--json")
    assert res.returncode == 0, res.stderr
    plugins = {p["name"]: p for p in json.loads(res.stdout)}
    ldap = plugins["ldap"]
    assert ldap["status"] == "failed"
    assert "ldap3" in ldap["reason"] and "pip install" in ldap["reason"]
    assert "dcapix: warning:" in res.stderr and "ldap3" in res.stderr
    loaded = {n for n, p in plugins.items() if p["status"] == "loaded"}
    assert {"dc_api_x.adapters.http", "dc_api_x.adapters.sql", "dc_api_x.adapters.files"} <= loaded
    # and another pipeline still runs in that same environment
    (tmp_path / "in.jsonl").write_text('{"id": 1, "name": "a"}\n{"id": 2, "name": "b"}\n')
    (tmp_path / "src.json").write_text(json.dumps({"adapter": "jsonl", "path": str(tmp_path / "in.jsonl")}))
    (tmp_path / "dst.json").write_text(json.dumps({"adapter": "csv", "path": str(tmp_path / "out")}))
    run = _dcapix_without(
        ["ldap3"],
        "run",
        "--source",
        "src.json",
        "--destination",
        "dst.json",
        "--no-state",
        "--no-progress",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    out = "".join(p.read_text() for p in (tmp_path / "out").rglob("*.csv"))
    assert out.splitlines()[1:] == ['1,"a"', '2,"b"']
    # an ldap pipeline names the missing adapter in one line
    (tmp_path / "ldap.json").write_text(json.dumps({"adapter": "ldap", "url": "ldap://127.0.0.1:9"}))
    bad = _dcapix_without(
        ["ldap3"], "run", "--source", "ldap.json", "--destination", "dst.json", "--no-state", cwd=tmp_path
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "ldap" in bad.stderr


def test_a_backend_whose_library_is_missing_is_a_config_error_naming_the_extra():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["ldap"] = None
        from dc_api_x import create_adapter
        try:
            create_adapter({"adapter": "ldap", "url": "ldap://127.0.0.1:9", "backend": "python-ldap"})
        except Exception as exc:
            print(type(exc).__name__, exc)
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.startswith("ConfigError adapter 'ldap': option 'backend':"), res.stdout + res.stderr
    assert "pip install 'dc-api-x-ldap[python-ldap]'" in res.stdout


def test_options_are_validated_in_one_line():
    from dc_api_x import create_adapter

    with pytest.raises(ConfigError) as err:
        create_adapter({"adapter": "ldap", "url": "http://example.com"})
    assert "ldap://, ldaps:// or ldapi://" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="option 'page_sise': unknown option"):
        create_adapter({"adapter": "ldap", "page_sise": 10})
    with pytest.raises(ConfigError, match="option 'backend'"):
        create_adapter({"adapter": "ldap", "backend": "openldap"})
    with pytest.raises(ConfigError, match="needs bind_dn"):
        create_adapter({"adapter": "ldap", "auth": "simple"})


def test_environment_variables_give_defaults(monkeypatch):
    from dc_api_x import create_adapter

    monkeypatch.setenv("DCAPIX_LDAP_URL", "ldap://127.0.0.1:10389")
    monkeypatch.setenv("DCAPIX_LDAP_BIND_DN", "cn=admin,dc=example,dc=com")
    monkeypatch.setenv("DCAPIX_LDAP_PASSWORD", "from-env")
    monkeypatch.setenv("DCAPIX_LDAP_PAGE_SIZE", "250")
    with create_adapter({"adapter": "ldap"}) as a:
        o = a.options
        assert (o.url, o.bind_dn, o.secret(), o.page_size, o.auth) == (
            "ldap://127.0.0.1:10389",
            "cn=admin,dc=example,dc=com",
            "from-env",
            250,
            "simple",
        )
        assert "from-env" not in repr(o)
    with create_adapter({"adapter": "ldap", "page_size": 7}) as a:
        assert a.options.page_size == 7  # explicit options win


def test_module_docstring_documents_requirements_and_environment():
    doc = dc_api_x_ldap.__doc__ or ""
    assert "Requirements:" in doc and "Environment variables:" in doc
    from dc_api_x_ldap.config import ENV

    for var in ENV.values():
        assert var in doc


@pytest.mark.skipif(os.environ.get("DCAPIX_SKIP_VENV_TESTS") == "1", reason="DCAPIX_SKIP_VENV_TESTS=1")
def test_install_then_uninstall_in_a_fresh_venv_leaves_nothing(tmp_path):
    """``pip install ./plugins/ldap`` (a wheel, not editable) in a new venv that shares this one's
    other packages: listed by ``dcapix plugins``; ``pip uninstall``: gone, no file left, no warning."""
    import site
    import venv

    main_site = next(p for p in site.getsitepackages() if p.endswith("site-packages"))
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    for entry in Path(main_site).iterdir():  # this venv's packages, minus the plugin itself
        if "dc_api_x_ldap" in entry.name:
            continue
        (shadow / entry.name).symlink_to(entry)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    new_site = Path(
        subprocess.check_output(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    (new_site / "zz_shared.pth").write_text(f"import site; site.addsitedir({str(shadow)!r})\n")
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [str(BIN / "python"), "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(PLUGIN_DIR)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = list(wheels.glob("dc_api_x_ldap-*.whl"))
    pip = [str(BIN / "python"), "-m", "pip", "--python", str(py)]
    inst = subprocess.run(
        [*pip, "install", "-q", "--no-deps", str(wheel)], capture_output=True, text=True, timeout=300
    )
    assert inst.returncode == 0, inst.stderr[-2000:]
    listing = subprocess.run(
        [str(py), "-m", "dc_api_x.cli", "plugins", "--json"], capture_output=True, text=True, timeout=120
    )
    assert listing.returncode == 0, listing.stderr
    plugins = {p["name"]: p for p in json.loads(listing.stdout)}
    assert plugins["ldap"]["status"] == "loaded" and plugins["ldap"]["distribution"] == "dc-api-x-ldap"
    assert (new_site / "dc_api_x_ldap" / "adapter.py").exists()
    out = subprocess.run(
        [*pip, "uninstall", "-y", "dc-api-x-ldap"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    left = [p.name for p in new_site.iterdir() if "dc_api_x_ldap" in p.name]
    assert left == []
    listing = subprocess.run(
        [str(py), "-m", "dc_api_x.cli", "plugins", "--json"], capture_output=True, text=True, timeout=120
    )
    assert listing.returncode == 0 and "warning" not in listing.stderr, listing.stderr
    names = {p["name"] for p in json.loads(listing.stdout)}
    assert "ldap" not in names and "dc_api_x.adapters.sql" in names
