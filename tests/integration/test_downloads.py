"""Downloads on the node with real curl against a local https server: only https (redirects too), root's
~/.curlrc ignored, a total timeout, and a size limit (the catalog entry's maxBytes, default 256 MiB) checked
before the sha256, whether or not the server announces the size. Nothing is installed when one of them stops a
download, and no partial file is left."""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from components.core import nodescript
from components.core.plan import plan_from_config

from .helpers import ARTIFACTS, install_kit, run_script, sample_raw

pytestmark = pytest.mark.integration

SHIM = ARTIFACTS / "containerd-shim-spin-v0.3.0-v1"
BIG = 2 * 1024 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        if self.path == "/shim":
            self._send(SHIM.read_bytes())
        elif self.path == "/big":
            self._send(b"\0" * BIG)
        elif self.path == "/big-unannounced":  # no Content-Length: the size is known only once it is all there
            self.send_response(200)
            self.end_headers()
            for _ in range(BIG // 65536):
                self.wfile.write(b"\0" * 65536)
        elif self.path == "/to-http":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/shim")
            self.end_headers()
        elif self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(60):
                try:
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.5)
        else:
            self.send_error(404)

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """An https server on 127.0.0.1 with a self-signed certificate (ca: the file that makes curl trust it)."""
    if not shutil.which("openssl") or not shutil.which("curl"):
        pytest.fail("the integration tier needs openssl and curl (apt-get install -y openssl curl)")
    work = tmp_path_factory.mktemp("https")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out",
                    "cert.pem", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   cwd=work, check=True, capture_output=True)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(work / "cert.pem"), str(work / "key.pem"))
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.ca = str(work / "cert.pem")
    httpd.url = lambda name: f"https://127.0.0.1:{httpd.server_address[1]}/{name}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(10)


def install(tmp_path: Path, url: str, *, sha: str | None = None, max_bytes: int | None = None,
            env: dict[str, str] | None = None):
    raw = sample_raw("containerd-1", releases=("spin@0.3.0",), url_override={"spin@0.3.0": url},
                     sha_override={"spin@0.3.0": sha} if sha else None)
    if max_bytes is not None:
        raw["shims"]["spin"][0]["maxBytes"] = max_bytes
    _, plan = plan_from_config(raw)
    assert plan.errors == [], plan.errors
    node = plan.node("node-a")
    root = tmp_path / "root"
    install_kit(root)
    binary = node.binaries["containerd-shim-spin-v0-3-0-v1"]
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    result = run_script(nodescript.install_binary_script(node, binary), root,
                        env={"HOME": str(home), **(env or {})})
    return result, root


def nothing_installed(root: Path) -> bool:
    bindir = root / "usr/local/bin"
    state = root / "var/lib/wasm-shim-fleet"
    return (not bindir.exists() or not list(bindir.iterdir())) and not list(state.glob("tmp.*"))


def test_an_https_download_within_its_limits_installs(server, tmp_path):
    result, root = install(tmp_path, server.url("shim"), env={"CURL_CA_BUNDLE": server.ca})
    assert result.returncode == 0, result.stderr
    assert (root / "usr/local/bin/containerd-shim-spin-v0-3-0-v1").read_bytes() == SHIM.read_bytes()


def test_a_redirect_that_leaves_https_is_refused(server, tmp_path):
    result, root = install(tmp_path, server.url("to-http"), env={"CURL_CA_BUNDLE": server.ca})
    assert result.returncode == 1
    assert f"download of {server.url('to-http')} failed: curl: (1) Protocol \"http\" not supported" in result.stderr
    assert nothing_installed(root)


def test_roots_curlrc_does_not_apply(server, tmp_path):
    """A ~/.curlrc that turns certificate checks off (or adds a proxy) must not change what the kit fetches."""
    (tmp_path / "home").mkdir()
    (tmp_path / "home/.curlrc").write_text("insecure\n")
    result, root = install(tmp_path, server.url("shim"))
    assert result.returncode == 1
    assert "curl: (60)" in result.stderr  # the certificate is checked, as without the file
    assert nothing_installed(root)


@pytest.mark.parametrize("path", ["big", "big-unannounced"])
def test_an_artifact_over_max_bytes_is_refused_before_its_sha256(server, tmp_path, path):
    wrong_sha = "0" * 64  # a sha256 check would say "mismatch": the size is checked first
    result, root = install(tmp_path, server.url(path), sha=wrong_sha, max_bytes=BIG // 2,
                           env={"CURL_CA_BUNDLE": server.ca})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"wasm-shim-fleet: error: the artifact at {server.url(path)} is larger than {BIG // 2} bytes, the most this "
        "catalog entry allows (maxBytes; default 268435456); nothing was changed")
    assert "sha256 mismatch" not in result.stderr
    assert nothing_installed(root)


def test_a_local_artifact_over_the_default_limit_is_refused_without_reading_it(tmp_path):
    big = tmp_path / "huge-artifact"
    with open(big, "wb") as f:  # sparse: 300 MiB that take no room
        f.truncate(300 * 1024 * 1024)
    result, root = install(tmp_path, f"file://{big}", sha=hashlib.sha256(b"").hexdigest())
    assert result.returncode == 1
    assert f"is larger than 268435456 bytes ({300 * 1024 * 1024} bytes)" in result.stderr
    assert nothing_installed(root)


def test_a_download_that_outlasts_its_total_timeout_fails(server, tmp_path):
    started = time.monotonic()
    result, root = install(tmp_path, server.url("slow"),
                           env={"CURL_CA_BUNDLE": server.ca, "WSF_DOWNLOAD_TIMEOUT": "2"})
    assert result.returncode == 1
    assert "curl: (28)" in result.stderr  # timed out
    assert time.monotonic() - started < 20
    assert nothing_installed(root)
    os.sync()
