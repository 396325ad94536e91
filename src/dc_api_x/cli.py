"""The ``dcapix`` command line.

Sub-commands live beside what they drive; each module listed in :data:`COMMAND_MODULES` exposes
``add_commands(subparsers)`` which adds its parsers with ``set_defaults(func=handler)``; a handler
takes the parsed namespace and returns the exit code.

Other distributions add sub-commands through the entry-point group :data:`COMMANDS_GROUP`
(``dc_api_x.commands``): the entry point's name is the sub-command, its value an
``add_commands(subparsers)`` function with the same contract. They are loaded lazily: only when
that sub-command is run, or when the help lists the commands (no command, ``--help``, an unknown
command); a built-in sub-command never scans them. A built-in name cannot be taken over.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from .exceptions import DcApiXError

__all__ = ["console_main", "main"]

#: Modules that contribute sub-commands (imported when the parser is built; they must import lightly).
COMMAND_MODULES: tuple[str, ...] = (
    "dc_api_x.runner.cli",
    "dc_api_x.meltano",
)

#: Entry-point group of sub-commands from other distributions (see the module docstring).
COMMANDS_GROUP = "dc_api_x.commands"


def _command_entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    return list(entry_points(group=COMMANDS_GROUP))


def _add_entry_point_commands(sub: Any, argv: Sequence[str] | None) -> None:
    """Add the ``dc_api_x.commands`` sub-commands the command line ``argv`` may need (all of them
    for the help or an unknown command, none for a built-in one)."""
    args = list(sys.argv[1:] if argv is None else argv)
    wanted = next((a for a in args if not a.startswith("-")), None)
    if wanted is not None and wanted in sub.choices:
        return
    eps = [ep for ep in _command_entry_points() if ep.name not in sub.choices]
    if wanted is not None and any(ep.name == wanted for ep in eps):
        eps = [ep for ep in eps if ep.name == wanted]
    for ep in eps:
        if ep.name in sub.choices:  # two distributions offering one name: the first stays
            continue
        try:
            ep.load()(sub)
        except Exception as exc:  # a broken extension must not take the whole CLI down
            dist = getattr(getattr(ep, "dist", None), "name", None) or ep.value
            print(
                f"dcapix: command {ep.name!r} from {dist} unavailable: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )


def _commands_by_distribution() -> dict[str, list[str]]:
    """``{distribution: [sub-command, ...]}`` of the ``dc_api_x.commands`` entry points."""
    out: dict[str, list[str]] = {}
    for ep in _command_entry_points():
        dist = getattr(getattr(ep, "dist", None), "name", None)
        if dist:
            out.setdefault(dist, []).append(ep.name)
    return {k: sorted(v) for k, v in out.items()}


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
    commands = _commands_by_distribution()
    for info in ps.plugins.values():
        registers = dict(info.registers)
        if not info.builtin and commands.get(info.distribution or ""):
            registers["commands"] = commands[info.distribution or ""]  # dcapix sub-commands it adds
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
                "registers": registers,
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


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``dcapix`` parser for the command line ``argv`` (default ``sys.argv[1:]``: it decides
    which ``dc_api_x.commands`` entry points are loaded).

    When the command line names a built-in command (``dcapix run …``), only that command's parser is
    built: argparse's parsers of the others cost ~30 M instructions, 3 % of a small ``dcapix run``
    (issue 15), and parsing the line needs none of them. The help, an unknown command or no command
    get every parser."""
    args = list(sys.argv[1:] if argv is None else argv)
    wanted = _named_command(args)
    if wanted is not None:
        parser = _build_parser(argv, wanted)
        if parser is not None:
            return parser
    parser = _build_parser(argv, None)
    assert parser is not None
    return parser


def _named_command(args: list[str]) -> str | None:
    """The command of a command line (its first argument that is no option), ``None`` for the
    help, ``--version`` or a line without one."""
    for arg in args:
        if arg in ("-h", "--help", "--version", "--") or arg.startswith("--help"):
            return None
        if not arg.startswith("-"):
            return arg
    return None


class _Absorb:
    """What ``add_parser`` returns for a command the command line does not name: every call made to
    set it up (``add_argument``, ``set_defaults``, ``add_subparsers`` …) is accepted and ignored."""

    def __getattr__(self, name: str) -> Any:
        return self._call

    def _call(self, *args: Any, **kwargs: Any) -> _Absorb:
        return _Absorb()


class _OneCommand:
    """The sub-parsers action as ``add_commands`` sees it when the command line names ``wanted``: its
    parser is built, the others are not (:func:`build_parser`)."""

    def __init__(self, sub: Any, wanted: str) -> None:
        self._sub, self._wanted = sub, wanted
        self.found = False

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if name == self._wanted or self._wanted in kwargs.get("aliases", ()):
            self.found = True
            return self._sub.add_parser(name, **kwargs)
        return _Absorb()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sub, name)


def _build_parser(argv: Sequence[str] | None, wanted: str | None) -> argparse.ArgumentParser | None:
    """The parser with every command (``wanted`` ``None``) or with the built-in command ``wanted``
    only (``None`` when no built-in module adds it: an entry-point command, a misspelling)."""
    from .plugins import core_version

    parser = argparse.ArgumentParser(prog="dcapix", description="dc-api-x: pluggable ETL toolkit")
    parser.add_argument("--version", action="version", version=f"dc-api-x {core_version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    adder: Any = sub if wanted is None else _OneCommand(sub, wanted)
    p = adder.add_parser("plugins", help="list plugins: distribution, version, status, what each registers")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-entry-points", action="store_true", help="built-ins only")
    p.add_argument(
        "--group",
        action="append",
        metavar="GROUP",
        help="also scan this entry-point group (repeatable; env DC_API_X_ENTRY_POINT_GROUPS)",
    )
    p.set_defaults(func=_cmd_plugins)
    errors = []
    for modname in COMMAND_MODULES:
        try:
            mod = importlib.import_module(modname)
            add = getattr(mod, "add_commands", None)
            if add is not None:
                add(adder)
        except Exception as exc:  # one broken command module must not take the whole CLI down
            errors.append(f"dcapix: commands from {modname} unavailable: {type(exc).__name__}: {exc}")
    if wanted is not None and not adder.found:
        return None  # (built again with every command: the messages are printed then)
    for message in errors:
        print(message, file=sys.stderr)
    _add_entry_point_commands(sub, argv)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list == ["--version"]:  # answered before the sub-command modules are imported
        from .plugins import core_version

        print(f"dc-api-x {core_version()}")
        return 0
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    from .logs import setup_logging

    setup_logging(args.verbose)
    func = getattr(args, "func", None)
    if not getattr(func, "resumes_gc", False):
        resume_gc()
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


#: whether :func:`console_main` turned the cyclic garbage collector off for the start-up
_gc_paused = False


def resume_gc() -> None:
    """Turn the cyclic garbage collector back on if :func:`console_main` turned it off (idempotent).

    The console script starts with the collector off: loading a command's modules (pydantic, pyarrow,
    the adapters) allocates hundreds of thousands of objects that live until exit, and the collections
    they trigger cost a small ``dcapix run`` ~26 M instructions, 2.5 % of it (callgrind, the demo
    pipeline, issue 15). :func:`main` turns it back on before any command but ``dcapix run``, which does
    so once its modules are loaded (``runner/startup.py``, ``tune_gc``)."""
    global _gc_paused
    if _gc_paused:
        _gc_paused = False
        gc.enable()


def console_main() -> None:
    """The ``dcapix`` console script: :func:`main` with the collector off while the command's modules
    load (:func:`resume_gc`), ending the process without the interpreter's last garbage-collection pass
    (:mod:`dc_api_x.process_exit`)."""
    from .process_exit import freeze_at_exit

    global _gc_paused
    if gc.isenabled():
        gc.disable()
        _gc_paused = True
    freeze_at_exit()
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    console_main()
