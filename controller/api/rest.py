"""The REST API: per-OPD policies (read/write), topology and health (read). Plain WebOb.

    GET    /v1/policies           all policies {"policies": [...]}
    GET    /v1/policies/{id}      one policy
    PUT    /v1/policies/{id}      create (201) or replace (200); returns the policy
    DELETE /v1/policies/{id}      204; 404 if absent
    GET    /v1/topology           view.topology()
    GET    /v1/health             view.health()               (the one path open without a token)
    GET    /v1/openapi.json       the OpenAPI 3.1 document (controller.api.openapi.openapi() + with_access())
    GET    /v1/events             recent events and policy/settings changes (controller.api.events_api)
    GET    /, /static/<file>      the web console (controller.api.static; no token: the page asks for one)
    GET    /v1/report             the usage report (controller.api.report_api): json, csv or html
    GET    /v1/settings           the report's settings (controller.api.report_api)
    PUT    /v1/settings           replace them (audited, action "settings")

Every other request needs ``Authorization: Bearer <token>`` (access.py decides): a read
token for GET, a write token for PUT and DELETE (403 otherwise). A failure answers 401
"not authorised" and nothing more. ``protect()`` puts the same decision in front of any
other WSGI app (/metrics).
Errors are ``{"error": {"status": ..., "field": ..., "problem": ...}}`` with a 4xx status.

Order of a write: authorise, read and parse the body, validate it completely against
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

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from webob import Request, Response

from controller.api import events_api, report_api, usage_api
from controller.api.access import Access, Denied, Keyring
from controller.api.openapi import openapi
from controller.api.replies import HttpError, json_response
from controller.api.static import StaticFiles
from controller.api.store import PolicyStore, SettingsFile
from controller.api.tokens import make_entry
from controller.core.policy import Policy, PolicyError, validate

log = logging.getLogger("kendali.rest")


class View(Protocol):
    """What the controller shows through the API (a fake in tests)."""

    def topology(self) -> dict: ...

    def health(self) -> dict: ...

    def recent_events(self, since: float | None, limit: int | None) -> list[dict[str, Any]]:
        """The controller's recent events (controller.core.events), newest first."""
        ...


OnChange = Callable[[dict[str, Policy]], None]
WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


def error_response(
    status: int, problem: str, field: str | None = None, headers: Mapping[str, str] | None = None
) -> Response:
    return json_response(status, {"error": {"status": status, "field": field, "problem": problem}}, headers)


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


# Paths anyone may GET: a load balancer's or a monitor's liveness check carries no secret.
OPEN_PATHS = frozenset({"/v1/health"})
OPENAPI_SECURITY: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A token made with `kendali token add NAME --role read|write` (or KENDALI_TOKEN, a write "
        "token). GET needs a read or write token, PUT and DELETE a write token; GET /v1/health needs none.",
    }
}


def with_access(doc: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with who may call what: security and the 401/403 answers of each operation."""
    unauth = {
        "description": "not authorised: no token, or not a valid one",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    forbidden = {**unauth, "description": "the token has the read role; this needs the write role"}
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method not in ("get", "put", "delete", "post", "patch"):
                continue
            if path in OPEN_PATHS and method == "get":
                op["security"] = []
                op.get("responses", {}).pop("401", None)
                continue
            op["security"] = [{"bearer": []}]
            op.setdefault("responses", {})["401"] = unauth
            if method != "get":
                op["responses"]["403"] = forbidden
    doc.setdefault("components", {}).setdefault("securitySchemes", {}).update(OPENAPI_SECURITY)
    return doc


def access_for(tokens: Mapping[str, str] | Access) -> Access:
    """An Access as is; a {name: secret} mapping (tests, embedding) as write tokens held in memory."""
    if isinstance(tokens, Access):
        return tokens
    if not tokens:
        raise ValueError("at least one API token is needed")
    return Access(Keyring(None, entries={n: make_entry(n, "write", s) for n, s in tokens.items()}))


def _denied(exc: Denied) -> Response:
    return error_response(exc.status, exc.problem, None, exc.headers)


def _what(req: Request) -> str:
    return f"{req.method} {req.path_info[:200]!r}"


def protect(app: WsgiApp, access: Access, need: str = "read") -> WsgiApp:
    """``app`` behind the same token check as the API (for /metrics: ``protect(metrics_app, access)``)."""

    def guarded(environ: dict, start_response: Callable) -> Iterable[bytes]:
        req = Request(environ)
        try:
            who = access.authorise(req.headers.get("Authorization"), req.remote_addr or "?", need, _what(req))
        except Denied as exc:
            return _denied(exc)(environ, start_response)
        environ["kendali.token"] = who.name
        return app(environ, start_response)

    return guarded


class RestApp:
    """The WSGI application. Build it with ``make_app``."""

    def __init__(
        self,
        store: PolicyStore,
        on_change: OnChange,
        view: View,
        tokens: Mapping[str, str] | Access,
        open_reads: bool = False,
        max_body: int = 65536,
        open_metrics: bool = False,
        offload: report_api.Offload | None = None,
        uplink_kbps: float | None = None,
    ) -> None:
        self.store = store
        self.offload = offload  # runs slow work (the report) off the event loop: eventlet.tpool.execute
        self.uplink_kbps = uplink_kbps  # what the ISP uplink buys: guarantees must fit it (409)
        self.open_metrics = open_metrics  # --open-metrics: a Prometheus without a token may scrape
        self.on_change = on_change
        self.view = view
        self.access = access_for(tokens)
        self.open_reads = open_reads  # not offered on the command line; reads need a token
        self.max_body = max_body
        self.static = StaticFiles()
        self.settings_file: SettingsFile = store.settings_file()  # with --etcd: kept in etcd
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
            (
                re.compile(rf"^/v1/usage/{_ID_SEGMENT}$"),
                {"GET": lambda req, who, id: usage_api.usage_of(req, self.view, id)},
            ),
            (re.compile(r"^/metrics$"), {"GET": lambda req, who: usage_api.metrics(req, self.view)}),
            (re.compile(r"^/v1/events$"), {"GET": lambda req, who: events_api.events(req, self.view, self.store)}),
            (
                re.compile(r"^/v1/report$"),
                {"GET": lambda req, who: report_api.report(req, self.store.state_dir, self.offload)},
            ),
            (
                re.compile(r"^/v1/settings$"),
                {
                    "GET": lambda req, who: report_api.get_settings(req, self.settings_file),
                    "PUT": lambda req, who: report_api.put_settings(req, self.read_json(req), self.settings_file, who),
                },
            ),
        ]

    # --- WSGI ------------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        req = Request(environ)
        try:
            resp = self.dispatch(req)
        except HttpError as exc:
            resp = error_response(exc.status, exc.problem, exc.field, exc.headers)
        except Denied as exc:
            resp = _denied(exc)
        except PolicyError as exc:
            resp = error_response(exc.status, exc.problem, exc.field)
        except Exception:  # a bug: say so without a traceback on the wire
            log.exception("%s %s failed", req.method, req.path_info)
            resp = error_response(500, "internal error in the controller; see its log")
        return resp(environ, start_response)

    def dispatch(self, req: Request) -> Response:
        if StaticFiles.wants(req.path_info):
            return self.console(req)
        for pattern, methods in self.routes:
            m = pattern.match(req.path_info)
            if not m:
                continue
            method = "GET" if req.method == "HEAD" else req.method  # WebOb drops the body for HEAD
            handler = methods.get(method)
            if handler is None:
                allow = ", ".join(sorted(methods) + (["HEAD"] if "GET" in methods else []))
                hint = " (create or replace with PUT /v1/policies/{id})" if req.method == "POST" else ""
                raise HttpError(
                    405, f"{req.method} is not allowed here; allowed: {allow}{hint}", None, {"Allow": allow}
                )
            need = "read" if method == "GET" else "write"
            if need == "read" and (
                self.open_reads or req.path_info in OPEN_PATHS or (self.open_metrics and req.path_info == "/metrics")
            ):
                who = ""
            else:
                who = self.access.authorise(
                    req.headers.get("Authorization"), req.remote_addr or "?", need, _what(req)
                ).name
            return handler(req, who, **m.groupdict())
        raise HttpError(404, f"no such path {req.path_info!r}; the API is described at GET /v1/openapi.json")

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
        return json_response(200, {"policies": [p.to_dict() for p in self.store.all().values()]})

    def get_policy(self, req: Request, who: str, id: str) -> Response:
        p = self.store.get(id)
        if p is None:
            raise HttpError(404, f"no policy {id!r}; GET /v1/policies lists them", "id")
        return json_response(200, p.to_dict())

    def put_policy(self, req: Request, who: str, id: str) -> Response:
        data = self.read_json(req)
        with self.store.lock:  # validate against, and write to, the same state
            policy = validate(data, url_id=id, others=self.store.all(), uplink_kbps=self.uplink_kbps)
            try:
                created = self.store.put(policy, who)
            except OSError as exc:
                log.error("cannot save policy %s: %s", id, exc)
                why = exc.strerror or exc
                raise HttpError(503, f"could not save the policy ({why}); nothing was changed") from None
            log.info("policy %s %s by token %r", id, "created" if created else "replaced", who)
            self._applied()
        headers = {"Location": f"/v1/policies/{policy.id}"} if created else {}
        return json_response(201 if created else 200, policy.to_dict(), headers)

    def delete_policy(self, req: Request, who: str, id: str) -> Response:
        with self.store.lock:
            try:
                existed = self.store.delete(id, who)
            except OSError as exc:
                log.error("cannot save deletion of policy %s: %s", id, exc)
                why = exc.strerror or exc
                raise HttpError(503, f"could not save the deletion ({why}); nothing was changed") from None
            if not existed:
                raise HttpError(404, f"no policy {id!r}; GET /v1/policies lists them", "id")
            log.info("policy %s deleted by token %r", id, who)
            self._applied()
        return Response(status=204)

    def console(self, req: Request) -> Response:
        """The console's files: open to all (they hold no data), GET and HEAD only."""
        if req.method not in ("GET", "HEAD"):
            raise HttpError(405, f"{req.method} is not allowed here; allowed: GET, HEAD", None, {"Allow": "GET, HEAD"})
        name = self.static.name(req.path_info)
        if name is None:
            raise HttpError(404, f"no such file {req.path_info[:200]!r}; the console is at /")
        return self.static.response(req, name)

    def _view(self, what: str, fn: Callable[[], dict]) -> Response:
        try:
            body = fn()
        except Exception as exc:
            log.exception("%s not available", what)
            raise HttpError(503, f"{what} not available right now: {exc}") from None
        return json_response(200, body)

    def topology(self, req: Request, who: str) -> Response:
        return self._view("topology", self.view.topology)

    def health(self, req: Request, who: str) -> Response:
        return self._view("health", self.view.health)

    def openapi(self, req: Request, who: str) -> Response:
        return json_response(200, with_access(openapi()))


def make_app(
    store: PolicyStore,
    on_change: OnChange,
    view: View,
    tokens: Mapping[str, str] | Access,
    open_reads: bool = False,
    max_body: int = 65536,
    open_metrics: bool = False,
    offload: report_api.Offload | None = None,
    uplink_kbps: float | None = None,
) -> RestApp:
    """The WSGI app (serve it with server.serve). ``tokens``: an Access, or {name: secret} write tokens.
    ``offload(fn, *args)``: where slow work runs (the controller: eventlet.tpool.execute); default in place.
    ``uplink_kbps``: the purchased uplink, which the policies' guarantees must fit."""
    return RestApp(store, on_change, view, tokens, open_reads, max_body, open_metrics, offload, uplink_kbps)
