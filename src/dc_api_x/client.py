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
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .exceptions import ConfigError
from .ext.adapters import Response
from .ext.auth import AuthProvider
from .ext.hooks import RequestHook, RequestInfo
from .ext.pagination import PageRequest, Paginator, extract_records
from .logs import redact

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Self

    from .plugins import PluginSet

__all__ = ["ApiClient"]

log = logging.getLogger("dc_api_x.client")


class ApiClient:
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
                raise ConfigError(
                    f"ApiClient: option 'hooks': {h!r} is not a hook name, a {{type: NAME}} "
                    f"dict or a RequestHook",
                    plugin="ApiClient",
                    field="hooks",
                )
        return made

    def hook(self, name: str) -> RequestHook:
        """The client's hook called ``name`` (e.g. ``client.hook("metrics").snapshot()``)."""
        for h in self.hooks:
            if h.name == name:
                return h
        raise KeyError(f"no hook {name!r} on this client; hooks: {', '.join(h.name for h in self.hooks)}")

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
        try:  # a hook's before_request may have answered the request (a cache hit): nothing is sent
            response = info.response or self.adapter.request(
                info.method, info.url, params=info.params or None, headers=info.headers or None, **kwargs
            )
        except Exception as exc:
            for h in reversed(self.hooks):
                self._call(h, "on_error", info, exc)
            raise
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
        stream = getattr(self.adapter, "stream", None)
        if stream is None:
            from .exceptions import NotSupportedError

            name = getattr(self.adapter, "name", "?")
            raise NotSupportedError(f"adapter {name!r} does not support stream()", adapter=name)
        if self.auth is not None:
            kwargs.setdefault("auth", self.auth)
        return stream(method, path, **kwargs)

    # -- pagination ------------------------------------------------------------------------------
    def paginate(
        self,
        path: str = "",
        *,
        paginator: Paginator[Any] | Mapping[str, Any] | str | None = None,
        records_path: str | None = "",
        params: Mapping[str, Any] | None = None,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> Iterator[Any]:
        """Yield the records of every page of ``path``.

        :param paginator: a ``{type: NAME, …}`` dict, a name or a Paginator instance (default:
            the adapter's ``pagination`` option, else ``single_page``).
        :param records_path: dotted path of the record list in each body ('' = the body).
        :raises HTTPStatusError: on a 4xx/5xx page (after retries).
        :raises PaginationError: when the server loops (a token seen twice, or a page repeating
            an earlier page: raised before any record of the repeated page is yielded).
        """
        from .factories import create_plugin

        if paginator is None:
            paginator = getattr(getattr(self.adapter, "options", None), "pagination", None) or "single_page"
        pag: Paginator[Any] = (
            paginator
            if isinstance(paginator, Paginator)
            else create_plugin("paginators", paginator, plugins=self._plugins)
        )
        pag.reset()
        base_params = dict(params or {})
        base_headers = dict(headers or {})
        where = f"ApiClient {method.upper()} {path}"
        while not pag.finished:
            pr = PageRequest(method.upper(), path, dict(base_params), dict(base_headers), json)
            pag.prepare(pr)
            kwargs: dict[str, Any] = {}
            if pr.json is not None:
                kwargs["json"] = pr.json
            response = self.request(pr.method, pr.url, params=pr.params, headers=pr.headers, **kwargs)
            response.raise_for_status()
            records = pag.clip(extract_records(response.data, records_path, where=f"{where}: {response.url}"))
            pag.advance(response, records)
            yield from records

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

    def __repr__(self) -> str:
        return f"<ApiClient adapter={getattr(self.adapter, 'name', '?')!r} url={redact(self.url)!r}>"
