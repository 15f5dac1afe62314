"""OpenAPI descriptions of the auth layer for drf-spectacular."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "flx_live_<40 hex> or flx_test_<40 hex>",
            "description": "An API key from Settings -> API Keys.",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.auth.SessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "The dashboard session (with CSRF).",
        }
