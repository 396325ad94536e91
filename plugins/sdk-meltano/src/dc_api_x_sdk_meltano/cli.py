"""``dcapix new-plugin NAME``: a new plugin distribution from the copier template.

Reached through the entry point ``dc_api_x.commands: new-plugin`` (the ``dcapix`` command line loads
it only when ``new-plugin`` is run or the help lists the commands): this module imports nothing
heavy; copier is imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_commands"]


def _data(items: list[str] | None) -> dict[str, Any]:
    from dc_api_x.exceptions import ConfigError

    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"new-plugin: --data expects KEY=VALUE, got {item!r}", plugin="new-plugin", field="data"
            )
        out[key.strip()] = value
    return out


def _cmd_new_plugin(args: argparse.Namespace) -> int:
    from .scaffold import new_plugin, plugin_names

    interactive = not args.defaults and sys.stdin.isatty() and sys.stdout.isatty()
    path = new_plugin(
        args.name,
        args.dest,
        singer=args.singer,
        data=_data(args.data),
        defaults=not interactive,
        overwrite=args.force,
        template=args.template,
        quiet=not interactive,
    )
    names = plugin_names(args.name)
    singer = (path / "src" / names["package_name"] / "tap.py").exists()
    print(f"created {names['distribution']} in {path}")
    print(f"  adapter {names['adapter_name']!r}: {path / 'src' / names['package_name'] / 'adapter.py'}")
    if singer:
        print(f"  executables {names['tap']}, {names['target']}; Meltano project: {path / 'meltano.yml'}")
    print("next:")
    print(f"  cd {path} && python -m venv .venv && .venv/bin/pip install -e '.[test]'")
    print("  .venv/bin/python -m pytest")
    return 0


def add_commands(subparsers: Any) -> None:
    """Add ``new-plugin`` to the ``dcapix`` command line."""
    p = subparsers.add_parser(
        "new-plugin",
        help="create a plugin distribution (adapter, tests, optional Singer tap/target) from a template",
        description="Render a new dc-api-x plugin distribution dc-api-x-NAME with copier: an adapter "
        "registered through the dc_api_x.plugins entry point (a working JSON-lines implementation to "
        "replace), tests on dc_api_x.testing, and (--singer, the default) tap-NAME / target-NAME on "
        "singer-sdk with a Meltano project declaring them as custom plugins.",
    )
    p.add_argument(
        "name", metavar="NAME", help="plugin name, e.g. crm or my-api (the adapter's registry name)"
    )
    p.add_argument(
        "dest", metavar="DIR", nargs="?", help="where to create it (default: ./dc-api-x-NAME; must be empty)"
    )
    p.add_argument(
        "--singer",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add tap-NAME / target-NAME and meltano.yml (default: yes)",
    )
    p.add_argument(
        "-d",
        "--data",
        action="append",
        metavar="KEY=VALUE",
        help="answer a template question: description, author_name, author_email (repeatable)",
    )
    p.add_argument(
        "--defaults",
        action="store_true",
        help="do not ask: take the default of every question not answered (always so without a terminal)",
    )
    p.add_argument("--force", action="store_true", help="render into a directory that is not empty")
    p.add_argument("--template", metavar="PATH", help="another copier template (e.g. your fork of this one)")
    p.set_defaults(func=_cmd_new_plugin)
