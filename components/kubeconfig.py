"""One rule for the stack's kubeconfig wherever a command of the program hands it to kubectl.

`kubernetes.kubeconfig` is a path or the file's contents (YAML, or one line of JSON as CI secrets often hold
it). Contents never go on a command line (where `ps` shows them, and where kubectl echoes a path it cannot open
into its error, which reaches Pulumi's output): they are written to a private file (0600, in a private folder the
caller removes) and kubectl gets that file's path. A path is expanded (`~`) and passed as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

from .core.config import kubeconfig_is_contents


def kubectl_kubeconfig(value: str | None, private_dir: str | os.PathLike[str]) -> str | None:
    """The path to give kubectl for `value` (None: kubectl's usual lookup). Contents are written, once, to
    `private_dir/kubeconfig` (mode 0600; the folder is the caller's, e.g. a TemporaryDirectory, 0700)."""
    if not value:
        return None
    if not kubeconfig_is_contents(value):
        return os.path.expanduser(value)
    path = Path(private_dir) / "kubeconfig"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return str(path)
