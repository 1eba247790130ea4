"""controller.api.server: the TLS flags' checks, and HTTPS served for real (a child process, loopback)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.api.server import check_tls
from controller.errors import KendaliError

ROOT = Path(__file__).resolve().parent.parent


def _openssl_pair(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}-cert.pem", directory / f"{name}-key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two self-signed pairs made by openssl (Open vSwitch's packages bring it; setup.sh installs those)."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = _openssl_pair(d, "a")
    _, other_key = _openssl_pair(d, "b")
    encrypted = d / "enc-key.pem"
    subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-out", str(encrypted), "-aes256", "-passout", "pass:x"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    junk = d / "junk.pem"
    junk.write_text("not a certificate\n")
    return {"cert": cert, "key": key, "other_key": other_key, "encrypted": encrypted, "junk": junk, "dir": d}


def test_no_tls_is_plain_http() -> None:
    assert check_tls(None, None) is None


def test_a_good_pair_loads(pem: dict[str, Path]) -> None:
    ctx = check_tls(pem["cert"], pem["key"])
    assert isinstance(ctx, ssl.SSLContext) and ctx.minimum_version == ssl.TLSVersion.TLSv1_2


@pytest.mark.parametrize(
    "cert,key,words",
    [
        ("cert", None, "--tls-cert: needs --tls-key too"),
        (None, "key", "--tls-key: needs --tls-cert too"),
        ("junk", "key", "--tls-cert {junk}: not a PEM certificate"),
        ("key", "key", "--tls-cert {key}: not a PEM certificate"),
        ("cert", "junk", "--tls-key {junk}: not a PEM private key"),
        ("cert", "cert", "--tls-key {cert}: not a PEM private key"),
        ("cert", "other_key", "--tls-key {other_key}: does not belong to the certificate"),
        ("cert", "encrypted", "--tls-key {encrypted}: is encrypted; give it unencrypted"),
        ("cert", "missing", "--tls-key {missing}: cannot read: No such file or directory"),
    ],
)
def test_bad_pairs_are_one_line_naming_the_file(
    pem: dict[str, Path], cert: str | None, key: str | None, words: str
) -> None:
    paths = {**pem, "missing": pem["dir"] / "missing.pem"}
    with pytest.raises(KendaliError) as info:
        check_tls(paths[cert] if cert else None, paths[key] if key else None)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(words.format(**{k: str(v) for k, v in paths.items()})), msg


SERVER = textwrap.dedent("""
    import sys, warnings
    warnings.filterwarnings("ignore")
    import eventlet
    eventlet.monkey_patch()
    from pathlib import Path
    from controller.api.access import Access, Keyring
    from controller.api.rest import make_app
    from controller.api.server import listen, serve
    from controller.api.store import PolicyStore

    class View:
        def topology(self): return {"switches": []}
        def health(self): return {"ok": True}

    state, cert, key = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    sock = listen("127.0.0.1", 0)
    print(sock.getsockname()[1], flush=True)
    app = make_app(PolicyStore(state), lambda p: None, View(), Access(Keyring(state, "env-secret")))
    serve(app, "127.0.0.1", 0, cert or None, key or None, sock=sock)
""")


@pytest.fixture(scope="module")
def https(pem: dict[str, Path]) -> Iterator[int]:
    from controller.api.tokens import TokenFile

    state = pem["dir"] / "state"
    (pem["dir"] / "secret").write_text(TokenFile(state).add("grafana", "read"))
    p = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(state), str(pem["cert"]), str(pem["key"])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert p.stdout is not None
        yield int(p.stdout.readline())
    finally:
        p.terminate()
        _, err = p.communicate(timeout=10)
        assert "Traceback" not in err, err


def _get(
    port: int, path: str, pem: dict[str, Path], headers: dict[str, str] | None = None, source: str | None = None
) -> tuple[int, dict]:
    ctx = ssl.create_default_context(cafile=str(pem["cert"]))
    conn = http.client.HTTPSConnection(
        "127.0.0.1", port, context=ctx, timeout=10, source_address=(source, 0) if source else None
    )
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_https_serves_the_api_with_the_tokens(https: int, pem: dict[str, Path]) -> None:
    secret = (pem["dir"] / "secret").read_text()
    assert _get(https, "/v1/health", pem) == (200, {"ok": True})
    assert _get(https, "/v1/topology", pem)[0] == 401
    # the first use of a stored token runs scrypt in a real thread (eventlet.tpool), the next ones hit the cache
    for _ in range(3):
        assert _get(https, "/v1/topology", pem, {"Authorization": f"Bearer {secret}"}) == (200, {"switches": []})
    assert _get(https, "/v1/policies", pem, {"Authorization": "Bearer env-secret"}) == (200, {"policies": []})


def test_plain_http_to_the_https_port_is_refused_and_harms_nothing(https: int, pem: dict[str, Path]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", https, timeout=10)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("GET", "/v1/health")
        conn.getresponse().read()
    conn.close()
    assert _get(https, "/v1/health", pem)[0] == 200


def test_a_silent_client_does_not_hold_up_the_others(https: int, pem: dict[str, Path]) -> None:
    with socket.create_connection(("127.0.0.1", https)):  # connects, never says hello
        t0 = time.monotonic()
        assert _get(https, "/v1/health", pem)[0] == 200
        assert time.monotonic() - t0 < 5


def test_a_slowed_down_address_holds_up_no_one_else(https: int, pem: dict[str, Path]) -> None:
    guesser = "127.0.0.77"
    for _ in range(5):  # the free failures
        assert _get(https, "/v1/policies", pem, {"Authorization": "Bearer guess"}, guesser)[0] == 401
    held: dict[str, float] = {}

    def sixth() -> None:
        t0 = time.monotonic()
        held["status"] = _get(https, "/v1/policies", pem, {"Authorization": "Bearer guess"}, guesser)[0]
        held["s"] = time.monotonic() - t0

    t = threading.Thread(target=sixth)
    t.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    assert _get(https, "/v1/health", pem)[0] == 200
    assert _get(https, "/v1/policies", pem, {"Authorization": "Bearer env-secret"})[0] == 200
    others = time.monotonic() - t0
    t.join(10)
    assert held["status"] == 401
    assert held["s"] >= 0.45  # the first pause is 0.5 s
    assert others < 0.35, (others, held)  # served while the guesser waited (a blocking sleep: >= 0.4 s)
