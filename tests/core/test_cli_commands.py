"""Sub-commands from other distributions: the ``dc_api_x.commands`` entry-point group of ``dcapix``.

A real distribution (a ``.dist-info`` with ``entry_points.txt`` on ``PYTHONPATH``) is found by
``importlib.metadata`` exactly as an installed one; ``dcapix`` runs as a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dc_api_x.cli import COMMANDS_GROUP

EXTENSION = textwrap.dedent(
    """
    import os, sys

    # a marker of when this module is imported (lazy loading is what the tests check)
    with open(os.environ["DCAPIX_TEST_MARKER"], "a") as fh:
        fh.write(__name__ + "\\n")


    def _hello(args):
        print(f"hello {args.who}")
        return 3


    def add_commands(subparsers):
        p = subparsers.add_parser("hello", help="say hello (a test extension)")
        p.add_argument("who")
        p.set_defaults(func=_hello)


    def add_broken(subparsers):
        raise RuntimeError("this extension is broken")


    def add_run(subparsers):
        subparsers.add_parser("run", help="tries to replace a built-in")
    """
)


@pytest.fixture
def extension(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "dcapix_test_commands.py").write_text(EXTENSION)
    info = site / "dcapix_test_commands-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dcapix-test-commands\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{COMMANDS_GROUP}]\n"
        "hello = dcapix_test_commands:add_commands\n"
        "broken = dcapix_test_commands:add_broken\n"
        "run = dcapix_test_commands:add_run\n"
        "[dc_api_x.plugins]\n"
        "test_commands = dcapix_test_commands\n"
    )
    marker = tmp_path / "imported.txt"
    marker.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DC_API_X_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["DCAPIX_TEST_MARKER"] = str(marker)
    return env


def dcapix(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "dcapix"
    exe = str(script) if script.exists() else shutil.which("dcapix")
    assert exe, "the dcapix console script is not installed (pip install -e .)"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, env=env)


def imported(env: dict[str, str]) -> bool:
    return bool(Path(env["DCAPIX_TEST_MARKER"]).read_text())


def test_an_entry_point_command_runs(extension: dict[str, str]) -> None:
    res = dcapix(extension, "hello", "world")
    assert (res.returncode, res.stdout, res.stderr) == (3, "hello world\n", "")


def test_help_lists_the_entry_point_commands_and_reports_a_broken_one(extension: dict[str, str]) -> None:
    res = dcapix(extension, "--help")
    assert res.returncode == 0
    assert "say hello (a test extension)" in res.stdout
    assert res.stderr.strip() == (
        "dcapix: command 'broken' from dcapix-test-commands unavailable: "
        "RuntimeError: this extension is broken"
    )
    assert "tries to replace a built-in" not in res.stdout  # the built-in 'run' is kept


def test_a_builtin_command_loads_no_extension(extension: dict[str, str]) -> None:
    res = dcapix(extension, "plugins", "--json", "--no-entry-points")
    assert res.returncode == 0, res.stderr
    assert not imported(extension)


def test_an_unknown_command_lists_the_extensions_among_the_choices(extension: dict[str, str]) -> None:
    res = dcapix(extension, "no-such-command")
    assert res.returncode == 2
    assert "invalid choice: 'no-such-command'" in res.stderr and "'hello'" in res.stderr


def test_dcapix_plugins_shows_the_commands_a_distribution_adds(extension: dict[str, str]) -> None:
    res = dcapix(extension, "plugins", "--json")
    assert res.returncode == 0, res.stderr
    row = {r["name"]: r for r in json.loads(res.stdout)}["test_commands"]
    assert row["distribution"] == "dcapix-test-commands"
    assert row["registers"] == {"commands": ["broken", "hello", "run"]}
    text = dcapix(extension, "plugins").stdout
    assert "registers commands: broken, hello, run" in text


def test_the_example_of_writing_plugins_md_adds_a_command() -> None:
    """The ``add_commands`` block of docs/writing_plugins.md, run as written."""
    import argparse
    import re

    doc = (Path(__file__).resolve().parents[2] / "docs" / "writing_plugins.md").read_text()
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", doc, flags=re.S) if "def add_commands(" in b]
    namespace: dict[str, object] = {}
    exec(compile(code, "writing_plugins.md", "exec"), namespace)
    parser = argparse.ArgumentParser(prog="dcapix")
    namespace["add_commands"](parser.add_subparsers(dest="command"))  # type: ignore[operator]
    args = parser.parse_args(["new-plugin", "crm"])
    assert (args.command, args.name, args.func(args)) == ("new-plugin", "crm", 0)
