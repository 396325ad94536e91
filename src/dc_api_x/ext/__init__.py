"""Public base classes for plugin authors.

* :mod:`dc_api_x.ext.adapters` — :class:`ProtocolAdapter`, :class:`Response`
* :mod:`dc_api_x.ext.auth` — :class:`AuthProvider`
* :mod:`dc_api_x.ext.pagination` — :class:`Paginator`
* :mod:`dc_api_x.ext.transforms` — :class:`Transform`
* :mod:`dc_api_x.ext.hooks` — :class:`RequestHook`
* :mod:`dc_api_x.ext.schemas` — :class:`SchemaProvider`
* :mod:`dc_api_x.ext.config` — :class:`ConfigProvider`
"""
