"""Error answers: what a 422 may echo back, and how every error is documented.

* ``validation_error_handler`` replaces FastAPI's default 422 handler. The default
  echoes each bad value back (``input``): a weak password, a whole login body with
  its password when the username is missing, a camera URL with its credentials,
  or a 10 MB string. Here the body's values are never echoed (``loc`` and ``msg``
  name the field and the problem), and URLs in messages and query values lose
  their credentials.
* ``add_error_docs`` makes ``docs/openapi.json`` tell the truth about errors:
  every 4xx/5xx has a body schema, every route with an id in its path documents
  404 (an id that matches nothing), and a 422's ``detail`` is either the list of
  bad fields or one sentence for a rule across fields ("until_ts must be later
  than since_ts"), as the routes answer and the console already reads.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.redact import redact_url

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "title": "Detail",
            "description": "what went wrong and what to do next",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        }
    },
}
ERROR_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
VALIDATION_REF = {
    "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
}
VALIDATION_DETAIL: dict[str, Any] = {
    "title": "Detail",
    "description": "each bad field (loc names it), or one sentence for a rule across "
    "fields; a rejected camera config lists one line per problem with its key path",
    "anyOf": [
        {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
        {"type": "string"},
        {"type": "array", "items": {"type": "string"}},
    ],
}
# Status codes routes raise beyond those they declare, by (method, path template).
EXTRA_ERRORS: dict[tuple[str, str], dict[str, str]] = {
    ("post", "/api/auth/login"): {
        "401": "wrong username or password, or the account is deactivated",
        "429": "too many failed logins for this username from this address; see Retry-After",
    },
    ("post", "/api/auth/password"): {"400": "API keys have no password"},
    ("post", "/api/cameras"): {"409": "a camera with this id exists"},
    ("post", "/api/cameras/test"): {"429": "too many connection tests at once"},
    ("get", "/api/config/versions/{version_id}"): {
        "409": "that version no longer validates against the current schema"
    },
    ("post", "/api/config/versions/{version_id}/rollback"): {
        "409": "that version is the live one, or no longer validates"
    },
    ("post", "/api/users"): {"409": "the username is taken"},
    ("patch", "/api/users/{username}"): {"409": "the last active admin cannot lose that role"},
    ("get", "/healthz"): {"503": "the bus does not answer"},
}
# Every request with a body can meet these, before the route runs.
BODY_ERRORS = {
    "400": "the body is not JSON this API can read (not UTF-8, or nested too deeply)",
    "413": "the request body is larger than 1 MiB (api/http_guards.py)",
}


def _scrub(error: dict[str, Any]) -> dict[str, Any]:
    loc = list(error.get("loc", ()))
    msg = redact_url(str(error.get("msg", "")))
    if loc == ["body"] and error.get("type") == "model_attributes_type":
        # What FastAPI makes of a form, text or a body without a JSON content type.
        msg = f"{msg}: send a JSON object with Content-Type: application/json"
    out: dict[str, Any] = {"type": error.get("type", "value_error"), "loc": loc, "msg": msg}
    # A body value may be a password or a secret, or the whole body holding one.
    if "input" in error and (not loc or loc[0] != "body"):
        value = error["input"]
        out["input"] = redact_url(value) if isinstance(value, str) else value
    if "ctx" in error:
        out["ctx"] = error["ctx"]
    return out


async def validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_scrub(e) for e in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(errors)})


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's own answer, except for a body it could not parse: its "There was an
    error parsing the body" does not say what to fix."""
    assert isinstance(exc, StarletteHTTPException)
    cause = exc.__cause__
    if exc.status_code == 400 and isinstance(cause, UnicodeDecodeError):
        detail = f"body: not UTF-8 (byte {cause.start}); send JSON encoded as UTF-8"
        return JSONResponse(status_code=400, content={"detail": detail})
    if exc.status_code == 400 and isinstance(cause, RecursionError):
        detail = "body: JSON nested too deeply; no field of this API nests more than a few levels"
        return JSONResponse(status_code=400, content={"detail": detail})
    return await http_exception_handler(request, exc)


def add_error_docs(app: FastAPI) -> None:
    """Wrap ``app.openapi`` (after ``add_security``) to document error answers."""
    generate = app.openapi
    done = False

    def openapi() -> dict[str, Any]:
        nonlocal done
        schema = generate()
        if done:
            return schema
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Error"] = ERROR_SCHEMA
        if "HTTPValidationError" in schemas:
            schemas["HTTPValidationError"]["properties"]["detail"] = VALIDATION_DETAIL
        paths = schema.get("paths", {})
        for context in iter_route_contexts(app.routes):
            operations = paths.get(context.path or "", {})
            for method in context.methods or ():
                operation = operations.get(method.lower())
                if operation is not None:
                    _document(operation, method.lower(), context.path or "")
        done = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document(operation: dict[str, Any], method: str, path: str) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    extra = dict(BODY_ERRORS) if "requestBody" in operation else {}
    if "{" in path:
        extra["404"] = "nothing matches the id in the path"
    extra.update(EXTRA_ERRORS.get((method, path), {}))
    for status, description in extra.items():
        responses.setdefault(status, {"description": description})
    for status, response in responses.items():
        if status[0] in "45" and "content" not in response:
            response["content"] = VALIDATION_REF if status == "422" else ERROR_REF
