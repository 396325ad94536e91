"""``ApiClient``: a small API client over any adapter's request side (HTTP by default).

::

    from dc_api_x import ApiClient

    with ApiClient("https://api.example.com", auth={"type": "bearer", "token": "…"}) as api:
        me = api.get("/me").raise_for_status().data
        for item in api.paginate("/items", paginator={"type": "cursor", "cursor_path": "next"},
                                 records_path="data"):
            ...

The adapter is created through the registry (:func:`dc_api_x.create_adapter`), never imported.
Request hooks (``register_hooks``) observe every request: ``hooks=None`` uses the registered
hooks that are enabled by default (``logging``, ``metrics``), ``hooks=[]`` none, or give a list of
names, ``{type: NAME, …}`` dicts or :class:`~dc_api_x.ext.hooks.RequestHook` instances.

:class:`~dc_api_x.AsyncApiClient` (:mod:`dc_api_x.async_client`) is the same client for asyncio:
both derive from :class:`_ClientCore` here, which holds everything but the I/O (building the
adapter, auth and hooks, the :class:`~dc_api_x.ext.hooks.RequestInfo` of a request, the
pagination state machine :class:`PageWalk`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from .exceptions import ConfigError
from .ext.adapters import Response
from .ext.auth import AuthProvider
from .ext.hooks import RequestHook, RequestInfo
from .ext.pagination import PageRequest, Paginator, extract_records
from .logs import redact

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Self, Unpack

    from .plugins import PluginSet

__all__ = ["ApiClient", "Page", "PageOptions", "PageWalk"]

log = logging.getLogger("dc_api_x.client")


class PageOptions(TypedDict, total=False):
    """The options of :meth:`ApiClient.paginate` / :meth:`ApiClient.pages` (and the async ones)."""

    #: A ``{type: NAME, …}`` dict, a name or a Paginator (default: the adapter's ``pagination``
    #: option, else ``single_page``).
    paginator: Paginator[Any] | Mapping[str, Any] | str | None
    #: Dotted path of the record list in each body ('' = the body).
    records_path: str | None
    params: Mapping[str, Any] | None
    method: str
    headers: Mapping[str, str] | None
    json: Any


@dataclass
class Page:
    """One page of :meth:`ApiClient.pages`: the response and the records taken from it."""

    response: Response
    records: list[Any]
    #: The page number, from 1.
    number: int


class PageWalk:
    """The state machine of one paginated read, shared by the sync and the async client: ask
    :meth:`next_request` for the next :class:`~dc_api_x.ext.pagination.PageRequest` while not
    :attr:`finished`, send it, hand the response to :meth:`receive` for the page's records."""

    def __init__(
        self,
        paginator: Paginator[Any],
        path: str,
        *,
        method: str = "GET",
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        records_path: str | None = "",
        where: str = "ApiClient",
    ) -> None:
        self.paginator = paginator
        self.method = method.upper()
        self.path = path
        self.params = dict(params or {})
        self.headers = dict(headers or {})
        self.json = json
        self.records_path = records_path
        self.where = f"{where} {self.method} {path}"
        paginator.reset()

    @property
    def finished(self) -> bool:
        return self.paginator.finished

    def next_request(self) -> tuple[PageRequest, dict[str, Any]]:
        """The next page's request and the client ``request()`` keyword arguments to send it."""
        pr = PageRequest(self.method, self.path, dict(self.params), dict(self.headers), self.json)
        self.paginator.prepare(pr)
        kwargs: dict[str, Any] = {"params": pr.params, "headers": pr.headers}
        if pr.json is not None:
            kwargs["json"] = pr.json
        return pr, kwargs

    def receive(self, response: Response) -> Page:
        """The page of ``response`` (raises :class:`~dc_api_x.exceptions.HTTPStatusError` on a
        4xx/5xx answer, :class:`~dc_api_x.exceptions.PaginationError` on a loop)."""
        response.raise_for_status()
        where = f"{self.where}: {response.url}"
        records = self.paginator.clip(extract_records(response.data, self.records_path, where=where))
        self.paginator.advance(response, records)
        return Page(response, records, self.paginator.pages)


class _ClientCore:
    """What :class:`ApiClient` and :class:`~dc_api_x.AsyncApiClient` share: the adapter built
    through the registry, the auth provider, the request hooks and the bookkeeping around one
    request (everything but the I/O)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        adapter: str = "http",
        adapter_options: Mapping[str, Any] | None = None,
        auth: Mapping[str, Any] | AuthProvider | str | None = None,
        hooks: Sequence[Any] | None = None,
        plugins: PluginSet | None = None,
        **options: Any,
    ) -> None:
        from .factories import build_adapter, create_plugin
        from .plugins import get_plugins

        self._plugins = plugins or get_plugins()
        opts: dict[str, Any] = {**dict(adapter_options or {}), **options}
        entry = self._plugins.adapters.get(adapter)
        self.adapter: Any = (
            build_adapter(adapter, entry, opts)
            if url is None
            else build_adapter(adapter, entry, opts, url=url)
        )
        self.url = url
        base = url or getattr(getattr(self.adapter, "options", None), "base_url", None)
        self._base_url = str(base or "")
        self.auth: AuthProvider | None
        if auth is None or isinstance(auth, AuthProvider):
            self.auth = auth
        else:
            self.auth = create_plugin("auth_providers", auth, plugins=self._plugins)
        self._own_auth = self.auth is not None and not isinstance(auth, AuthProvider)
        self.hooks: list[RequestHook] = self._make_hooks(hooks)
        self._setup()

    def _setup(self) -> None:
        """What a subclass adds once the adapter, auth and hooks are built."""

    def _make_hooks(self, hooks: Sequence[Any] | None) -> list[RequestHook]:
        from .factories import create_plugin

        reg = self._plugins.hooks
        if hooks is None:
            out = []
            for name in reg.names():
                cls = reg.get(name)
                by_default = getattr(cls, "use_by_default", None)
                if by_default() if callable(by_default) else getattr(cls, "enabled_by_default", False):
                    out.append(cls())
            return out
        made: list[RequestHook] = []
        for h in hooks:
            if isinstance(h, RequestHook):
                made.append(h)
            elif isinstance(h, (str, Mapping)):
                made.append(create_plugin("hooks", h, plugins=self._plugins))
            else:
                kind = type(self).__name__
                raise ConfigError(
                    f"{kind}: option 'hooks': {h!r} is not a hook name, a {{type: NAME}} "
                    f"dict or a RequestHook",
                    plugin=kind,
                    field="hooks",
                )
        return made

    def hook(self, name: str) -> RequestHook:
        """The client's hook called ``name`` (e.g. ``client.hook("metrics").snapshot()``)."""
        for h in self.hooks:
            if h.name == name:
                return h
        raise KeyError(f"no hook {name!r} on this client; hooks: {', '.join(h.name for h in self.hooks)}")

    # -- one request, around the I/O ------------------------------------------------------------
    def _before(self, method: str, path: str, kwargs: dict[str, Any]) -> RequestInfo:
        """The request's :class:`RequestInfo` after the ``before_request`` hooks (``kwargs`` gets
        the client's ``auth`` unless it has one)."""
        info = RequestInfo(
            method=method.upper(),
            url=path,
            params=dict(kwargs.pop("params", None) or {}),
            headers=dict(kwargs.pop("headers", None) or {}),
            kwargs=kwargs,
            base_url=self._base_url,
            adapter=str(getattr(self.adapter, "name", "") or ""),
        )
        if self.auth is not None:
            kwargs.setdefault("auth", self.auth)
        for h in self.hooks:
            self._call(h, "before_request", info)
        return info

    @staticmethod
    def _send_args(info: RequestInfo) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The adapter ``request()`` arguments of ``info``."""
        return (info.method, info.url), {
            "params": info.params or None,
            "headers": info.headers or None,
            **info.kwargs,
        }

    def _failed(self, info: RequestInfo, exc: BaseException) -> None:
        for h in reversed(self.hooks):
            self._call(h, "on_error", info, exc)

    def _after(self, info: RequestInfo, response: Any) -> Response:
        if not isinstance(response, Response):
            response = Response.from_data(response, url=redact(info.url), method=info.method)
        for h in reversed(self.hooks):
            self._call(h, "after_response", info, response)
        return response

    @staticmethod
    def _call(hook: RequestHook, method: str, *args: Any) -> None:
        try:
            getattr(hook, method)(*args)
        except Exception as exc:  # an observer must not break the request
            log.warning("request hook %r.%s failed: %s", hook.name, method, redact(exc))

    def _walk(self, path: str, **options: Unpack[PageOptions]) -> PageWalk:
        from .factories import create_plugin

        unknown = sorted(set(options) - set(PageOptions.__annotations__))
        if unknown:
            known = ", ".join(PageOptions.__annotations__)
            raise TypeError(f"{type(self).__name__}.paginate(): unknown option(s) {unknown}; known: {known}")
        paginator = options.get("paginator")
        if paginator is None:
            paginator = getattr(getattr(self.adapter, "options", None), "pagination", None) or "single_page"
        pag: Paginator[Any] = (
            paginator
            if isinstance(paginator, Paginator)
            else create_plugin("paginators", paginator, plugins=self._plugins)
        )
        return PageWalk(
            pag,
            path,
            method=options.get("method", "GET"),
            params=options.get("params"),
            headers=options.get("headers"),
            json=options.get("json"),
            records_path=options.get("records_path", ""),
            where=type(self).__name__,
        )

    def _stream_of_adapter(self, owner: Any, kwargs: dict[str, Any]) -> Any:
        stream = getattr(owner, "stream", None)
        if stream is None:
            from .exceptions import NotSupportedError

            name = getattr(self.adapter, "name", "?")
            raise NotSupportedError(f"adapter {name!r} does not support stream()", adapter=name)
        if self.auth is not None:
            kwargs.setdefault("auth", self.auth)
        return stream

    def __repr__(self) -> str:
        name = getattr(self.adapter, "name", "?")
        return f"<{type(self).__name__} adapter={name!r} url={redact(self.url)!r}>"


class ApiClient(_ClientCore):
    """A client for one API.

    :param url: the base URL (the adapter's ``base_url`` option, or ``url`` for adapters that
        name it so).
    :param adapter: the registered adapter name (``"http"``).
    :param adapter_options: more adapter options (``headers``, ``timeout``, ``retries``, …).
    :param auth: a ``{type: NAME, …}`` dict, a provider name or an
        :class:`~dc_api_x.ext.auth.AuthProvider`; used for every request.
    :param hooks: request hooks (see the module doc).
    :param plugins: the plugin set to use (default: the current one).
    """

    # -- requests ------------------------------------------------------------------------------
    def request(self, method: str, path: str = "", **kwargs: Any) -> Response:
        """Send one request through the adapter with the hooks around it; always a :class:`Response`.

        ``kwargs`` are the adapter's (``params``, ``headers``, ``json``, ``data``, ``timeout``,
        ``raise_for_status`` …). The client's ``auth`` is used unless ``auth=`` is given.

        An adapter's ``request()`` may return a :class:`Response` or plain data (a dict, a list, …,
        as the plugin guide's adapters do): data comes back as ``Response.from_data(...)`` — status
        200, ``.data`` the object itself, no wire bytes (``content`` is empty) — so hooks,
        :meth:`paginate` and callers see one type either way.
        """
        info = self._before(method, path, kwargs)
        try:  # a hook's before_request may have answered the request (a cache hit): nothing is sent
            if info.response is not None:
                response: Any = info.response
            else:
                args, kw = self._send_args(info)
                response = self.adapter.request(*args, **kw)
        except Exception as exc:
            self._failed(info, exc)
            raise
        return self._after(info, response)

    def get(self, path: str = "", **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str = "", **kwargs: Any) -> Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str = "", **kwargs: Any) -> Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str = "", **kwargs: Any) -> Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str = "", **kwargs: Any) -> Response:
        return self.request("DELETE", path, **kwargs)

    def head(self, path: str = "", **kwargs: Any) -> Response:
        return self.request("HEAD", path, **kwargs)

    def stream(self, method: str, path: str = "", **kwargs: Any) -> Any:
        """The adapter's streamed request (a context manager yielding an iterable of byte
        chunks), for bodies too large for memory: ``with api.stream("GET", "/export") as r: …``.
        The client's ``auth`` is used unless ``auth=`` is given; hooks are not called."""
        return self._stream_of_adapter(self.adapter, kwargs)(method, path, **kwargs)

    # -- pagination ------------------------------------------------------------------------------
    def pages(self, path: str = "", **options: Unpack[PageOptions]) -> Iterator[Page]:
        """Yield every :class:`Page` of ``path`` (its response and records); the arguments are
        :meth:`paginate`'s."""
        walk = self._walk(path, **options)
        while not walk.finished:
            pr, kwargs = walk.next_request()
            yield walk.receive(self.request(pr.method, pr.url, **kwargs))

    def paginate(self, path: str = "", **options: Unpack[PageOptions]) -> Iterator[Any]:
        """Yield the records of every page of ``path``.

        The options (:class:`PageOptions`): ``paginator`` — a ``{type: NAME, …}`` dict, a name or
        a Paginator instance (default: the adapter's ``pagination`` option, else ``single_page``);
        ``records_path`` — dotted path of the record list in each body ('' = the body);
        ``params``, ``method`` (``GET``), ``headers``, ``json`` of every page's request.

        :raises HTTPStatusError: on a 4xx/5xx page (after retries).
        :raises PaginationError: when the server loops (a token seen twice, or a page repeating
            an earlier page: raised before any record of the repeated page is yielded).
        """
        for page in self.pages(path, **options):
            yield from page.records

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the adapter (connections) and the auth provider this client created. (An adapter
        without ``close()`` — the guide's plain-class adapters — has nothing to close.)"""
        close = getattr(self.adapter, "close", None)
        if close is not None:
            close()
        if self._own_auth and self.auth is not None:
            self.auth.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
