"""Supplied for the guide's ``advanced_plugin``: an auth provider adding ``X-Custom-Auth: <key>``."""

from pydantic import SecretStr

from dc_api_x.ext.auth import AuthOptions, AuthProvider


class CustomAuthOptions(AuthOptions):
    key: SecretStr


class CustomAuthProvider(AuthProvider):
    name = "custom_auth"
    Options = CustomAuthOptions

    def apply(self, request):
        request.headers["X-Custom-Auth"] = self.options.key.get_secret_value()
