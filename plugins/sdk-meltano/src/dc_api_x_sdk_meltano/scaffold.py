"""Render a new plugin distribution from the copier template shipped in this package.

:func:`new_plugin` is what ``dcapix new-plugin NAME`` runs: it checks the name and the destination,
then hands the answers to :func:`copier.run_copy` with the template in ``template/`` (``copier.yml``
holds the questions; ``template/project`` the files, ``*.jinja`` rendered). The template runs no
tasks, so nothing executes at copy time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from dc_api_x.exceptions import ConfigError

__all__ = ["NAME_PATTERN", "TEMPLATE", "new_plugin", "plugin_names"]

#: The template directory (``copier.yml`` + ``project/``).
TEMPLATE = Path(__file__).resolve().parent / "template"

#: What a plugin name looks like: lowercase words of letters and digits, joined by ``-`` or ``_``.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")

_WHO = "new-plugin"


def plugin_names(name: str) -> dict[str, str]:
    """The names derived from a plugin name (as the template computes them)::

    >>> plugin_names("my-api")["package_name"], plugin_names("my-api")["tap"]
    ('dc_api_x_my_api', 'tap-my-api')
    """
    check_name(name)
    adapter = name.replace("-", "_")
    slug = name.replace("_", "-")
    return {
        "adapter_name": adapter,
        "package_name": f"dc_api_x_{adapter}",
        "distribution": f"dc-api-x-{slug}",
        "tap": f"tap-{slug}",
        "target": f"target-{slug}",
        "class_prefix": "".join(part.capitalize() for part in adapter.split("_")),
    }


def check_name(name: str) -> None:
    if not NAME_PATTERN.match(name or ""):
        raise ConfigError(
            f"{_WHO}: {name!r} is not a plugin name (lowercase letters and digits, words joined by "
            "single '-' or '_', starting with a letter: e.g. 'crm' or 'my-api')",
            plugin=_WHO,
            field="name",
        )


def _floor(distribution: str, fallback: str) -> str:
    """The release part of an installed distribution's version (``0.2.0`` of ``0.2.0.dev3``)."""
    from packaging.version import Version

    try:
        return Version(version(distribution)).base_version
    except PackageNotFoundError:
        return fallback


def new_plugin(
    name: str,
    dest: str | Path | None = None,
    *,
    singer: bool | None = None,
    data: Mapping[str, Any] | None = None,
    defaults: bool = True,
    overwrite: bool = False,
    template: str | Path | None = None,
    quiet: bool = True,
) -> Path:
    """Render the plugin distribution ``dc-api-x-NAME`` into ``dest`` (default ``./dc-api-x-NAME``)
    and return its path.

    :param singer: add ``tap-NAME`` / ``target-NAME`` and a Meltano project (``None``: the
        template's default, yes).
    :param data: more answers to the template's questions (``description``, ``author_name``, …).
    :param defaults: take the default of every question not answered (``False``: copier asks).
    :param overwrite: render into a directory that is not empty.
    :param template: another copier template (a fork of this one) to render.
    :raises ConfigError: a bad name, a destination in the way, or a template error — one line.
    """
    names = plugin_names(name)
    target = Path(dest) if dest is not None else Path(names["distribution"])
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{_WHO}: {target} exists and is not a directory", plugin=_WHO, field="dest")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise ConfigError(
            f"{_WHO}: {target} is not empty (choose another directory, or --force to render into it)",
            plugin=_WHO,
            field="dest",
        )
    answers: dict[str, Any] = {
        "plugin_name": name,
        "dc_api_x_version": _floor("dc-api-x", "0.2.0"),
        "sdk_meltano_version": _floor("dc-api-x-sdk-meltano", "0.1.0"),
    }
    if singer is not None:
        answers["singer"] = singer
    answers.update(data or {})
    if answers["plugin_name"] != name:
        raise ConfigError(f"{_WHO}: give the name as NAME, not as data", plugin=_WHO, field="data")

    import copier
    from copier.errors import CopierError

    try:
        copier.run_copy(
            str(template or TEMPLATE),
            target,
            data=answers,
            defaults=defaults,
            overwrite=overwrite,
            quiet=quiet,
            unsafe=False,
        )
    except (CopierError, ValueError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(f"{_WHO}: the template failed: {text}", plugin=_WHO, field="template") from None
    return target
