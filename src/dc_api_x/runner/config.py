"""Pipeline configuration of ``dcapix run`` (YAML, TOML or JSON), validated by pydantic.

A pipeline file (default ``dcapix.yml`` in the working directory)::

    state_backend: sqlite                 # or a path to a .db file, or postgresql://…
    pipelines:
      orders:
        source:
          adapter: sql
          url: sqlite:///shop.db
          streams: [orders, customers]
          transforms: [{type: rename, …}]  # runner-level: applied to batches between read and write
          stream_maps: {orders: {secret: null}}  # runner-level: Meltano-style stream maps
        destination:
          adapter: parquet
          path: out/
          load_method: append             # runner-level: passed to start_write()
        select: [orders]                  # optional: a subset of the discovered streams
        checkpoint_rows: 200000           # flush + save state at least this often (incremental streams)
        schedule: "0 3 * * *"             # for `dcapix schedule run`: cron, @daily, "every 30s", or a
                                          # mapping {cron|every, timezone, missed, retries, …}

Everything in an endpoint other than the runner-level keys is handed to the adapter (its pydantic
``Options`` validates it and names the wrong field). Errors are one line naming the pipeline, the
endpoint and the valid choices.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..config import describe_validation_error, new_dict, new_list
from ..exceptions import ConfigError

__all__ = [
    "CONFIG_CACHE_ENV",
    "DEFAULT_CONFIG_FILES",
    "Endpoint",
    "PipelineConfig",
    "ProjectConfig",
    "ScheduleConfig",
    "SchedulerConfig",
    "SingerConfig",
    "load_config",
    "adhoc_pipeline",
    "empty_project",
    "endpoint_dump",
    "expand_env",
    "load_endpoint_file",
    "read_config_file",
    "parse_duration",
]

#: Files looked up in the working directory when ``-c`` is not given (first found wins).
DEFAULT_CONFIG_FILES = ("dcapix.yml", "dcapix.yaml", "dcapix.toml", "dcapix.json")


class Endpoint(BaseModel):
    """One source or destination: ``{adapter: NAME, …adapter options}`` plus runner-level keys."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    adapter: str
    transforms: list[Any] | dict[str, list[Any]] = Field(default_factory=new_list)
    #: source: Meltano / singer-sdk stream maps ``{stream: {property: expression | null, "__filter__": …}}``,
    #: applied after ``transforms`` (in process as transforms, via ``--via-singer`` by the tap's SDK).
    stream_maps: dict[str, Any] = Field(default_factory=new_dict)
    select: list[str] | None = None
    load_method: str | None = None
    stream_map: dict[str, str] = Field(default_factory=new_dict)
    #: source: partitions read at the same time per stream (``dcapix run --workers`` overrides it)
    #: and at most how many partitions a stream is split into (default: ``concurrency``); see
    #: docs/scale.md.
    concurrency: int | None = Field(default=None, ge=1)
    partitions: int | None = Field(default=None, ge=1)
    #: source: the local executor's workers are ``threads`` (default) or ``processes``
    #: (``dcapix run --worker-pool`` overrides it); see docs/scale.md.
    worker_pool: Literal["threads", "processes"] | None = None

    @property
    def options(self) -> dict[str, Any]:
        """The adapter's own options (everything but the runner-level keys)."""
        return dict(self.model_extra or {})

    def adapter_config(self) -> dict[str, Any]:
        """``{"adapter": NAME, …options}`` for :func:`dc_api_x.plugins.create_adapter`."""
        return {"adapter": self.adapter, **self.options}


class SingerConfig(BaseModel):
    """Process mode (``--via-singer``): the tap and target executables and their configs.

    By default ``tap-dcapix`` gets the source endpoint as its config and ``target-dcapix`` the
    destination endpoint. Any other Singer tap/target works by naming it and giving its config.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    #: the tap command (split like a shell would; the executable is looked up next to the running
    #: Python first, then on PATH).
    tap: str = "tap-dcapix"
    target: str = "target-dcapix"
    tap_config: dict[str, Any] | None = None
    target_config: dict[str, Any] | None = None
    tap_args: list[str] = Field(default_factory=new_list)
    target_args: list[str] = Field(default_factory=new_list)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.I)
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> Any:
    """Seconds from ``30``, ``"30s"``, ``"5m"``, ``"1h30m"``, ``"2d"`` (ms, s, m, h, d, w)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        try:
            return float(text)
        except ValueError:
            pass
        parts = _DURATION.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            return sum(float(n) * _UNIT[u.lower()] for n, u in parts)
        raise ValueError(f"not a duration: {value!r} (e.g. 30, '30s', '5m', '1h30m', '2d')")
    return value


#: seconds, written as a number or ``"30s"`` / ``"5m"`` / ``"1h30m"`` / ``"2d"``.
Duration = Annotated[float, BeforeValidator(parse_duration)]
MissedPolicy = Literal["catch-up", "skip"]
#: Meltano's (Airflow's) schedule presets that mean "never by itself" or "once".
MANUAL_PRESETS = ("@manual", "@none")
ONCE_PRESET = "@once"


def check_timezone(name: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (an IANA name such as 'Europe/Paris' or 'UTC')"
        ) from None
    return name


def check_cron(expr: str) -> str:
    """A cron expression croniter accepts (5 fields, a 6th for seconds, or a preset)."""
    text = " ".join(expr.split())
    if text.lower() in (*MANUAL_PRESETS, ONCE_PRESET):
        return text.lower()
    try:
        from croniter import croniter
    except ImportError:  # pragma: no cover - the runner extra has it
        raise ValueError("schedules need croniter: pip install 'dc-api-x[runner]'") from None
    if not croniter.is_valid(text):
        raise ValueError(
            f"invalid cron expression {expr!r} (5 fields 'min hour day month weekday', an optional 6th "
            "for seconds, or @hourly/@daily/@weekly/@monthly/@yearly)"
        )
    return text


class ScheduleConfig(BaseModel):
    """When ``dcapix schedule run`` starts a pipeline (``schedule:`` of a pipeline).

    Written as a string — a cron expression (``"*/15 * * * *"``; a 6th field is seconds, as croniter
    reads it), a preset (``@hourly``, ``@daily``, …, ``@once``, ``@manual``) or an interval
    (``"every 30s"``) — or as a mapping with the options below. Unset options come from the file's
    ``scheduler:`` section.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    #: a cron expression or preset (croniter).
    cron: str | None = None
    #: a fixed interval instead (aligned to the Unix epoch: ``every: 15m`` runs at :00, :15, …).
    every: Duration | None = Field(default=None, gt=0)
    #: IANA time zone the cron expression is read in (default: ``scheduler.timezone``, UTC).
    timezone: str | None = None
    #: ``catch-up``: slots missed while the scheduler was down (or the pipeline busy) lead to one run;
    #: ``skip``: a slot more than ``grace`` late is skipped (recorded as ``skipped``).
    missed: MissedPolicy | None = None
    grace: Duration | None = Field(default=None, ge=0)
    #: a failed run is retried this many times, ``retry_delay`` after the failure, doubling each time
    #: up to ``retry_max_delay``.
    retries: int | None = Field(default=None, ge=0)
    retry_delay: Duration | None = Field(default=None, ge=0)
    retry_max_delay: Duration | None = Field(default=None, ge=0)
    #: run in process mode (``dcapix run --via-singer``).
    via_singer: bool = False
    enabled: bool = True

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            text = data.strip()
            low = text.lower()
            for prefix in ("@every ", "every "):
                if low.startswith(prefix):
                    return {"every": text[len(prefix) :].strip()}
            return {"cron": text}
        return data

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        return None if v is None else check_cron(v)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        return None if v is None else check_timezone(v)

    @model_validator(mode="after")
    def _one_of(self) -> ScheduleConfig:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give either cron or every")
        return self


class SchedulerConfig(BaseModel):
    """``scheduler:`` of the pipeline file: defaults of every schedule and limits of the scheduler."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    #: pipelines running at the same time; due runs beyond it wait for a free place.
    max_concurrent: int = Field(default=4, ge=1)
    timezone: str = "UTC"
    missed: MissedPolicy = "catch-up"
    #: how late a slot may start under the ``skip`` policy.
    grace: Duration = Field(default=300.0, ge=0)
    retries: int = Field(default=2, ge=0)
    retry_delay: Duration = Field(default=30.0, ge=0)
    retry_max_delay: Duration = Field(default=600.0, ge=0)
    #: on SIGTERM, running pipelines get this long to stop (roll back, record) before SIGKILL.
    stop_timeout: Duration = Field(default=120.0, gt=0)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return check_timezone(v)


class PipelineConfig(BaseModel):
    """One named pipeline: a source, a destination and how to run them."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    source: Endpoint
    destination: Endpoint
    select: list[str] | None = None
    #: flush the destination and save state after at least this many rows (incremental streams).
    checkpoint_rows: int = Field(default=200_000, gt=0)
    #: … or after this many seconds, whichever comes first.
    checkpoint_seconds: float = Field(default=60.0, gt=0)
    #: batches a reader thread may produce ahead of the writer (0: read and write in one thread;
    #: 1: the next batch is read while the current one is written, two batches alive at most).
    #: On by default: on the 2-core benchmark machine it saves ~10 % of wall time; ``dcapix run``
    #: uses Arrow's system allocator, which keeps the second thread's extra memory small (see
    #: docs/runner.md).
    prefetch: int = Field(default=1, ge=0)
    #: streams run at the same time (each with its own pair of adapters).
    parallel: int = Field(default=1, ge=1)
    singer: SingerConfig = Field(default_factory=SingerConfig)
    #: when ``dcapix schedule run`` starts this pipeline (none: never by itself).
    schedule: ScheduleConfig | None = None


class ProjectConfig(BaseModel):
    """The whole file: named pipelines and where state lives."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    #: ``sqlite`` (``.dcapix/state.db`` next to the config file), a path to an SQLite file, or a
    #: ``postgresql://`` URL.
    state_backend: str = "sqlite"
    pipelines: dict[str, PipelineConfig] = Field(default_factory=new_dict)
    #: defaults and limits of ``dcapix schedule run``.
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    #: a run lock whose holder sent no heartbeat for this long is taken over (any run, manual too).
    lock_timeout: Duration = Field(default=60.0, gt=0)
    #: days of run history kept (``dcapix runs``; 0: forever).
    history_days: Duration = Field(default=90.0, ge=0)
    #: where the config was read from (set by :func:`load_config`).
    path: str | None = None

    def pipeline(self, name: str | None) -> tuple[str, PipelineConfig]:
        """The pipeline called ``name`` (the only one when ``name`` is ``None``)."""
        where = f" in {self.path}" if self.path else ""
        valid = ", ".join(sorted(self.pipelines)) or "(none)"
        if name is None:
            if len(self.pipelines) == 1:
                return next(iter(self.pipelines.items()))
            raise ConfigError(
                f"name a pipeline to run{where}; valid: {valid}", plugin="runner", field="pipeline"
            )
        if name not in self.pipelines:
            raise ConfigError(
                f"unknown pipeline {name!r}{where}; valid: {valid}", plugin="runner", field="pipeline"
            )
        return name, self.pipelines[name]

    @property
    def project_dir(self) -> Path:
        """The directory holding the config file (the working directory without one)."""
        return Path(self.path).resolve().parent if self.path else Path.cwd()


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a YAML, TOML or JSON file into a dict (by extension; YAML otherwise)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {str(p)!r}: {exc.strerror or exc}", plugin="runner"
        ) from None
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            import tomllib

            data: Any = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            data = _load_yaml(p, text)
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"config file {str(p)!r} is not valid {suffix.lstrip('.') or 'yaml'}: {msg}", plugin="runner"
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"config file {str(p)!r}: expected a mapping at the top level", plugin="runner")
    return dict(data)


#: Set to ``0`` to parse YAML pipeline files with PyYAML every time (no parse cache).
CONFIG_CACHE_ENV = "DC_API_X_CONFIG_CACHE"
_CACHE_FORMAT = 1


def _yaml_cache_path(path: Path) -> Path | None:
    """Where the parse of the YAML file ``path`` is cached: one file per pipeline file (named by a
    checksum of its absolute path) in ``$XDG_CACHE_HOME/dc-api-x/config`` (default
    ``~/.cache/dc-api-x/config``, the directory of the ``--about`` cache); ``None`` when the cache is
    switched off."""
    if os.environ.get(CONFIG_CACHE_ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return None
    import zlib

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    where = str(path.absolute())
    name = f"{path.name[:40]}-{zlib.crc32(where.encode('utf-8', 'surrogatepass')):08x}.json"
    return Path(base) / "dc-api-x" / "config" / name


def _exact_in_json(data: Any) -> bool:
    """Whether ``json.loads(json.dumps(data))`` gives back ``data`` exactly: str keys, str, int, finite
    float, bool, None, lists and dicts only (no dates, sets, bytes or other keys PyYAML can make)."""
    if data is None or isinstance(data, (str, bool, int)):
        return True
    if isinstance(data, float):
        return data == data and data not in (float("inf"), float("-inf"))
    if isinstance(data, list):
        return all(_exact_in_json(v) for v in data)
    if isinstance(data, dict):
        return all(isinstance(k, str) and _exact_in_json(v) for k, v in data.items())
    return False


def _load_yaml(path: Path, text: str) -> Any:
    """``yaml.safe_load(text)``, through a cache of the file's last parse.

    Importing PyYAML and parsing costs ~25-30 ms of CPU, a tenth of a small scheduled sync (issue
    15); a pipeline file changes rarely. The cache holds the file's path, the text it was parsed
    from and the result, and is used only when the text is identical, so a hit returns exactly what
    PyYAML would (values JSON cannot carry exactly are not cached). Written ``0600`` without fsync:
    a torn file is not valid JSON and is ignored; a cache that cannot be written is skipped."""
    cache = _yaml_cache_path(path)
    where = str(path.absolute())
    if cache is not None:
        try:
            cached = json.loads(cache.read_text(encoding="utf-8"))
            if (
                isinstance(cached, dict)
                and cached.get("format") == _CACHE_FORMAT
                and cached.get("path") == where
                and cached.get("text") == text
            ):
                return cached["data"]
        except (OSError, ValueError, KeyError):
            pass
    import yaml

    data = yaml.safe_load(text)
    if cache is not None and _exact_in_json(data):
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"format": _CACHE_FORMAT, "path": where, "text": text, "data": data}, f)
            os.replace(tmp, cache)
        except OSError:
            try:
                tmp.unlink()
            except OSError:
                pass
    return data


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(data: Any, *, where: str = "config") -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string of ``data`` from the environment
    (so secrets stay out of pipeline files). An unset variable without default is an error."""
    if isinstance(data, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(
                f"{where}: environment variable {name!r} is not set (referenced as ${{{name}}})",
                plugin="runner",
                field=name,
            )

        return _ENV_REF.sub(repl, data)
    if isinstance(data, Mapping):
        return {k: expand_env(v, where=where) for k, v in data.items()}
    if isinstance(data, list):
        return [expand_env(v, where=where) for v in data]
    return data


# ------------------------------------------------------------------ the plain pipeline file's fast path
# Building the pydantic validators of the six models above costs ~40 M instructions, ~4 % of a small
# ``dcapix run`` (issue 15). They are built on first use (``defer_build``), and a pipeline file whose
# values are all of the exact types the fields declare (a str for a str, an int for an int, a list of
# str for a list[str], within the constraints) is turned into the same models with
# ``model_construct``, holding exactly what ``model_validate`` would give (ints of float fields as
# floats, lists and dicts copied, the keys given as ``model_fields_set``). Anything else — an unknown
# key, a wrong type, a string duration, a ``schedule``, ``scheduler`` or ``singer`` section, a value out
# of range — goes through ``model_validate``: its coercions and its error messages are pydantic's.


class _Slow(Exception):
    """The data needs pydantic (a coercion, an error, or a section the fast path does not cover)."""


def _str(v: Any) -> str:
    if type(v) is not str:
        raise _Slow
    return v


def _opt_str(v: Any) -> str | None:
    return None if v is None else _str(v)


def _str_list(v: Any) -> list[str]:
    if type(v) is not list or any(type(x) is not str for x in v):
        raise _Slow
    return list(v)


def _opt_str_list(v: Any) -> list[str] | None:
    return None if v is None else _str_list(v)


def _int(v: Any, low: int) -> int:
    if type(v) is not int or v < low:
        raise _Slow
    return v


def _opt_int(v: Any, low: int) -> int | None:
    return None if v is None else _int(v, low)


def _float(v: Any, *, gt: float | None = None, ge: float | None = None) -> float:
    if type(v) not in (int, float):
        raise _Slow
    f = float(v)
    if not (f == f and f not in (float("inf"), float("-inf"))):
        raise _Slow
    if (gt is not None and not f > gt) or (ge is not None and not f >= ge):
        raise _Slow
    return f


def _str_dict(v: Any) -> dict[str, Any]:
    if type(v) is not dict or any(type(k) is not str for k in v):
        raise _Slow
    return dict(v)


_ENDPOINT_FIELDS: dict[str, Any] = {
    "adapter": _str,
    "transforms": lambda v: list(v) if type(v) is list else _raise_slow(),
    "stream_maps": _str_dict,
    "select": _opt_str_list,
    "load_method": _opt_str,
    "stream_map": lambda v: {k: _str(x) for k, x in _str_dict(v).items()},
    "concurrency": lambda v: _opt_int(v, 1),
    "partitions": lambda v: _opt_int(v, 1),
    "worker_pool": lambda v: (
        v if v is None or (type(v) is str and v in ("threads", "processes")) else _raise_slow()
    ),
}
_PIPELINE_FIELDS: dict[str, Any] = {
    "source": lambda v: _fast_endpoint(v),
    "destination": lambda v: _fast_endpoint(v),
    "select": _opt_str_list,
    "checkpoint_rows": lambda v: _int(v, 1),
    "checkpoint_seconds": lambda v: _float(v, gt=0),
    "prefetch": lambda v: _int(v, 0),
    "parallel": lambda v: _int(v, 1),
}
_PROJECT_FIELDS: dict[str, Any] = {
    "state_backend": _str,
    "pipelines": lambda v: {k: _fast_pipeline(p) for k, p in _str_dict(v).items()},
    "lock_timeout": lambda v: _float(v, gt=0),
    "history_days": lambda v: _float(v, ge=0),
    "path": _opt_str,
}


def _raise_slow() -> Any:
    raise _Slow


def _fields(data: Any, fields: dict[str, Any], *, extra: bool = False) -> tuple[dict[str, Any], set[str]]:
    if type(data) is not dict:
        raise _Slow
    values: dict[str, Any] = {}
    given: set[str] = set()
    for key, value in data.items():
        check = fields.get(key)
        if check is not None:
            values[key] = check(value)
            given.add(key)
        elif extra and type(key) is str:
            values[key] = value  # an adapter option: kept as given, as extra="allow" does
            given.add(key)  # (pydantic counts extras as set fields too)
        else:
            raise _Slow
    return values, given


def _fast_endpoint(data: Any) -> Endpoint:
    values, given = _fields(data, _ENDPOINT_FIELDS, extra=True)
    if "adapter" not in given:
        raise _Slow
    return Endpoint.model_construct(given, **values)


def _fast_pipeline(data: Any) -> PipelineConfig:
    values, given = _fields(data, _PIPELINE_FIELDS)
    if "source" not in given or "destination" not in given:
        raise _Slow
    values["singer"] = SingerConfig.model_construct(set())  # the default_factory's SingerConfig()
    return PipelineConfig.model_construct(given, **values)


def _fast_project(data: Any) -> ProjectConfig:
    values, given = _fields(data, _PROJECT_FIELDS)
    values["scheduler"] = SchedulerConfig.model_construct(set())  # the default SchedulerConfig()
    return ProjectConfig.model_construct(given, **values)


def adhoc_pipeline(source: Endpoint, destination: Endpoint) -> PipelineConfig:
    """``PipelineConfig(source=source, destination=destination)`` (an ad-hoc run's) without building
    pydantic's validator: the two endpoints kept as they are (pydantic does not revalidate model
    instances), every other field its default, ``model_fields_set`` as validation sets it."""
    return PipelineConfig.model_construct(
        {"source", "destination"},
        source=source,
        destination=destination,
        singer=SingerConfig.model_construct(set()),  # the default_factory's SingerConfig()
    )


def empty_project() -> ProjectConfig:
    """``ProjectConfig()`` (an ad-hoc run's) without building pydantic's validator."""
    return _fast_project({})


def endpoint_dump(endpoint: Endpoint) -> dict[str, Any]:
    """``endpoint.model_dump()`` — its fields, then its adapter options — without building pydantic's
    serializer when every value is plain JSON (str, int, float, bool, None, lists, str-keyed dicts),
    whose dump is the value itself; through ``model_dump`` otherwise."""
    out = {name: getattr(endpoint, name) for name in type(endpoint).model_fields}
    out.update(endpoint.model_extra or {})
    if not _exact_in_json(out):
        return endpoint.model_dump()
    return json.loads(json.dumps(out))  # (a copy, as model_dump's is)


_FAST: dict[type[BaseModel], Any] = {}


def _validate(model: type[BaseModel], data: Any, where: str) -> Any:
    fast = _FAST.get(model)
    if fast is not None:
        try:
            return fast(data)
        except _Slow:
            pass
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        field, msg = describe_validation_error(exc)
        raise ConfigError(f"{where}: {field!r}: {msg}", plugin="runner", field=field) from None


_FAST.update({ProjectConfig: _fast_project, Endpoint: _fast_endpoint, PipelineConfig: _fast_pipeline})


def load_config(path: str | os.PathLike[str] | None = None, *, required: bool = True) -> ProjectConfig:
    """Load a project config (``path`` or the first of :data:`DEFAULT_CONFIG_FILES` in the cwd).

    :param required: raise when no file is found (otherwise return an empty config).
    """
    if path is None:
        for name in DEFAULT_CONFIG_FILES:
            if Path(name).is_file():
                path = name
                break
        else:
            if required:
                raise ConfigError(
                    f"no pipeline file: none of {', '.join(DEFAULT_CONFIG_FILES)} in {os.getcwd()}; "
                    "pass -c FILE or --source/--destination",
                    plugin="runner",
                )
            return ProjectConfig()
    data = expand_env(read_config_file(path), where=f"config file {str(path)!r}")
    cfg: ProjectConfig = _validate(ProjectConfig, data, f"config file {str(path)!r}")
    cfg.path = str(path)
    return cfg


def load_endpoint_file(path: str | os.PathLike[str], role: str) -> Endpoint:
    """Read one endpoint (``--source FILE`` / ``--destination FILE``): ``{"adapter": …, …}``."""
    data = expand_env(read_config_file(path), where=f"{role} {str(path)!r}")
    return _validate(Endpoint, data, f"{role} {str(path)!r}")  # type: ignore[no-any-return]
