"""The ``dcapix`` command line.

Sub-commands live beside what they drive; each module listed in :data:`COMMAND_MODULES` exposes
``add_commands(subparsers)`` which adds its parsers with ``set_defaults(func=handler)``; a handler
takes the parsed namespace and returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from .exceptions import DcApiXError

__all__ = ["main"]

#: Modules that contribute sub-commands (imported when the parser is built; they must import lightly).
COMMAND_MODULES: tuple[str, ...] = (
    "dc_api_x.runner.cli",
    "dc_api_x.meltano",
)


def _cmd_plugins(args: argparse.Namespace) -> int:
    """``dcapix plugins``: every plugin with its distribution, version, status and registrations."""
    import warnings

    from .plugins import enable_plugins

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ps = enable_plugins(
            entry_points=not args.no_entry_points, entry_point_groups=args.group or (), lazy=False
        )
    for w in caught:  # the table shows each problem too; keep stderr to one line per warning
        print(f"dcapix: warning: {w.message}", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    for info in ps.plugins.values():
        rows.append(
            {
                "name": info.name,
                "module": info.module,
                "distribution": info.distribution,
                "version": info.version,
                "status": info.status,
                "reason": info.reason,
                "builtin": info.builtin,
                "group": info.group,
                "registers": info.registers,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max((len(r["name"]) for r in rows), default=0)
    for row in rows:
        regs = "; ".join(f"{k}: {', '.join(v)}" for k, v in row["registers"].items()) or "-"
        status = row["status"] + (f" ({row['reason']})" if row["reason"] else "")
        dist = f"{row['distribution'] or '-'} {row['version'] or ''}".strip()
        print(f"{row['name']:<{width}}  [{dist}]  {status}")
        print(f"{'':<{width}}    registers {regs}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .plugins import core_version

    parser = argparse.ArgumentParser(prog="dcapix", description="dc-api-x: pluggable ETL toolkit")
    parser.add_argument("--version", action="version", version=f"dc-api-x {core_version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("plugins", help="list plugins: distribution, version, status, what each registers")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-entry-points", action="store_true", help="built-ins only")
    p.add_argument(
        "--group",
        action="append",
        metavar="GROUP",
        help="also scan this entry-point group (repeatable; env DC_API_X_ENTRY_POINT_GROUPS)",
    )
    p.set_defaults(func=_cmd_plugins)
    for modname in COMMAND_MODULES:
        try:
            mod = importlib.import_module(modname)
            add = getattr(mod, "add_commands", None)
            if add is not None:
                add(sub)
        except Exception as exc:  # one broken command module must not take the whole CLI down
            print(
                f"dcapix: commands from {modname} unavailable: {type(exc).__name__}: {exc}", file=sys.stderr
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list == ["--version"]:  # answered before the sub-command modules are imported
        from .plugins import core_version

        print(f"dc-api-x {core_version()}")
        return 0
    parser = build_parser()
    args = parser.parse_args(args_list)
    from .logs import setup_logging

    setup_logging(args.verbose)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except DcApiXError as exc:
        print(f"dcapix: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dcapix: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
