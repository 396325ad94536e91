"""The protocol-adapter contract every adapter implements (HTTP, SQL, files, LDAP, …).

An adapter has two sides:

* the **request side** (:meth:`ProtocolAdapter.request`), used by :class:`~dc_api_x.client.ApiClient`;
* the **ETL side** used by the Singer tap/target and the runner:

  - :meth:`~ProtocolAdapter.discover` → the streams it can read, with JSON Schema and keys;
  - :meth:`~ProtocolAdapter.read` → an iterator of :class:`~dc_api_x.types.Batch` for one stream;
  - :meth:`~ProtocolAdapter.start_write` / :meth:`~ProtocolAdapter.write` /
    :meth:`~ProtocolAdapter.flush` / :meth:`~ProtocolAdapter.finish_write` → load batches.

The write protocol, per stream::

    adapter.start_write(stream, load_method="upsert")  # create/alter the table, open a file, …
    for batch in batches:
        adapter.write(stream, batch)                     # may buffer
        ...
        adapter.flush(stream)                            # everything written so far is now durable
        # <- only now may a caller store the state that follows these batches
    adapter.finish_write(stream)                         # flush + finalize (swap tables, close files)

An adapter configures itself from its pydantic :attr:`~ProtocolAdapter.Options` model; a bad option
raises :class:`~dc_api_x.exceptions.ConfigError` naming the adapter and the field. Adapters are
context managers; :meth:`close` releases connections and is safe to call twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from ..config import OptionsModel, merge_options, validate_options
from ..exceptions import AdapterError, NotSupportedError, ResponseDecodeError
from ..types import Batch, StreamSpec, WriteResult
from .partitions import Partition, merge_ordered_bookmarks

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Self

__all__ = ["AdapterOptions", "LOAD_METHODS", "ProtocolAdapter", "Response"]

#: Load methods a writing adapter may support.
LOAD_METHODS = ("append", "upsert", "overwrite")


class AdapterOptions(OptionsModel):
    """Base options model of an adapter. Subclass it and set ``Options`` on the adapter class."""


class Response:
    """A protocol-neutral response: ``status_code``, ``headers``, ``content`` and decoded ``data``.

    ``url`` is redacted (no credentials, no secret query values). ``data`` decodes JSON on first
    access and raises :class:`ResponseDecodeError` naming the URL when the body is not JSON.
    """

    __slots__ = ("_data", "content", "elapsed", "headers", "method", "raw", "status_code", "url")

    def __init__(
        self,
        *,
        status_code: int,
        headers: Mapping[str, str] | None = None,
        content: bytes = b"",
        url: str = "",
        method: str = "GET",
        data: Any = ...,
        raw: Any = None,
        elapsed: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.headers = _Headers(headers or {})
        self.content = content
        self.url = url
        self.method = method
        self._data = data
        self.raw = raw
        self.elapsed = elapsed

    @classmethod
    def from_data(cls, data: Any, *, url: str = "", method: str = "GET", status_code: int = 200) -> Response:
        """A response holding ``data`` an adapter returned as is (a dict, a list, …): ``.data`` is
        the object itself (no copy, no JSON round trip), ``content`` is empty (no bytes came over a
        wire), the status is 200 unless given."""
        return cls(status_code=status_code, url=url, method=method, data=data)

    @property
    def http_version(self) -> str | None:
        """The protocol the answer came over (``"HTTP/1.1"``, ``"HTTP/2"``), when the adapter
        kept its wire response (``raw``); ``None`` otherwise."""
        version = getattr(self.raw, "http_version", None)
        return version if isinstance(version, str) else None

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 400

    @property
    def text(self) -> str:
        return self.content.decode(_charset(self.headers.get("content-type", "")), errors="replace")

    @property
    def data(self) -> Any:
        """The decoded body (JSON); ``None`` for an empty body."""
        if self._data is ...:
            if not self.content.strip():
                self._data = None
            else:
                import orjson

                from ..values import json_loads

                try:  # orjson; a number it would change (16+ digits, beyond 64 bits) keeps every digit
                    self._data = json_loads(self.content)
                except orjson.JSONDecodeError as exc:
                    from ..json_errors import json_error_byte, json_error_what

                    ctype = self.headers.get("content-type", "?")
                    at = json_error_byte(exc, self.content)
                    raise ResponseDecodeError(
                        f"{self.method} {self.url}: invalid JSON at byte {at}: "
                        f"{json_error_what(exc, self.content)} (content-type {ctype!r}, "
                        f"{len(self.content)} bytes)",
                        url=self.url,
                    ) from None
        return self._data

    def json(self) -> Any:
        return self.data

    def raise_for_status(self) -> Response:
        from ..exceptions import HTTPStatusError

        if not self.ok:
            raise HTTPStatusError(
                f"{self.method} {self.url}: HTTP {self.status_code}",
                url=self.url,
                status_code=self.status_code,
            )
        return self

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}] {self.method} {self.url}>"


class _Headers(dict[str, str]):
    """Case-insensitive read-only-ish header mapping."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__({k.lower(): v for k, v in headers.items()})

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)


def _charset(content_type: str) -> str:
    for part in content_type.split(";"):
        k, _, v = part.strip().partition("=")
        if k.lower() == "charset" and v:
            return v.strip('"')
    return "utf-8"


class ProtocolAdapter:
    """Base class of every adapter. Subclasses set :attr:`name`, :attr:`Options` and override what
    they support; the rest raises :class:`NotSupportedError` naming the adapter.
    """

    #: The registry name users write as ``adapter: NAME``.
    name: ClassVar[str] = ""
    #: The pydantic model of this adapter's options.
    Options: ClassVar[type[BaseModel]] = AdapterOptions
    #: Load methods :meth:`start_write` accepts (empty for read-only adapters).
    load_methods: ClassVar[Sequence[str]] = ()
    #: Option names whose values are secrets (marked in generated settings, never logged).
    secret_options: ClassVar[Sequence[str]] = ()

    def __init__(self, options: Mapping[str, Any] | BaseModel | None = None, /, **kwargs: Any) -> None:
        self.options: Any = self.configure(merge_options(options, kwargs))
        self._closed = False

    @classmethod
    def configure(cls, options: Mapping[str, Any] | BaseModel | None) -> Any:
        """Validate options against :attr:`Options` (raises ``ConfigError`` naming the field)."""
        return validate_options(cls.Options, options, plugin=f"adapter {cls.name!r}")

    @classmethod
    def open_ahead(cls, config: Mapping[str, Any], role: str = "source") -> Callable[[], None] | None:
        """Optional head start: ``dcapix run`` calls this with the raw options ``config`` of its
        source and destination right after the plugins are loaded, while it still imports the rest;
        ``role`` says which endpoint they are (``"source"`` or ``"destination"``). An adapter may
        begin, in a thread, work its first calls in that role will need (the SQL adapter opens a
        ``postgresql://`` URL's ADBC handle in either role, the LDAP plugin binds and sends its first
        paged search for a source), which its instance then takes over when the options match.
        Return a function that closes whatever no instance took (called once at the end of the
        run), or ``None`` (the default: nothing started). It must not raise for bad options: the
        run reports those."""
        return None

    def error(self, message: str, *, stream: str | None = None, field: str | None = None) -> AdapterError:
        """An :class:`AdapterError` whose message names this adapter (and stream / field)."""
        where = f"adapter {self.name!r}"
        if stream:
            where += f", stream {stream!r}"
        if field:
            where += f", field {field!r}"
        return AdapterError(f"{where}: {message}", adapter=self.name, stream=stream)

    def _unsupported(self, what: str) -> NotSupportedError:
        return NotSupportedError(f"adapter {self.name!r} does not support {what}", adapter=self.name)

    # -- request side ---------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> Response | Any:
        """Send one request (``params``, ``json``, ``data``, ``headers``, ``auth``, ``timeout``…).

        Return a :class:`Response`, or plain data (a dict, a list, …): ``ApiClient`` turns data into
        ``Response.from_data(data)``, so its callers always get a :class:`Response`."""
        raise self._unsupported("request()")

    # -- ETL side: reading -----------------------------------------------------------------------
    def discover(self) -> list[StreamSpec]:
        """The streams this adapter can read, with JSON Schema, keys and replication keys."""
        raise self._unsupported("discover()")

    def get_stream(self, name: str) -> StreamSpec:
        """The discovered stream called ``name``; unknown names list the known ones."""
        streams = {s.name: s for s in self.discover()}
        if name not in streams:
            raise self.error(
                f"unknown stream {name!r}; known: {', '.join(sorted(streams)) or '(none)'}", stream=name
            )
        return streams[name]

    def read(
        self,
        stream: StreamSpec,
        *,
        state: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Batch]:
        """Yield the stream's records in batches.

        :param state: the stream's bookmark from a previous run (``Batch.bookmark`` of the last
            committed batch); incremental streams resume after it with no gap and no duplicate.
        :param columns: only these fields (``None``: all).
        :param limit: stop after this many records.
        """
        raise self._unsupported("read()")

    # -- ETL side: partitioned reading (see dc_api_x.ext.partitions) ----------------------------
    def partitions(
        self, stream: StreamSpec, *, state: Mapping[str, Any] | None = None, max_partitions: int = 4
    ) -> list[Partition] | None:
        """Split ``stream`` (resuming after ``state``) into at most ``max_partitions`` disjoint
        partitions read concurrently by :meth:`read_partition`; ``None`` (the default): the stream
        is read by one :meth:`read`. The contract is in :mod:`dc_api_x.ext.partitions`."""
        return None

    def read_partition(
        self,
        stream: StreamSpec,
        partition: Partition,
        *,
        state: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Batch]:
        """Yield one partition's batches, resuming after ``state`` (that partition's own bookmark,
        ``partition.state`` on its first run)."""
        raise self._unsupported("read_partition()")

    def merge_partition_bookmarks(
        self,
        stream: StreamSpec,
        base: Mapping[str, Any] | None,
        bookmarks: Sequence[Mapping[str, Any] | None],
        done: Sequence[bool],
    ) -> dict[str, Any] | None:
        """The stream's bookmark from its partitions' committed ones (default: ordered ranges,
        :func:`~dc_api_x.ext.partitions.merge_ordered_bookmarks`)."""
        return merge_ordered_bookmarks(base, bookmarks, done)

    # -- ETL side: writing -----------------------------------------------------------------------
    def start_write(self, stream: StreamSpec, *, load_method: str | None = None) -> None:
        """Prepare to write ``stream`` (create or alter its table, open its file …)."""
        if not self.load_methods:
            raise self._unsupported("write()")
        if load_method is not None and load_method not in self.load_methods:
            raise self.error(
                f"unknown load_method {load_method!r}; valid: {', '.join(self.load_methods)}",
                stream=stream.name,
            )

    def write(self, stream: StreamSpec, batch: Batch) -> WriteResult:
        """Write one batch. It may be buffered until :meth:`flush`."""
        raise self._unsupported("write()")

    def flush(self, stream: StreamSpec | None = None) -> None:
        """Make everything written so far durable (all streams when ``stream`` is ``None``)."""

    def finish_write(self, stream: StreamSpec) -> None:
        """Flush and finalize ``stream`` (swap staged tables, close files)."""
        self.flush(stream)

    # -- lifecycle --------------------------------------------------------------------------------
    def close(self) -> None:
        """Release connections and files. Safe to call twice."""
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} adapter={self.name!r}>"


# Re-exported for adapter authors
__all__ += ["Batch", "Partition", "StreamSpec", "WriteResult"]
