"""REST handlers for the report and its settings, and their OpenAPI paths.

    GET /v1/settings                            the report's settings (budget, uplink, office hours, holidays)
    PUT /v1/settings                            replace them (write token); missing fields take defaults;
                                                audited (action "settings", who = the token's name)

Errors are the policy API's: ``{"error": {"status", "field", "problem"}}``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from webob import Request, Response

from controller.api.store import SettingsFile
from controller.core import settings as settings_mod
from controller.core.settings import SettingsError
from controller.errors import KendaliError

log = logging.getLogger("kendali.rest")


def _json(body: Any, status: int = 200) -> Response:
    resp = Response(
        status=status,
        body=(json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode(),
        content_type="application/json",
        charset="utf-8",
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _error(status: int, problem: str, field: str | None = None) -> Exception:
    from controller.api.rest import HttpError  # rest imports this module: import at call time

    return HttpError(status, problem, field)


def get_settings(req: Request, file: SettingsFile) -> Response:
    try:
        return _json(file.get().to_dict())
    except KendaliError as exc:
        raise _error(503, str(exc)) from None


def put_settings(req: Request, body: Any, file: SettingsFile, who: str) -> Response:
    try:
        new = settings_mod.validate(body)
    except SettingsError as exc:
        raise _error(400, exc.problem, exc.field) from None
    with file.lock:
        try:
            changed = file.put(new, who)
        except OSError as exc:
            log.error("cannot save the settings: %s", exc)
            raise _error(503, f"could not save the settings ({exc.strerror or exc}); nothing was changed") from None
    if changed:
        log.info("settings changed by token %r", who)
    return _json(new.to_dict())


# ---- OpenAPI 3.1 fragments (merged into GET /v1/openapi.json) ------------------------------------

_ERROR = {
    "description": "an error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}

OPENAPI_SCHEMAS: dict[str, Any] = {"Settings": settings_mod.SCHEMA}

OPENAPI_PATHS: dict[str, Any] = {
    "/v1/settings": {
        "get": {
            "summary": "The report's settings: annual budget, purchased uplink, office hours, holidays",
            "responses": {
                "200": {
                    "description": "the settings, every field given",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Settings"}}},
                },
                "503": _ERROR,
            },
        },
        "put": {
            "summary": "Replace the report's settings (fields left out take their defaults)",
            "body": "Settings",
            "responses": {
                "200": {
                    "description": "the settings now in force, every field given",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Settings"}}},
                },
                "400": _ERROR,
                "413": _ERROR,
                "503": _ERROR,
            },
        },
    },
}
