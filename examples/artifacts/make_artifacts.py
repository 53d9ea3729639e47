"""Make the tiny fake shim artifacts used by the tests and the dev stack, byte for byte reproducibly.

Each "shim" is a two-line sh script named like the real binary; it is never run by containerd in the tests
(they check the config and the files), but it is executable so that `command -v` finds it.

    python examples/artifacts/make_artifacts.py          # (re)writes the artifacts and SHA256SUMS
    python examples/artifacts/make_artifacts.py --check  # exit 1 if a file differs from what it would write

Archives are made with fixed mtimes, owners and modes, and gzip with mtime 0, so the sha256 sums (used in
stack files with file:// URLs) never change.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (file name, member name inside the archive or None for a bare binary, shim, version)
ARTIFACTS = (
    ("slight-v1.2.3-linux-amd64.tar.gz", "containerd-shim-slight-v1", "slight", "1.2.3"),
    ("slight-v1.2.4-linux-amd64.tar.gz", "containerd-shim-slight-v1", "slight", "1.2.4"),
    ("slight-v1.2.5-linux-amd64.tar.gz", "containerd-shim-slight-v1", "slight", "1.2.5"),
    ("slight-v1.3.0-linux-amd64.tar.gz", "bin/containerd-shim-slight-v1", "slight", "1.3.0"),
    ("containerd-shim-spin-v0.3.0-v1", None, "spin", "0.3.0"),
)


def shim_text(shim: str, version: str) -> bytes:
    return f"#!/bin/sh\necho 'fake containerd-shim-{shim} {version} (wasm-shim-fleet test artifact)'\n".encode()


def build(member: str | None, shim: str, version: str) -> bytes:
    body = shim_text(shim, version)
    if member is None:
        return body
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        parts = member.split("/")
        for i in range(1, len(parts)):
            d = tarfile.TarInfo("/".join(parts[:i]))
            d.type, d.mode, d.mtime, d.uid, d.gid, d.uname, d.gname = tarfile.DIRTYPE, 0o755, 0, 0, 0, "", ""
            tar.addfile(d)
        info = tarfile.TarInfo(member)
        info.size, info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = len(body), 0o755, 0, 0, 0, "", ""
        tar.addfile(info, io.BytesIO(body))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def main(argv: list[str]) -> int:
    check = "--check" in argv
    sums = []
    bad = []
    for name, member, shim, version in ARTIFACTS:
        data = build(member, shim, version)
        path = HERE / name
        sums.append(f"{hashlib.sha256(data).hexdigest()}  {name}\n")
        if check:
            if not path.exists() or path.read_bytes() != data:
                bad.append(name)
        else:
            path.write_bytes(data)
            if member is None:
                path.chmod(0o755)
    sums_text = "".join(sums)
    if check:
        if (HERE / "SHA256SUMS").read_text() != sums_text:
            bad.append("SHA256SUMS")
        if bad:
            print("out of date: " + ", ".join(bad) + "; run python examples/artifacts/make_artifacts.py",
                  file=sys.stderr)
            return 1
        return 0
    (HERE / "SHA256SUMS").write_text(sums_text)
    sys.stdout.write(sums_text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
