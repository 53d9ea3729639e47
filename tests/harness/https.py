"""A local https artifact server: serves one directory on 127.0.0.1 with a certificate from a throwaway CA.

Nodes trust it the way a node trusts a company mirror: the CA file is handed to curl (CURL_CA_BUNDLE in the
node's session environment). Keys live in the caller's work dir, which the caller removes.

    with ArtifactServer(dist_dir, work) as srv:
        srv.url("file.tar.gz"), srv.ca_file
"""

from __future__ import annotations

import functools
import http.server
import ssl
import subprocess
import threading
from pathlib import Path


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        self.server.requests.append(self.path)  # type: ignore[attr-defined]


class ArtifactServer:
    def __init__(self, directory: Path, work: Path):
        self.directory = Path(directory)
        self.work = Path(work)
        self.ca_file = self.work / "ca.crt"
        self.port = 0
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ArtifactServer:
        self.work.mkdir(parents=True, exist_ok=True)
        w = self.work
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
                 "-days", "2", "-subj", "/CN=wsf-artifacts-ca", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=w)
        (w / "srv.ext").write_text("basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
                                   "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
                 "-subj", "/CN=127.0.0.1", cwd=w)
        _openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-out", "srv.crt", "-extfile", "srv.ext", cwd=w)
        handler = functools.partial(_Quiet, directory=str(self.directory))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.requests = []  # type: ignore[attr-defined]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(w / "srv.crt"), str(w / "srv.key"))
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(target=httpd.serve_forever, name="artifact-server", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(10)
        for name in ("ca.key", "srv.key"):
            (self.work / name).unlink(missing_ok=True)

    @property
    def requests(self) -> list[str]:
        return list(self._httpd.requests) if self._httpd else []  # type: ignore[attr-defined]

    def url(self, name: str) -> str:
        return f"https://127.0.0.1:{self.port}/{name}"
