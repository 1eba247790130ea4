"""What every REST handler answers with: a JSON body, or an HttpError the app turns into
``{"error": {"status", "field", "problem"}}`` (controller.api.rest). One place, so every
route's replies look the same (no caching, UTF-8, indented)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from webob import Response


class HttpError(Exception):
    def __init__(self, status: int, problem: str, field: str | None = None, headers: Mapping[str, str] | None = None):
        super().__init__(problem)
        self.status = status
        self.problem = problem
        self.field = field
        self.headers = dict(headers or {})


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    text = json.dumps(body, indent=2, ensure_ascii=False, default=str) + "\n"
    resp = Response(status=status, body=text.encode("utf-8"), content_type="application/json", charset="utf-8")
    resp.headers["Cache-Control"] = "no-store"
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp
