"""The runner image of `transport: kubernetes`, built here from deploy/runner/wsf-enter.c (static C), packed as an
OCI image and named by its digest, as a stack pins it (`kubernetes.runnerImage: <repo>@sha256:<digest>`).

    ref, tarball = build_runner_image(work)   # ref: localhost/wsf/runner@sha256:<manifest digest>

Nothing is pulled: the tests import the tarball into every node's containerd (`images.import_image`), so the
kubelet finds the image by that digest reference.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.harness import images

SOURCE = Path(__file__).resolve().parents[2] / "deploy" / "runner" / "wsf-enter.c"
REPOSITORY = "localhost/wsf/runner"


def build_runner_image(work: Path) -> tuple[str, Path]:
    cc = images._tool("gcc", "gcc and libc6-dev")
    binary = work / "wsf-enter"
    proc = subprocess.run([cc, "-static", "-Os", "-s", "-Wall", "-Werror", "-o", str(binary), str(SOURCE)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"building the runner's wsf-enter failed (needs gcc and libc6-dev):\n{proc.stderr}")
    files = {"wsf-enter": (binary.read_bytes(), 0o755)}
    # The manifest's digest does not depend on the index that names it: pack once to learn it, then name the
    # image by it (containerd's CRI resolves `repo@sha256:<digest>` by the image's name).
    first = images.oci_tarball(work / "runner.oci.tar", f"{REPOSITORY}:build", files, ["/wsf-enter"])
    with tarfile.open(first) as tar:
        index = json.loads(tar.extractfile("index.json").read())
    ref = f"{REPOSITORY}@{index['manifests'][0]['digest']}"
    return ref, images.oci_tarball(work / "runner.oci.tar", ref, files, ["/wsf-enter"])
