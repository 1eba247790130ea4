"""The REST API: per-OPD policies (read/write), topology and health (read). Plain WebOb.

    GET    /v1/policies           all policies {"policies": [...]}
    GET    /v1/policies/{id}      one policy
    PUT    /v1/policies/{id}      create (201) or replace (200); returns the policy
    DELETE /v1/policies/{id}      204; 404 if absent
    GET    /v1/topology           view.topology()
    GET    /v1/health             view.health()
    GET    /v1/openapi.json       the OpenAPI 3.1 document (policy.openapi())

Writes need ``Authorization: Bearer <token>``; reads too when ``open_reads`` is False.
Errors are ``{"error": {"status": ..., "field": ..., "problem": ...}}`` with a 4xx status.

Order of a write: authenticate, read and parse the body, validate it completely against
the current policies, persist (store: atomic file + audit line), THEN call ``on_change``
so the controller re-compiles. A refused request changes nothing. ``on_change`` gets
only validated, persisted policies; if it still raises (a controller bug, a switch
away) the error is logged and the reply remains a success: the policy IS accepted and
saved, and the controller applies the saved state on its next compile/reconnect.
Answering 500 there would make the client retry a change that already happened.

The body's Content-Type is not enforced (curl -d sends form-urlencoded by default);
the body must parse as JSON whatever the header says. Bearer tokens are not sent by
browsers cross-site, so this opens no CSRF hole.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from typing import Any, Callable, Iterable, Mapping, Protocol

from webob import Request, Response

from controller.core.policy import Policy, PolicyError, openapi, validate
from controller.api import usage_api
from controller.api.store import PolicyStore

log = logging.getLogger("kendali.rest")


class View(Protocol):
    """What the controller shows through the API (a fake in tests)."""

    def topology(self) -> dict: ...

    def health(self) -> dict: ...


OnChange = Callable[[dict[str, Policy]], None]
WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


class HttpError(Exception):
    def __init__(self, status: int, problem: str, field: str | None = None, headers: Mapping[str, str] | None = None):
        super().__init__(problem)
        self.status = status
        self.problem = problem
        self.field = field
        self.headers = dict(headers or {})


def _json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    text = json.dumps(body, indent=2, ensure_ascii=False, default=str) + "\n"
    resp = Response(status=status, body=text.encode("utf-8"), content_type="application/json", charset="utf-8")
    resp.headers["Cache-Control"] = "no-store"
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def error_response(status: int, problem: str, field: str | None = None, headers: Mapping[str, str] | None = None) -> Response:
    return _json_response(status, {"error": {"status": status, "field": field, "problem": problem}}, headers)


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # {"download_kbps": 1000, "download_kbps": 900000}: which did the user mean? Refuse.
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(f"field {k!r} appears twice")
        out[k] = v
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes) -> Any:
    """The parsed body, or HttpError 400 saying why it is not acceptable JSON."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "the body is not UTF-8 text", "(body)") from None
    if not text.strip():
        raise HttpError(400, "the body is empty; send the policy as a JSON object", "(body)")
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise HttpError(400, f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", "(body)") from None
    except RecursionError:
        raise HttpError(400, "not acceptable JSON: nested too deeply", "(body)") from None
    except ValueError as exc:  # duplicate keys, NaN/Infinity, a number with thousands of digits
        raise HttpError(400, f"not acceptable JSON: {exc}", "(body)") from None


_ID_SEGMENT = "(?P<id>[^/]+)"


class RestApp:
    """The WSGI application. Build it with ``make_app``."""

    def __init__(
        self,
        store: PolicyStore,
        on_change: OnChange,
        view: View,
        tokens: Mapping[str, str],
        open_reads: bool = True,
        max_body: int = 65536,
    ) -> None:
        if not tokens:
            raise ValueError("at least one API token is needed")
        self.store = store
        self.on_change = on_change
        self.view = view
        # Bytes, so hmac.compare_digest also works for tokens with non-ASCII characters.
        self.tokens = [(name, tok.encode("utf-8")) for name, tok in tokens.items()]
        self.open_reads = open_reads
        self.max_body = max_body
        # (path regex, {method: handler}); handlers take (request, **path params).
        self.routes: list[tuple[re.Pattern[str], dict[str, Callable[..., Response]]]] = [
            (re.compile(r"^/v1/policies$"), {"GET": self.list_policies}),
            (
                re.compile(rf"^/v1/policies/{_ID_SEGMENT}$"),
                {"GET": self.get_policy, "PUT": self.put_policy, "DELETE": self.delete_policy},
            ),
            (re.compile(r"^/v1/topology$"), {"GET": self.topology}),
            (re.compile(r"^/v1/health$"), {"GET": self.health}),
            (re.compile(r"^/v1/openapi\.json$"), {"GET": self.openapi}),
            (re.compile(r"^/v1/usage$"), {"GET": lambda req, who: usage_api.usage(req, self.view)}),
            (re.compile(rf"^/v1/usage/{_ID_SEGMENT}$"),
             {"GET": lambda req, who, id: usage_api.usage_of(req, self.view, id)}),
            (re.compile(r"^/metrics$"), {"GET": lambda req, who: usage_api.metrics(req, self.view)}),
        ]

    # --- WSGI ------------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        req = Request(environ)
        try:
            resp = self.dispatch(req)
        except HttpError as exc:
            resp = error_response(exc.status, exc.problem, exc.field, exc.headers)
        except PolicyError as exc:
            resp = error_response(exc.status, exc.problem, exc.field)
        except Exception:  # a bug: say so without a traceback on the wire
            log.exception("%s %s failed", req.method, req.path_info)
            resp = error_response(500, "internal error in the controller; see its log")
        return resp(environ, start_response)

    def dispatch(self, req: Request) -> Response:
        for pattern, methods in self.routes:
            m = pattern.match(req.path_info)
            if not m:
                continue
            method = "GET" if req.method == "HEAD" else req.method  # WebOb drops the body for HEAD
            handler = methods.get(method)
            if handler is None:
                allow = ", ".join(sorted(methods) + (["HEAD"] if "GET" in methods else []))
                hint = " (create or replace with PUT /v1/policies/{id})" if req.method == "POST" else ""
                raise HttpError(405, f"{req.method} is not allowed here; allowed: {allow}{hint}", None, {"Allow": allow})
            write = method in ("PUT", "DELETE")
            who = self.authenticate(req) if (write or not self.open_reads) else ""
            return handler(req, who, **m.groupdict())
        raise HttpError(404, f"no such path {req.path_info!r}; the API is described at GET /v1/openapi.json")

    def authenticate(self, req: Request) -> str:
        """The name of the token the request carries, or HttpError 401."""
        header = req.headers.get("Authorization", "")
        scheme, _, cred = header.strip().partition(" ")
        cred = cred.strip()
        if scheme.lower() != "bearer" or not cred:
            raise HttpError(
                401,
                "this needs the API token: send the header 'Authorization: Bearer <token>'",
                None,
                {"WWW-Authenticate": 'Bearer realm="kendali"'},
            )
        given = cred.encode("utf-8", "replace")
        who = None
        for name, tok in self.tokens:  # compare with every token: no early exit to time
            if hmac.compare_digest(given, tok) and who is None:
                who = name
        if who is None:
            raise HttpError(
                401, "wrong API token", None, {"WWW-Authenticate": 'Bearer realm="kendali", error="invalid_token"'}
            )
        return who

    def read_json(self, req: Request) -> Any:
        length = req.content_length
        if length is not None and length > self.max_body:
            raise HttpError(413, f"the body is {length} bytes; at most {self.max_body} are accepted", "(body)")
        if req.is_body_readable:
            raw = req.body_file.read(self.max_body + 1)
        elif "chunked" in req.environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            # eventlet.wsgi de-chunks wsgi.input but does not set wsgi.input_terminated,
            # so WebOb would call such a body unreadable. Bounded read: max_body + 1.
            raw = req.environ["wsgi.input"].read(self.max_body + 1)
        else:
            raw = b""
        if len(raw) > self.max_body:
            raise HttpError(413, f"the body is larger than {self.max_body} bytes", "(body)")
        return parse_json(raw)

    def _applied(self) -> None:
        """Tell the controller; a failure is logged, never reported as a failed change."""
        try:
            self.on_change(self.store.all())
        except Exception:
            log.exception("policies are saved but re-compiling them failed; they will be applied on the next compile")

    # --- handlers ----------------------------------------------------------------------------

    def list_policies(self, req: Request, who: str) -> Response:
        return _json_response(200, {"policies": [p.to_dict() for p in self.store.all().values()]})

    def get_policy(self, req: Request, who: str, id: str) -> Response:
        p = self.store.get(id)
        if p is None:
            raise HttpError(404, f"no policy {id!r}; GET /v1/policies lists them", "id")
        return _json_response(200, p.to_dict())

    def put_policy(self, req: Request, who: str, id: str) -> Response:
        data = self.read_json(req)
        with self.store.lock:  # validate against, and write to, the same state
            policy = validate(data, url_id=id, others=self.store.all())
            try:
                created = self.store.put(policy, who)
            except OSError as exc:
                log.error("cannot save policy %s: %s", id, exc)
                raise HttpError(503, f"could not save the policy ({exc.strerror or exc}); nothing was changed") from None
            log.info("policy %s %s by token %r", id, "created" if created else "replaced", who)
            self._applied()
        headers = {"Location": f"/v1/policies/{policy.id}"} if created else {}
        return _json_response(201 if created else 200, policy.to_dict(), headers)

    def delete_policy(self, req: Request, who: str, id: str) -> Response:
        with self.store.lock:
            try:
                existed = self.store.delete(id, who)
            except OSError as exc:
                log.error("cannot save deletion of policy %s: %s", id, exc)
                raise HttpError(503, f"could not save the deletion ({exc.strerror or exc}); nothing was changed") from None
            if not existed:
                raise HttpError(404, f"no policy {id!r}; GET /v1/policies lists them", "id")
            log.info("policy %s deleted by token %r", id, who)
            self._applied()
        return Response(status=204)

    def _view(self, what: str, fn: Callable[[], dict]) -> Response:
        try:
            body = fn()
        except Exception as exc:
            log.exception("%s not available", what)
            raise HttpError(503, f"{what} not available right now: {exc}") from None
        return _json_response(200, body)

    def topology(self, req: Request, who: str) -> Response:
        return self._view("topology", self.view.topology)

    def health(self, req: Request, who: str) -> Response:
        return self._view("health", self.view.health)

    def openapi(self, req: Request, who: str) -> Response:
        return _json_response(200, openapi())


def make_app(
    store: PolicyStore,
    on_change: OnChange,
    view: View,
    tokens: Mapping[str, str],
    open_reads: bool = True,
    max_body: int = 65536,
) -> RestApp:
    """The WSGI app (serve it with eventlet.wsgi.server). ``tokens``: name -> secret."""
    return RestApp(store, on_change, view, tokens, open_reads, max_body)
