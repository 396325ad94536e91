"""The Redis connection of one adapter: redis-py's client plus a raw pipelining channel.

Ordinary commands (SCAN, XRANGE, the catalog, pub/sub) go through redis-py's ``Redis`` client. Bulk
traffic (HGETALL/MGET for thousands of keys, the HSET/XADD/SET/PUBLISH commands of a write batch)
goes through one of its connections as already packed RESP: :meth:`RedisConnection.send` writes
a buffer, :meth:`RedisConnection.replies` reads the answers (redis-py's own parser, hiredis when
installed). Every redis-py or socket error becomes one :class:`~dc_api_x.exceptions.AdapterError`
line naming the adapter, the stream and the server (credentials redacted).
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dc_api_x.exceptions import AdapterError
from dc_api_x.logs import redact, redact_url, register_secret

if TYPE_CHECKING:  # pragma: no cover
    from .config import RedisCacheConfig, RedisConfig

__all__ = ["Pipe", "RedisConnection", "ReplyError", "make_client", "pack"]


class ReplyError(AdapterError):
    """The server answered a command with an error (e.g. ``WRONGTYPE``); ``index`` is the reply's
    position in its pipeline."""

    def __init__(self, message: str, *, index: int, adapter: str | None = None, stream: str | None = None):
        super().__init__(message, adapter=adapter, stream=stream)
        self.index = index


def make_client(config: RedisConfig | RedisCacheConfig) -> Any:
    """A ``redis.Redis`` client for ``config`` (``url``, ``socket_timeout``, ``username``/``password``)."""
    import redis

    kwargs: dict[str, Any] = {
        "socket_timeout": config.socket_timeout,
        "socket_connect_timeout": min(config.socket_timeout, 10.0),
    }
    username = getattr(config, "username", None)
    password = getattr(config, "password", None)
    if username:
        kwargs["username"] = username
    if password is not None:
        kwargs["password"] = password.get_secret_value()
        register_secret(kwargs["password"])
    try:
        return redis.Redis.from_url(config.url, **kwargs)
    except ValueError as exc:  # a malformed URL
        raise AdapterError(f"bad Redis url {redact_url(config.url)!r}: {exc}") from None


class RedisConnection:
    """The redis-py client of one adapter and its raw pipes (each pipe: one connection of the pool)."""

    def __init__(self, config: RedisConfig, adapter: str = "redis") -> None:
        self.config = config
        self.adapter = adapter
        self.where = redact_url(config.url)
        self.client: Any = make_client(config)
        self._pipes: list[Pipe] = []
        self._reader: Pipe | None = None

    # -- errors ---------------------------------------------------------------------------------
    def error(self, message: str, stream: str | None = None) -> AdapterError:
        where = f"adapter {self.adapter!r}" + (f", stream {stream!r}" if stream else "")
        return AdapterError(f"{where}: {self.where}: {redact(message)}", adapter=self.adapter, stream=stream)

    @contextlib.contextmanager
    def errors(self, stream: str | None = None, pipe: Pipe | None = None) -> Iterator[None]:
        """Turn redis-py and socket errors into one :class:`AdapterError` line (and drop ``pipe``'s
        connection, whose unread replies would put it out of step)."""
        import redis

        try:
            yield
        except (redis.RedisError, OSError) as exc:
            if pipe is not None:
                pipe.reset()
            raise self.error(f"{type(exc).__name__}: {exc}", stream) from None

    # -- pipes ----------------------------------------------------------------------------------
    def pipe(self) -> Pipe:
        """A new pipe (a writer owns one: its replies are read in order, by it alone)."""
        p = Pipe(self)
        self._pipes.append(p)
        return p

    @property
    def reader(self) -> Pipe:
        """The pipe of reads (SCAN's HGETALL/MGET, XRANGE), one request-reply at a time."""
        if self._reader is None:
            self._reader = self.pipe()
        return self._reader

    def call(self, payload: bytes | memoryview, replies: int, stream: str | None = None) -> list[Any]:
        """Send packed commands on the reader pipe and read their ``replies``."""
        pipe = self.reader
        with self.errors(stream, pipe):
            pipe.send(payload, replies)
            return pipe.replies(stream)

    def close(self) -> None:
        for p in self._pipes:
            p.close()
        self._pipes.clear()
        self._reader = None
        with contextlib.suppress(Exception):
            self.client.close()
        with contextlib.suppress(Exception):
            self.client.connection_pool.disconnect()


class Pipe:
    """One raw connection with pipelines of packed commands in flight: :meth:`send` queues a
    pipeline, :meth:`replies` reads the oldest one's answers. Several pipelines may be in flight, so
    the server always has work queued while the client builds the next one."""

    def __init__(self, owner: RedisConnection) -> None:
        self.owner = owner
        self._raw: Any = None
        #: reply counts of the pipelines sent and not read yet, oldest first
        self.inflight: collections.deque[int] = collections.deque()

    @property
    def raw(self) -> Any:
        if self._raw is None:
            self._raw = self.owner.client.connection_pool.get_connection()
        return self._raw

    def send(self, payload: bytes | memoryview, replies: int) -> None:
        """Send one pipeline of packed commands whose ``replies`` answers :meth:`replies` reads."""
        self.inflight.append(replies)
        self.raw.send_packed_command([payload], check_health=False)

    def replies(self, stream: str | None = None) -> list[Any]:
        """The replies of the oldest pipeline in flight (raw bytes). An error reply is raised as
        :class:`ReplyError` after all its replies were read (the connection stays in step)."""
        import redis

        if not self.inflight:
            return []
        n = self.inflight.popleft()
        read = self.raw.read_response
        out: list[Any] = []
        append = out.append
        first: tuple[int, BaseException] | None = None
        try:
            for i in range(n):
                try:
                    reply = read(disable_decoding=True)
                except redis.ResponseError as exc:
                    append(None)
                    if first is None:
                        first = (i, exc)
                    continue
                if first is None and type(reply) is list:  # EXEC: the errors of its commands
                    failed = next((r for r in reply if isinstance(r, Exception)), None)
                    if failed is not None:
                        first = (i, failed)
                append(reply)
        except BaseException:
            self.reset()
            raise
        if first is not None:
            index, error = first
            adapter = self.owner.adapter
            raise ReplyError(
                f"adapter {adapter!r}" + (f", stream {stream!r}" if stream else "") + f": {error}",
                index=index,
                adapter=adapter,
                stream=stream,
            )
        return out

    def reset(self) -> None:
        """Drop the connection (after an error mid-pipeline: unread replies would desync it)."""
        self.inflight.clear()
        if self._raw is not None:
            with contextlib.suppress(Exception):
                self._raw.disconnect()

    def close(self) -> None:
        """Give the connection back to the pool (dropped first if replies are still unread)."""
        raw, self._raw = self._raw, None
        if raw is not None:
            with contextlib.suppress(Exception):
                if self.inflight:
                    raw.disconnect()
                self.owner.client.connection_pool.release(raw)
        self.inflight.clear()


def pack(*args: bytes | str | int) -> bytes:
    """One RESP command (for the few commands built by hand)."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)
