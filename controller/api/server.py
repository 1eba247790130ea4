"""Serving the REST app: plain HTTP or HTTPS, on eventlet's WSGI server (the controller's one loop).

    check_tls(cert, key)                      at start: both files load, or one line naming the file
    serve(app, host, port, tls_cert, tls_key) runs forever in the caller's green thread

eventlet is imported inside ``serve`` only: the rest of controller.api stays importable
without it. os-ken's hub.WSGIServer drops its ssl arguments when it serves WSGI, so the
listening socket is wrapped here, eventlet's way: the TLS handshake of each connection
then happens in that connection's own green thread, and a slow client holds up no other.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from controller.errors import KendaliError

log = logging.getLogger("kendali.rest")
access_log = logging.getLogger("kendali.rest.access")

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]
# A client silent this long is dropped: idle keep-alive and half-sent requests do not pile up.
SOCKET_TIMEOUT = 60.0


class _Encrypted(Exception):
    pass


def _no_passphrase() -> bytes:
    # Without this, OpenSSL asks for the passphrase on the terminal: a controller start that hangs.
    raise _Encrypted


def _context(factory: Callable[[int], ssl.SSLContext], cert: Path, key: Path) -> ssl.SSLContext:
    ctx = factory(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key), password=_no_passphrase)
    return ctx


def check_tls(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """None for plain HTTP; an SSLContext when both files load; else KendaliError naming the file."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        missing, given = ("--tls-cert", "--tls-key") if cert is None else ("--tls-key", "--tls-cert")
        raise KendaliError(f"needs {missing} too (HTTPS needs the certificate and its private key)", given)
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        try:
            Path(path).read_bytes()
        except OSError as exc:
            raise KendaliError(f"cannot read: {exc.strerror}", f"{flag} {path}") from None
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        probe.load_verify_locations(cafile=str(cert))  # parses the certificates alone: a bad one is named as such
    except ssl.SSLError:
        raise KendaliError("not a PEM certificate", f"--tls-cert {cert}") from None
    try:
        return _context(ssl.SSLContext, Path(cert), Path(key))
    except _Encrypted:
        raise KendaliError(
            f"is encrypted; give it unencrypted (openssl pkey -in {key} -out NEW.pem), mode 0600", f"--tls-key {key}"
        ) from None
    except ssl.SSLError as exc:
        why = "does not belong to the certificate" if "KEY_VALUES_MISMATCH" in str(exc) else "not a PEM private key"
        raise KendaliError(why, f"--tls-key {key}") from None


class _AccessLog:
    """eventlet.wsgi writes one line per request here; shown with --verbose."""

    def write(self, message: str) -> None:
        access_log.debug("%s", message.rstrip("\n"))


def listen(host: str, port: int) -> Any:
    import eventlet

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return eventlet.listen((host, port), family=family)


def serve(
    app: WsgiApp, host: str, port: int, tls_cert: Path | None = None, tls_key: Path | None = None, sock: Any = None
) -> None:
    """Serve ``app`` forever (HTTPS when both tls files are given). Call from a green thread.

    An app with an ``access`` (RestApp) gets its scrypt checks run in a real thread
    (eventlet.tpool): hashlib.scrypt releases the GIL, so the loop goes on meanwhile.
    ``sock``: an already listening socket (tests); else one is opened on host:port.
    """
    import eventlet.wsgi
    from eventlet import tpool
    from eventlet.green import ssl as green_ssl

    if sock is None:
        sock = listen(host, port)
    scheme = "http"
    if tls_cert is not None and tls_key is not None:
        ctx = _context(green_ssl.GreenSSLContext, Path(tls_cert), Path(tls_key))
        sock = ctx.wrap_socket(sock, server_side=True)
        scheme = "https"

    class Protocol(eventlet.wsgi.HttpProtocol):
        def handle(self) -> None:
            try:
                super().handle()
            except ssl.SSLError as exc:  # plain HTTP to the HTTPS port, a scanner: one line, not a traceback
                log.info("TLS with %s failed: %s", self.client_address[0], exc.reason or exc)

    access = getattr(app, "access", None)
    if access is not None:
        access.keyring.offload = tpool.execute
    log.info("REST API on %s://%s:%d/v1/", scheme, host if ":" not in host else f"[{host}]", port)
    eventlet.wsgi.server(sock, app, log=_AccessLog(), socket_timeout=SOCKET_TIMEOUT, protocol=Protocol)
