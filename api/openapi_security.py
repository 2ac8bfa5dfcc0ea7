"""Auth in the OpenAPI document: the three ways to send credentials, and on every
protected operation which of them it takes and which roles it admits (``x-roles``),
so /docs can "Authorize" and clients can see who may call what."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from api.auth import declared_roles
from api.security import SESSION_COOKIE

SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "the access_token from POST /api/auth/login",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "cvk_<prefix>_<secret>, made by an admin (POST /api/users/api-keys)",
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "set by POST /api/auth/login (the web console)",
    },
}
_DENIED = {
    "401": {"description": "no valid credentials: log in or send an API key"},
    "403": {"description": "the caller's role is not among x-roles"},
}


def add_security(app: FastAPI) -> None:
    """Wrap ``app.openapi`` so the generated document carries the auth information."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {})["securitySchemes"] = SCHEMES
        for context in iter_route_contexts(app.routes):
            roles = declared_roles(getattr(context, "dependant", None))
            operations = schema.get("paths", {}).get(context.path or "", {})
            if roles is None or not operations:
                continue
            for method in context.methods or ():
                operation = operations.get(method.lower())
                if operation is None:
                    continue
                operation["security"] = [{name: []} for name in SCHEMES]
                operation["x-roles"] = sorted(roles)
                responses = operation.setdefault("responses", {})
                for status, response in _DENIED.items():
                    responses.setdefault(status, response)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
